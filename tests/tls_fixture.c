// SPDX-License-Identifier: MIT
/* Credentials, loopback pairs and handshakes for the TLS tests (tests/tls_fixture.h). */
#include "tests/tls_fixture.h"
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "src/tls.h"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void *load_pem(const char *path, bool key)
{
	FILE *fp = fopen(path, "r");
	void *obj;

	if (!fp)
		return NULL;
	obj = key ? (void *)PEM_read_PrivateKey(fp, NULL, NULL, NULL)
		  : (void *)PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	return obj;
}

static int write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	char p[PATH_MAX];
	FILE *fp;
	int ok;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	if (!fp)
		return -1;
	ok = x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	return fclose(fp) || !ok ? -1 : 0;
}

/* In @out: a certificate for CN=old, signed by the CA in @ca_dir, that expired yesterday. */
static int make_expired(const char *ca_dir, const char *out)
{
	char p[PATH_MAX];
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509 *ca;
	EVP_PKEY *cakey;
	int err = -1;

	snprintf(p, sizeof(p), "%s/ca.pem", ca_dir);
	ca = load_pem(p, false);
	snprintf(p, sizeof(p), "%s/ca.key", ca_dir);
	cakey = load_pem(p, true);
	if (ca && cakey && key && x && X509_set_version(x, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), -86400) && X509_set_pubkey(x, key) &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				       (const unsigned char *)"old", -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) && X509_sign(x, cakey, EVP_sha256()))
		err = write_pem(out, "cert.pem", x, NULL) || write_pem(out, "key.pem", NULL, key) ||
		      write_pem(out, "ca.pem", ca, NULL);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return err;
}

/*
 * good/{src,dst} and stranger/evil from tools/mkcerts.sh, then broken
 * credential dirs: mixed (evil's certificate, trusting both CAs), mismatch
 * (src's certificate, dst's key), unsigned (src's pair, the stranger's CA),
 * garbage (cert.pem is not PEM), encrypted (key.pem has a passphrase), expired.
 */
int tf_setup(void **state)
{
	struct tf_fixture *f = calloc(1, sizeof(*f));
	char good[96];
	char expired[96];
	const char *d;

	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hm-tls-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	d = f->dir;
	if (access("tools/mkcerts.sh", R_OK)) {
		print_error("run from the source tree: tools/mkcerts.sh not found\n");
		return -1;
	}
	if (sh("sh tools/mkcerts.sh --loopback %s/good src dst >/dev/null", d) ||
	    sh("sh tools/mkcerts.sh --loopback %s/stranger evil >/dev/null", d) ||
	    sh("cd %s && mkdir mixed mismatch unsigned garbage expired && "
	       "cp stranger/evil/*.pem mixed/ && cat good/ca.pem stranger/ca.pem >mixed/ca.pem && "
	       "cp good/src/*.pem mismatch/ && cp good/dst/key.pem mismatch/ && "
	       "cp good/src/*.pem unsigned/ && cp stranger/ca.pem unsigned/ && "
	       "cp good/src/*.pem garbage/ && echo not a certificate >garbage/cert.pem && "
	       "mkdir encrypted && cp good/src/*.pem encrypted/ && "
	       "openssl pkey -in good/src/key.pem -aes256 -passout pass:x -out encrypted/key.pem",
	       d))
		return -1;
	snprintf(good, sizeof(good), "%s/good", d);
	snprintf(expired, sizeof(expired), "%s/expired", d);
	return make_expired(good, expired);
}

int tf_teardown(void **state)
{
	struct tf_fixture *f = *state;

	if (f && f->dir[0] && strncmp(f->dir, "/tmp/hm-tls-", 12) == 0)
		sh("rm -rf %s", f->dir);
	free(f);
	return 0;
}

struct tls_ctx *tf_ctx_new(const struct tf_fixture *f, const char *rel, bool server,
			   const char *peer, char *why, size_t whylen)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", f->dir, rel);
	return tls_ctx_new(dir, server, peer, why, whylen);
}

/* A context that must load. */
struct tls_ctx *tf_ctx_ok(const struct tf_fixture *f, const char *rel, bool server,
			  const char *peer)
{
	char why[256] = "";
	struct tls_ctx *ctx = tf_ctx_new(f, rel, server, peer, why, sizeof(why));

	if (!ctx)
		print_error("%s: %s\n", rel, why);
	assert_non_null(ctx);
	return ctx;
}

/* A connected loopback TCP pair: *@a connected, *@b accepted; TCP_NODELAY as net.c sets it. */
void tf_tcp_pair(int *a, int *b)
{
	int one = 1;

	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*a >= 0);
	assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*b >= 0);
	close(l);
	assert_int_equal(setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	assert_int_equal(setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
}

void *tf_start_thread(void *arg)
{
	struct tf_end *e = arg;

	e->err = net_tls_start(&e->c, e->ctx, e->why, sizeof(e->why));
	return NULL;
}

/* Connect @cl to @sv over loopback and run both handshakes at once. */
void tf_handshake(struct tf_end *cl, struct tf_end *sv)
{
	int a;
	int b;

	tf_tcp_pair(&a, &b);
	net_init(&cl->c, a, HS_MS);
	net_init(&sv->c, b, HS_MS);
	assert_int_equal(pthread_create(&sv->thread, NULL, tf_start_thread, sv), 0);
	tf_start_thread(cl);
	assert_int_equal(pthread_join(sv->thread, NULL), 0);
	cl->c.timeout_ms = IO_MS;
	sv->c.timeout_ms = IO_MS;
}

void tf_end_close(struct tf_end *e)
{
	net_close(&e->c);
	tls_ctx_free(e->ctx);
}

void tf_assert_why(int err, const char *why, int want_err, const char *want)
{
	if (err != want_err || !strstr(why, want))
		print_error("got %d '%s', want %d '...%s...'\n", err, why, want_err, want);
	assert_int_equal(err, want_err);
	assert_non_null(strstr(why, want));
}
