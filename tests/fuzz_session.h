/* SPDX-License-Identifier: MIT */
/*
 * What the two session fuzzers share (tests/fuzz_dest_session.c,
 * tests/fuzz_src_session.c): how an input becomes the frames a fake peer
 * writes, a loop that writes them while reading and checking every frame
 * the real side sends back, and small socket helpers.
 *
 * Input: two option bytes (the target's own), then pieces. A piece is a
 * 16-byte frame header taken from the input (type, flags, len) and up to
 * len bytes of payload, the rest of the input if shorter: len is clamped
 * to what is left, so the header always says the truth about the frame
 * that follows. Bit 31 of the type sends the frame on the urgent
 * connection. A piece of type FZ_MARKER breaks the link there (both
 * connections are shut after what came before has been read) and the
 * pieces after it go over a reconnection of the same session.
 */
#ifndef HM_TESTS_FUZZ_SESSION_H
#define HM_TESTS_FUZZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "src/proto.h"

#define FZ_MARKER	0xffffffffu /* piece type: the link breaks here */
#define FZ_URGENT_BIT	0x80000000u /* piece type bit: send on the urgent connection */
#define FZ_MAX_SEGMENTS 4	    /* connections per input (markers beyond are ignored) */
#define FZ_MAX_FRAMES	4096	    /* frames per connection and segment: 64 KiB of headers */

/* Report a broken invariant and abort (a finding). */
void fz_fail(const char *what, const char *file, int line) __attribute__((noreturn));
#define fz_check(cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fz_fail(#cond, __FILE__, __LINE__);                                        \
	} while (0)

/* The bytes for one connection in one segment, and where each frame lies in them. */
struct fz_out {
	uint8_t *buf; /* owned */
	size_t len;
	size_t off;		      /* written so far */
	unsigned int nframes;	      /* frames in buf */
	uint32_t type[FZ_MAX_FRAMES]; /* as written on the wire */
	size_t start[FZ_MAX_FRAMES];  /* header offset */
	size_t end[FZ_MAX_FRAMES];    /* one past the payload */
};

/* The input, cut into segments; [k][0] bulk, [k][1] urgent. */
struct fz_input {
	uint8_t opt[2];
	unsigned int nseg; /* at least 1 */
	struct fz_out out[FZ_MAX_SEGMENTS][2];
	struct proto_hdr first; /* the first piece, whole: some options send it raw */
	const uint8_t *first_payload;
	bool has_first;
};

/*
 * Split @data, which must outlive @in. When in->opt[0] has a bit of
 * @first_mask set, the first piece is kept in in->first only (the target
 * sends it itself, e.g. as a raw hello).
 */
void fz_input_parse(struct fz_input *in, const uint8_t *data, size_t size, uint8_t first_mask);
void fz_input_free(struct fz_input *in);
/* True when a frame of @type was written whole on @ch in any segment. */
bool fz_input_sent(const struct fz_input *in, int ch, uint32_t type);
/* Offset of the first frame of @type in @o that starts in [from, to), or -1. */
long fz_out_find(const struct fz_out *o, uint32_t type, size_t from, size_t to);

/* A connection the fake peer drives. */
struct fz_conn {
	int fd; /* -1 when closed */
	int ch; /* PROTO_CH_BULK or PROTO_CH_URGENT */
	struct fz_out *out;
	bool shut; /* our write side is closed */
	bool eof;  /* the peer closed (or reset) its side */
	uint8_t *rx;
	size_t rx_len;
	uint64_t max_gfn; /* page numbers the real side may send */
	uint64_t frames;  /* frames received and checked */
};

/* Called for every frame the real side sends, after it was checked. */
typedef void (*fz_frame_fn)(void *arg, struct fz_conn *c, const struct proto_hdr *h,
			    const uint8_t *payload);
/* Called before bytes [from, to) of c->out are written. */
typedef void (*fz_write_fn)(void *arg, struct fz_conn *c, size_t from, size_t to);

struct fz_pump {
	struct fz_conn *c[2];
	fz_frame_fn on_frame;
	fz_write_fn before_write;
	void *arg;
};

void fz_conn_init(struct fz_conn *c, int fd, int ch, uint64_t max_gfn);
void fz_conn_close(struct fz_conn *c);
/*
 * Write both connections' output, shut our write sides when all of it is
 * out (or the peer stopped reading), and read and check what comes back,
 * until the real side closes the bulk connection.
 */
void fz_pump_run(struct fz_pump *p);
/*
 * Check one frame from the real side: its header decodes, and so does its
 * payload with the decoder of its type; abort() otherwise.
 */
void fz_check_frame(const struct proto_hdr *h, const uint8_t *payload, uint64_t max_gfn);

/* Listening socket on 127.0.0.1, any port; the port in *@port. */
int fz_listen(uint16_t *port);
/* Blocking connect to 127.0.0.1:@port; the fd (non-blocking) or -1. */
int fz_connect(uint16_t port);
/*
 * Wait for @fd to be readable, or @other (if >= 0) to be: 1 for @fd, 0 for
 * @other, -1 on error. No timeout: a hang is the fuzzer's -timeout.
 */
int fz_wait(int fd, int other);
/* Write all of @buf (blocking on a non-blocking fd); 0 or -1 when the peer is gone. */
int fz_write_all(int fd, const void *buf, size_t len);
/*
 * Read one frame (header checked by proto_hdr_decode) into @buf; 0, or -1
 * at EOF, on a bad header, or when @other becomes readable first.
 */
int fz_read_frame(int fd, int other, struct proto_hdr *h, uint8_t *buf, size_t cap);
/* Send a frame built from parts. 0 or -1. */
int fz_send_frame(int fd, uint32_t type, uint32_t flags, const void *payload, size_t len);
/* Set an eventfd, read it back to zero. */
void fz_event_set(int efd);
void fz_event_clear(int efd);

/* Quiet logs, ignore SIGPIPE, and the vCPU kick signal: once per process. */
void fz_process_init(void);

#endif
