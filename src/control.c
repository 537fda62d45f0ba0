// SPDX-License-Identifier: MIT
#define LOG_PREFIX "control: "
#include "src/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "src/ctlsock.h"
#include "src/log.h"

#define CONTROL_MAX_CMDS   16
#define CONTROL_MAX_FIELDS 16
/* Connections the kernel queues before we accept them. */
#define CONTROL_BACKLOG 16
/* Longest idle timeout accepted (a day). */
#define CONTROL_IDLE_MS_MAX 86400000

struct ctl_cmd {
	const char *name;
	control_fn fn;
	void *arg;
};

struct ctl_conn {
	struct control *ctl;
	struct bufferevent *bev; /* owns the socket */
	struct event *timer;	 /* idle timeout, or activated at once to drop the peer */
	struct ctl_req *req;	 /* request in flight, or NULL */
	control_done_fn done;	 /* after the output drains */
	void *done_arg;
	uint64_t idle_since; /* hm_now_ns() when it last became idle: eviction order */
	const char *drop;    /* why the timer drops it now; NULL: the timer is the idle timeout */
	pid_t pid;	     /* of the peer, for messages */
	bool closing;	     /* close once the output drains */
	bool eof;	     /* the peer sends no more: close once all is answered */
	struct ctl_conn *next;
};

struct ctl_req {
	struct ctl_conn *conn; /* NULL once the peer went away */
};

struct control {
	struct event_base *base;
	struct evconnlistener *lis;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_cmd cmds[CONTROL_MAX_CMDS];
	unsigned int nr_cmds;
	struct ctl_conn *conns;
	unsigned int nr_conns;
	int idle_ms; /* idle timeout of connections with no request in flight */
};

static void conn_free(struct ctl_conn *cn)
{
	struct control *c = cn->ctl;
	control_done_fn done = cn->done;
	void *done_arg = cn->done_arg;

	for (struct ctl_conn **pp = &c->conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	c->nr_conns--;
	if (cn->req)
		cn->req->conn = NULL;
	event_free(cn->timer);
	bufferevent_free(cn->bev);
	free(cn);
	if (done)
		done(done_arg);
}

/*
 * Free @cn from its timer callback, soon: callers up the stack (read_cb, a
 * handler calling control_notify) may still hold it.
 */
static void conn_drop_soon(struct ctl_conn *cn, const char *why)
{
	cn->drop = why;
	cn->closing = true;
	bufferevent_disable(cn->bev, EV_READ);
	event_active(cn->timer, EV_TIMEOUT, 1);
}

/* @cn has no request in flight from now on: (re)start its idle timeout. */
static void arm_idle(struct ctl_conn *cn)
{
	int ms = cn->ctl->idle_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (cn->drop)
		return;
	cn->idle_since = hm_now_ns();
	event_add(cn->timer, &tv);
}

/* The peer gets at most CONTROL_OUTPUT_MAX bytes ahead of its reading. */
static void send_line(struct ctl_conn *cn, const char *json)
{
	struct evbuffer *out = bufferevent_get_output(cn->bev);
	size_t len = strlen(json);

	if (cn->drop)
		return;
	if (evbuffer_get_length(out) + len + 1 > CONTROL_OUTPUT_MAX) {
		conn_drop_soon(cn, "it does not read its replies");
		return;
	}
	if (evbuffer_add(out, json, len) || evbuffer_add(out, "\n", 1))
		conn_drop_soon(cn, "out of memory");
}

static const char *error_json(char *buf, size_t cap, const char *msg)
{
	struct json_out j;

	json_init(&j, buf, cap);
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", false);
	json_str(&j, "error", msg);
	json_obj_end(&j);
	return json_done(&j) ? buf : "{\"ok\":false,\"error\":\"internal error\"}";
}

static void error_line(struct ctl_conn *cn, const char *msg)
{
	char buf[512];

	send_line(cn, error_json(buf, sizeof(buf), msg));
}

/*
 * Close @cn now. With @msg, first try to tell the peer why, without waiting
 * for it: straight to the socket (the bufferevent writes only from the loop),
 * so only when nothing else is queued that the line would overtake.
 */
static void conn_drop(struct ctl_conn *cn, const char *msg)
{
	evutil_socket_t fd = bufferevent_getfd(cn->bev);
	char buf[512];
	char line[sizeof(buf) + 1]; /* error_json() fills at most buf: the line always fits */
	int n;

	if (msg && !evbuffer_get_length(bufferevent_get_output(cn->bev))) {
		n = snprintf(line, sizeof(line), "%s\n", error_json(buf, sizeof(buf), msg));
		if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			hm_dbg("pid %d did not take its last line: %s", (int)cn->pid,
			       strerror(errno));
	}
	conn_free(cn);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cn = arg;

	(void)fd, (void)what;
	if (cn->drop) {
		hm_warn("dropping control client pid %d: %s", (int)cn->pid, cn->drop);
		conn_drop(cn, NULL);
		return;
	}
	if (cn->closing) {
		hm_info("closing control client pid %d: its last reply did not leave",
			(int)cn->pid);
		conn_drop(cn, NULL);
		return;
	}
	hm_info("closing control client pid %d: no request for %d ms", (int)cn->pid,
		cn->ctl->idle_ms);
	conn_drop(cn, "closed: idle for too long");
}

/* Answer nothing more, read nothing more: close once the queued output has left. */
static void conn_close_after_flush(struct ctl_conn *cn)
{
	struct evbuffer *in = bufferevent_get_input(cn->bev);

	cn->closing = true;
	bufferevent_disable(cn->bev, EV_READ);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (!evbuffer_get_length(bufferevent_get_output(cn->bev)))
		conn_drop_soon(cn, "its error reply could not be queued");
}

static void dispatch(struct ctl_conn *cn, const char *line, size_t len)
{
	struct json_field f[CONTROL_MAX_FIELDS];
	const struct json_field *cmd;
	const char *why = "malformed request";
	char msg[256];
	int n;

	n = json_parse_flat(line, len, f, CONTROL_MAX_FIELDS, &why);
	if (n < 0) {
		snprintf(msg, sizeof(msg), "request is not valid JSON: %s", why ? why : "?");
		error_line(cn, msg);
		return;
	}
	cmd = json_find(f, (size_t)n, "cmd");
	if (!cmd || cmd->type != JSON_STRING) {
		error_line(cn, "request has no \"cmd\" string member");
		return;
	}
	for (unsigned int i = 0; i < cn->ctl->nr_cmds; i++) {
		struct ctl_cmd *k = &cn->ctl->cmds[i];

		if (strcmp(k->name, cmd->str))
			continue;
		cn->req = calloc(1, sizeof(*cn->req));
		if (!cn->req) {
			error_line(cn, "out of memory");
			return;
		}
		cn->req->conn = cn;
		/* not idle while in flight, however long: control_reply*() re-arms */
		event_del(cn->timer);
		k->fn(cn->req, f, (size_t)n, k->arg);
		return;
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s'", cmd->str);
	error_line(cn, msg);
}

static void too_long(struct ctl_conn *cn)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "request line too long (at most %d bytes)", CONTROL_LINE_MAX);
	error_line(cn, msg);
	conn_close_after_flush(cn);
}

/*
 * Requests are taken one at a time: while one is in flight the input just
 * queues, and libevent stops reading at CONTROL_INPUT_MAX (the read high
 * watermark) until this drains it, so a peer cannot make us buffer more.
 */
static void read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!cn->req && !cn->closing) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

		if (!line) {
			if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
				too_long(cn);
			return;
		}
		if (len > CONTROL_LINE_MAX) {
			too_long(cn);
		} else if (len) {
			dispatch(cn, line, len);
			if (!cn->req)
				arm_idle(cn);
		}
		free(line);
	}
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cn = arg;

	if (cn->closing || cn->done) {
		conn_free(cn);
		return;
	}
	/* a request answered: look at lines that queued up meanwhile */
	read_cb(bev, cn);
	if (cn->eof && !cn->req && !evbuffer_get_length(bufferevent_get_output(bev)))
		conn_free(cn);
}

/*
 * At EOF the peer may have only shut down its sending side (a shell client
 * piping one request): finish what is in flight and queued, then close.
 */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cn = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if ((what & BEV_EVENT_ERROR) || cn->drop ||
	    (!cn->req && !evbuffer_get_length(bufferevent_get_output(bev)))) {
		conn_free(cn);
		return;
	}
	cn->eof = true;
}

/* Only our own uid and root may drive the VM, whatever the file's mode says. */
static bool peer_allowed(evutil_socket_t fd, pid_t *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || len != sizeof(cr)) {
		hm_warn("refusing a control connection: no peer credentials: %s", strerror(errno));
		return false;
	}
	*pid = cr.pid;
	if (cr.uid == geteuid() || cr.uid == 0)
		return true;
	hm_warn("refusing a control connection from uid %u (pid %d): only the VM's own uid (%u) "
		"and root may control it",
		(unsigned int)cr.uid, (int)cr.pid, (unsigned int)geteuid());
	return false;
}

/*
 * The table is full: drop the connection idle longest, so idle clients can
 * never lock out a stop. Connections with a request in flight or a final
 * reply draining are kept. Returns 0, or -EBUSY when every one is busy.
 */
static int evict_idlest(struct control *c)
{
	struct ctl_conn *victim = NULL;
	uint64_t oldest = UINT64_MAX;

	for (struct ctl_conn *cn = c->conns; cn; cn = cn->next) {
		/* a connection already closing goes first */
		uint64_t since = cn->closing ? 0 : cn->idle_since;

		if (!cn->req && !cn->done && since < oldest) {
			victim = cn;
			oldest = since;
		}
	}
	if (!victim)
		return -EBUSY;
	hm_warn("%d control connections: evicting the one idle longest (pid %d)", CONTROL_MAX_CONNS,
		(int)victim->pid);
	conn_drop(victim, victim->closing ? NULL : "evicted: too many control connections");
	return 0;
}

/* Takes ownership of @fd, also on failure. */
static struct ctl_conn *conn_new(struct control *c, evutil_socket_t fd, pid_t pid)
{
	struct ctl_conn *cn = calloc(1, sizeof(*cn));

	if (!cn)
		goto out_close;
	cn->ctl = c;
	cn->pid = pid;
	cn->timer = evtimer_new(c->base, timer_cb, cn);
	if (!cn->timer)
		goto out_free;
	cn->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cn->bev)
		goto out_free_timer;
	bufferevent_setwatermark(cn->bev, EV_READ, 0, CONTROL_INPUT_MAX);
	bufferevent_setcb(cn->bev, read_cb, write_cb, event_cb, cn);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
	cn->next = c->conns;
	c->conns = cn;
	c->nr_conns++;
	arm_idle(cn);
	return cn;

out_free_timer:
	event_free(cn->timer);
out_free:
	free(cn);
out_close:
	close(fd);
	return NULL;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct control *c = arg;
	pid_t pid = 0;

	(void)lis, (void)sa, (void)salen;
	if (!peer_allowed(fd, &pid)) {
		close(fd);
		return;
	}
	if (c->nr_conns >= CONTROL_MAX_CONNS && evict_idlest(c)) {
		hm_warn("refusing a control connection from pid %d: %d requests in flight",
			(int)pid, CONTROL_MAX_CONNS);
		close(fd);
		return;
	}
	if (!conn_new(c, fd, pid))
		hm_warn("refusing a control connection from pid %d: out of memory", (int)pid);
}

/* CONTROL_IDLE_ENV, for tests; the default when unset or unusable. */
static int idle_ms_from_env(void)
{
	const char *s = getenv(CONTROL_IDLE_ENV);
	char *end;
	long ms;

	if (!s)
		return CONTROL_IDLE_MS;
	errno = 0;
	ms = strtol(s, &end, 10);
	if (errno || end == s || *end || ms < 1 || ms > CONTROL_IDLE_MS_MAX) {
		hm_warn("ignoring %s='%.32s': not 1 to %d", CONTROL_IDLE_ENV, s,
			CONTROL_IDLE_MS_MAX);
		return CONTROL_IDLE_MS;
	}
	return (int)ms;
}

struct control *control_new(struct event_base *base, const char *path, char *why, size_t whylen)
{
	unsigned int flags;
	struct control *c;
	int err;
	int fd;

	if (!*path || strlen(path) >= sizeof(c->path)) {
		snprintf(why, whylen, "control socket path must be 1 to %zu characters",
			 sizeof(c->path) - 1);
		return NULL;
	}
	err = ctlsock_clear_stale(path, why, whylen);
	if (err) {
		if (err != -EEXIST && err != -EADDRINUSE)
			snprintf(why, whylen, "%s: %s", path, strerror(-err));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->idle_ms = idle_ms_from_env();
	strcpy(c->path, path);
	fd = ctlsock_bind(path, why, whylen);
	if (fd < 0)
		goto out_free;
	flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	c->lis = evconnlistener_new(base, accept_cb, c, flags, CONTROL_BACKLOG, fd);
	if (!c->lis) {
		snprintf(why, whylen, "cannot listen on %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	return c;

out_unlink:
	close(fd);
	unlink(path);
out_free:
	free(c);
	return NULL;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->conns) {
		c->conns->done = NULL;
		conn_free(c->conns);
	}
	evconnlistener_free(c->lis);
	unlink(c->path);
	free(c);
}

int control_set_idle_timeout(struct control *c, int ms)
{
	if (ms < 1 || ms > CONTROL_IDLE_MS_MAX)
		return -EINVAL;
	c->idle_ms = ms;
	return 0;
}

int control_add(struct control *c, const char *cmd, control_fn fn, void *arg)
{
	if (c->nr_cmds >= CONTROL_MAX_CMDS)
		return -ENOSPC;
	c->cmds[c->nr_cmds++] = (struct ctl_cmd){ cmd, fn, arg };
	return 0;
}

/* Release @req. Returns its connection, idle from now on, or NULL if the peer went away. */
static struct ctl_conn *req_finish(struct ctl_req *req)
{
	struct ctl_conn *cn = req->conn;

	free(req);
	if (!cn)
		return NULL;
	cn->req = NULL;
	arm_idle(cn);
	return cn;
}

void control_reply_then(struct ctl_req *req, const char *json, control_done_fn done, void *arg)
{
	struct ctl_conn *cn = req_finish(req);

	if (!cn) {
		if (done)
			done(arg);
		return;
	}
	cn->done = done;
	cn->done_arg = arg;
	send_line(cn, json);
}

void control_notify(struct ctl_req *req, const char *json)
{
	if (req->conn)
		send_line(req->conn, json);
}

void control_reply(struct ctl_req *req, const char *json)
{
	control_reply_then(req, json, NULL, NULL);
}

void control_reply_error(struct ctl_req *req, const char *fmt, ...)
{
	struct ctl_conn *cn = req_finish(req);
	char msg[256];
	va_list ap;

	if (!cn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_line(cn, msg);
}
