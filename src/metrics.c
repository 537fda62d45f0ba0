// SPDX-License-Identifier: MIT
/* The Prometheus endpoint (src/metrics.h). */
#define LOG_PREFIX "metrics: "
#include "src/metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/log.h"
#include "src/net.h"

/* a scraper that stalls is dropped after this */
#define METRICS_TIMEOUT_S 10

struct metrics_out {
	struct evbuffer *buf;
};

struct metrics {
	struct evhttp *http;
	int fd;
	struct {
		metrics_fn fn;
		void *arg;
	} src[METRICS_MAX_SOURCES];
	unsigned int nsrc;
};

void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o->buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct metrics_out *o, const char *name, const char *labels, double v)
{
	/* integers as integers; the format's special values by name */
	if (isnan(v))
		evbuffer_add_printf(o->buf, "%s%s%s%s NaN\n", name, *labels ? "{" : "", labels,
				    *labels ? "}" : "");
	else if (v == floor(v) && fabs(v) < 9e15)
		evbuffer_add_printf(o->buf, "%s%s%s%s %.0f\n", name, *labels ? "{" : "", labels,
				    *labels ? "}" : "", v);
	else
		evbuffer_add_printf(o->buf, "%s%s%s%s %.9g\n", name, *labels ? "{" : "", labels,
				    *labels ? "}" : "", v);
}

void metrics_label(char *buf, size_t len, const char *key, const char *value)
{
	size_t n = (size_t)snprintf(buf, len, "%s=\"", key);

	for (const char *p = value; *p && n + 4 < len; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n')
			buf[n++] = '\\';
		buf[n++] = *p == '\n' ? 'n' : *p;
	}
	if (n + 2 <= len) {
		buf[n++] = '"';
		buf[n] = 0;
	}
}

void metrics_gauge(struct metrics_out *o, const char *name, const char *help, double v)
{
	metrics_family(o, name, "gauge", help);
	metrics_sample(o, name, "", v);
}

void metrics_histogram(struct metrics_out *o, const char *name, const char *help, const double *le,
		       const uint64_t *count, size_t n, double sum)
{
	char key[160];
	char label[48];
	uint64_t cum = 0;

	metrics_family(o, name, "histogram", help);
	snprintf(key, sizeof(key), "%s_bucket", name);
	for (size_t i = 0; i < n; i++) {
		cum += count[i];
		if (isinf(le[i]))
			snprintf(label, sizeof(label), "le=\"+Inf\"");
		else
			snprintf(label, sizeof(label), "le=\"%.9g\"", le[i]);
		metrics_sample(o, key, label, (double)cum);
	}
	if (!n || !isinf(le[n - 1]))
		metrics_sample(o, key, "le=\"+Inf\"", (double)cum);
	snprintf(key, sizeof(key), "%s_sum", name);
	metrics_sample(o, key, "", sum);
	snprintf(key, sizeof(key), "%s_count", name);
	metrics_sample(o, key, "", (double)cum);
}

static void fill(struct metrics *m, struct metrics_out *o)
{
	for (unsigned int i = 0; i < m->nsrc; i++)
		m->src[i].fn(m->src[i].arg, o);
}

int metrics_render(struct metrics *m, char **text, size_t *len)
{
	struct metrics_out o = { evbuffer_new() };
	size_t n;

	if (!o.buf)
		return -ENOMEM;
	fill(m, &o);
	n = evbuffer_get_length(o.buf);
	*text = malloc(n + 1);
	if (!*text) {
		evbuffer_free(o.buf);
		return -ENOMEM;
	}
	evbuffer_remove(o.buf, *text, n);
	(*text)[n] = 0;
	*len = n;
	evbuffer_free(o.buf);
	return 0;
}

static void serve(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);
	size_t plen = strcspn(uri, "?");
	struct metrics_out o;

	if (plen != strlen("/metrics") || strncmp(uri, "/metrics", plen)) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is here");
		return;
	}
	o.buf = evbuffer_new();
	if (!o.buf) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	fill(m, &o);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", o.buf);
	evbuffer_free(o.buf);
}

struct metrics *metrics_new(struct event_base *base, const char *addr, char *why, size_t whylen)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	m->fd = net_listen(addr, why, whylen);
	if (m->fd < 0) {
		free(m);
		return NULL;
	}
	m->http = evhttp_new(base);
	if (!m->http || evutil_make_socket_nonblocking(m->fd) ||
	    !evhttp_accept_socket_with_handle(m->http, m->fd)) {
		snprintf(why, whylen, "cannot serve metrics on %s", addr);
		metrics_free(m);
		return NULL;
	}
	/* evhttp owns the socket from here */
	m->fd = -1;
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, serve, m);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

int metrics_add(struct metrics *m, metrics_fn fn, void *arg)
{
	if (m->nsrc >= METRICS_MAX_SOURCES)
		return -ENOSPC;
	m->src[m->nsrc].fn = fn;
	m->src[m->nsrc].arg = arg;
	m->nsrc++;
	return 0;
}
