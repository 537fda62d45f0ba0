// SPDX-License-Identifier: MIT
#define LOG_PREFIX "control: "
#include "src/control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "src/log.h"

#define CONTROL_MAX_CMDS   16
#define CONTROL_MAX_CONNS  32
#define CONTROL_MAX_FIELDS 16

struct ctl_cmd {
	const char *name;
	control_fn fn;
	void *arg;
};

struct ctl_conn {
	struct control *ctl;
	struct bufferevent *bev; /* owns the socket */
	struct ctl_req *req;	 /* request in flight, or NULL */
	control_done_fn done;	 /* after the output drains */
	void *done_arg;
	bool closing; /* close once the output drains */
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
	bufferevent_free(cn->bev);
	free(cn);
	if (done)
		done(done_arg);
}

static void send_line(struct ctl_conn *cn, const char *json)
{
	struct evbuffer *out = bufferevent_get_output(cn->bev);

	if (evbuffer_add(out, json, strlen(json)) || evbuffer_add(out, "\n", 1))
		cn->closing = true;
}

static void error_line(struct ctl_conn *cn, const char *msg)
{
	char buf[512];
	struct json_out j;

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_bool(&j, "ok", false);
	json_str(&j, "error", msg);
	json_obj_end(&j);
	send_line(cn, json_done(&j) ? buf : "{\"ok\":false,\"error\":\"internal error\"}");
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
		k->fn(cn->req, f, (size_t)n, k->arg);
		return;
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s'", cmd->str);
	error_line(cn, msg);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!cn->req && !cn->closing) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

		if (!line) {
			if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
				error_line(cn, "request line too long");
				cn->closing = true;
			}
			return;
		}
		if (len > CONTROL_LINE_MAX)
			error_line(cn, "request line too long");
		else if (len)
			dispatch(cn, line, len);
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
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct control *c = arg;
	struct ctl_conn *cn;

	(void)lis, (void)sa, (void)salen;
	if (c->nr_conns >= CONTROL_MAX_CONNS || !(cn = calloc(1, sizeof(*cn)))) {
		hm_warn("refusing a control connection: too many");
		close(fd);
		return;
	}
	cn->ctl = c;
	cn->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cn->bev) {
		close(fd);
		free(cn);
		return;
	}
	cn->next = c->conns;
	c->conns = cn;
	c->nr_conns++;
	bufferevent_setcb(cn->bev, read_cb, write_cb, event_cb, cn);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
}

/* A socket file nobody listens on is left over from a crash: remove it. */
static int clear_stale(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;
	int live;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	live = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (live) {
		snprintf(why, whylen, "control socket %s is in use by another process", path);
		return -EADDRINUSE;
	}
	return unlink(path) ? -errno : 0;
}

struct control *control_new(struct event_base *base, const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	int err;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path must be 1 to %zu characters",
			 sizeof(sa.sun_path) - 1);
		return NULL;
	}
	err = clear_stale(path, why, whylen);
	if (err) {
		if (err != -EEXIST && err != -EADDRINUSE)
			snprintf(why, whylen, "%s: %s", path, strerror(-err));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base = base;
	strcpy(c->path, path);
	strcpy(sa.sun_path, path);
	c->lis = evconnlistener_new_bind(base, accept_cb, c,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
					 (struct sockaddr *)&sa, sizeof(sa));
	if (!c->lis) {
		snprintf(why, whylen, "cannot listen on %s: %s", path, strerror(errno));
		free(c);
		return NULL;
	}
	return c;
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

int control_add(struct control *c, const char *cmd, control_fn fn, void *arg)
{
	if (c->nr_cmds >= CONTROL_MAX_CMDS)
		return -ENOSPC;
	c->cmds[c->nr_cmds++] = (struct ctl_cmd){ cmd, fn, arg };
	return 0;
}

void control_reply_then(struct ctl_req *req, const char *json, control_done_fn done, void *arg)
{
	struct ctl_conn *cn = req->conn;

	free(req);
	if (!cn) {
		if (done)
			done(arg);
		return;
	}
	cn->req = NULL;
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
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (req->conn) {
		req->conn->req = NULL;
		error_line(req->conn, msg);
	}
	free(req);
}
