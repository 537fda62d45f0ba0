/*
 * wanline — a WAN between two network namespaces: a packet-level delay line
 * with a rate cap and a bottleneck queue, between two TUN devices.
 *
 *   wanline --a NETNS:IFNAME --b NETNS:IFNAME --delay-ms D
 *           [--rate BITS_PER_S] [--queue-ms Q] [--ring-mib M]
 *
 * NETNS is a path (/var/run/netns/NAME-a) or "-" for the current namespace;
 * IFNAME is a persistent TUN device made with
 * `ip tuntap add dev IFNAME mode tun vnet_hdr` in that namespace.
 * Every IP packet the a-side stack sends into its TUN device comes out of the
 * b-side TUN device D ms later, and the other way round: TCP sees the delay,
 * the window and the back-pressure end to end (no split connection, unlike
 * tools/delayproxy). With --rate the line is also the bottleneck of a real
 * path: a packet waits for the ones before it to be "serialized" at RATE
 * (bits/s, counting what the packet would occupy on a 1500-byte-MTU Ethernet
 * link the way `tc tbf` counts it on a veth: IP length plus a 14-byte header),
 * then travels D ms; a packet that would wait more than Q ms in that queue
 * is dropped (tail drop, default Q = max(2*D, 10 ms): one bandwidth-delay
 * product of buffer, what a path needs for full utilisation by one flow).
 *
 * The TUN devices carry virtio-net headers with TSO/checksum offload
 * (TUNSETOFFLOAD), so the kernel hands over up to 64 KiB per read, as it does
 * to QEMU's tap backend: 1 Gbit/s costs ~2000 reads/s, not 83000. The header
 * is passed through unchanged; the receiving stack takes the super-packet as
 * GRO would have built it.
 *
 * One thread per direction: ppoll() on the TUN fd with a nanosecond timeout
 * for the head of its FIFO (timer slack 1 ns). Deadlines are monotone (fixed
 * delay after a monotone serialisation clock), so a FIFO is enough. Packets
 * are kept in a byte ring of --ring-mib MiB per direction (default 256,
 * MAP_NORESERVE: memory follows the data in flight); a packet that does not
 * fit is dropped and counted. A write that fails (the device is down:
 * `testnet.sh linkdown`) drops the packet: a cut link.
 *
 * SIGUSR1 prints the counters on stderr; SIGTERM/SIGINT print them and exit
 * 0. "wanline ready" is printed on stderr once both devices are attached.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o wanline tools/wanline.c -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define PKT_MAX	  (65536u + sizeof(struct virtio_net_hdr) + 64u)
#define READS_MAX 64u	/* reads per wake-up before the due packets go out */
#define WIRE_MTU  1500u /* what a segment occupies at most on the emulated wire */
#define WIRE_OVH  14u	/* Ethernet header per frame, as tc counts it on a veth */
#define REC_ALIGN 8u

/* One packet in the ring: its deadline and length, then the bytes. */
struct rec {
	uint64_t due_ns;
	uint32_t len; /* 0: wrap marker, the next record is at offset 0 */
	uint32_t pad;
};

struct counters {
	_Atomic uint64_t pkts;	      /* packets delivered */
	_Atomic uint64_t bytes;	      /* wire bytes delivered */
	_Atomic uint64_t drop_queue;  /* tail drops at the bottleneck queue */
	_Atomic uint64_t drop_ring;   /* no room in the ring */
	_Atomic uint64_t drop_down;   /* write failed: the device is down */
	_Atomic uint64_t max_wait_us; /* longest queueing wait seen */
};

struct dir {
	const char *name; /* "a->b" */
	int in_fd;	  /* TUN device the packets are read from */
	int out_fd;	  /* TUN device they are written to */
	int stop_fd;	  /* eventfd, readable when the line stops */
	uint64_t delay_ns;
	uint64_t rate_bps;     /* 0: no cap */
	uint64_t queue_ns;     /* longest wait at the bottleneck */
	uint64_t next_free_ns; /* when the emulated wire is free again */
	uint8_t *ring;
	size_t ring_size;
	size_t head; /* oldest record */
	size_t tail; /* where the next record goes */
	size_t used; /* bytes between head and tail, markers included */
	struct counters c;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t rec_space(uint32_t len)
{
	return (sizeof(struct rec) + len + REC_ALIGN - 1) & ~(size_t)(REC_ALIGN - 1);
}

/*
 * Bytes a packet occupies on a 1500-byte-MTU Ethernet wire: a TSO
 * super-packet is cut into segments that each repeat the headers.
 */
static uint64_t wire_bytes(const uint8_t *pkt, uint32_t len)
{
	const struct virtio_net_hdr *vh = (const void *)pkt;
	uint32_t ip_len = len - sizeof(*vh);
	uint32_t hdr = vh->hdr_len;
	uint64_t segs = 1;

	if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE && vh->gso_size && hdr && hdr < ip_len)
		segs = (ip_len - hdr + vh->gso_size - 1) / vh->gso_size;
	else if (ip_len > WIRE_MTU)
		segs = (ip_len + WIRE_MTU - 1) / WIRE_MTU;
	return ip_len + (segs - 1) * hdr + segs * WIRE_OVH;
}

/*
 * Room for one maximal packet at the tail, or NULL. Records sit between head
 * and tail in ring order; a record always leaves room after it for a wrap
 * marker, and tail never catches up with head while the ring holds data.
 */
static uint8_t *ring_reserve(struct dir *d)
{
	size_t need = rec_space(PKT_MAX);

	if (d->used == 0)
		d->head = d->tail = 0;
	if (d->tail >= d->head) { /* free: [tail, end) and [0, head) */
		if (d->tail + need + sizeof(struct rec) <= d->ring_size)
			return d->ring + d->tail;
		if (need >= d->head)
			return NULL;
		((struct rec *)(d->ring + d->tail))->len = 0; /* wrap marker */
		d->used += d->ring_size - d->tail;
		d->tail = 0;
		return d->ring;
	}
	/* free: [tail, head) */
	return d->tail + need < d->head ? d->ring + d->tail : NULL;
}

/* Decide when the packet just read (len bytes after the record) is due. */
static bool admit(struct dir *d, struct rec *r, uint64_t t)
{
	uint64_t start = t, wait;

	if (d->rate_bps) {
		if (d->next_free_ns > t)
			start = d->next_free_ns;
		wait = start - t;
		if (wait > d->queue_ns) {
			d->c.drop_queue++;
			return false;
		}
		if (wait / 1000 > d->c.max_wait_us)
			d->c.max_wait_us = wait / 1000;
		start += wire_bytes((uint8_t *)(r + 1), r->len) * 8u * 1000000000u / d->rate_bps;
		d->next_free_ns = start;
	}
	r->due_ns = start + d->delay_ns;
	return true;
}

/* Read what the input device has (bounded); returns -errno on a hard error. */
static int pull(struct dir *d)
{
	for (unsigned int i = 0; i < READS_MAX; i++) {
		uint8_t *slot = ring_reserve(d);
		uint8_t scratch[PKT_MAX];
		struct rec *r;
		ssize_t n;

		n = read(d->in_fd, slot ? slot + sizeof(*r) : scratch, PKT_MAX);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -errno;
		}
		if ((size_t)n <= sizeof(struct virtio_net_hdr))
			continue;
		if (!slot) {
			d->c.drop_ring++;
			continue;
		}
		r = (struct rec *)slot;
		r->len = (uint32_t)n;
		if (!admit(d, r, now_ns()))
			continue;
		d->tail += rec_space(r->len);
		d->used += rec_space(r->len);
	}
	return 0;
}

/* Write every packet that is due; returns ns until the next one, -1 if none. */
static int64_t push(struct dir *d)
{
	while (d->used) {
		struct rec *r = (struct rec *)(d->ring + d->head);
		uint64_t t;

		if (r->len == 0) { /* wrap marker */
			d->used -= d->ring_size - d->head;
			d->head = 0;
			continue;
		}
		t = now_ns();
		if (r->due_ns > t)
			return (int64_t)(r->due_ns - t);
		if (write(d->out_fd, r + 1, r->len) < 0) {
			d->c.drop_down++;
		} else {
			d->c.pkts++;
			d->c.bytes += wire_bytes((uint8_t *)(r + 1), r->len);
		}
		d->head += rec_space(r->len);
		d->used -= rec_space(r->len);
	}
	return -1;
}

static void *dir_run(void *arg)
{
	struct dir *d = arg;
	struct pollfd pf[2] = { { .fd = d->in_fd, .events = POLLIN },
				{ .fd = d->stop_fd, .events = POLLIN } };
	int64_t wait_ns = -1;
	int err;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (;;) {
		struct timespec ts = { .tv_sec = wait_ns / 1000000000,
				       .tv_nsec = wait_ns % 1000000000 };

		if (ppoll(pf, 2, wait_ns < 0 ? NULL : &ts, NULL) < 0 && errno != EINTR) {
			fprintf(stderr, "wanline %s: poll: %s\n", d->name, strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "wanline %s: the input device went away\n", d->name);
			break;
		}
		err = pull(d);
		if (err < 0 && err != -EIO) { /* EIO: device down, nothing to read */
			fprintf(stderr, "wanline %s: read: %s\n", d->name, strerror(-err));
			break;
		}
		wait_ns = push(d);
	}
	return NULL;
}

/* Attach to the persistent TUN device IFNAME in namespace NETNS ("-": ours). */
static int tun_attach(const char *spec)
{
	char *copy = strdup(spec), *colon = copy ? strrchr(copy, ':') : NULL;
	unsigned int offl = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
	struct ifreq ifr = { 0 };
	int self = -1, ns = -1, fd = -1;

	if (!colon || colon[1] == '\0' || strlen(colon + 1) >= IFNAMSIZ) {
		fprintf(stderr, "wanline: bad device '%s' (NETNS:IFNAME)\n", spec);
		goto out;
	}
	*colon = '\0';
	if (strcmp(copy, "-")) {
		self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		ns = open(copy, O_RDONLY | O_CLOEXEC);
		if (self < 0 || ns < 0 || setns(ns, CLONE_NEWNET)) {
			fprintf(stderr, "wanline: cannot enter namespace %s: %s\n", copy,
				strerror(errno));
			goto out;
		}
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", colon + 1);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETOFFLOAD, offl)) {
		fprintf(stderr, "wanline: cannot attach to %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (self >= 0 && setns(self, CLONE_NEWNET)) {
		fprintf(stderr, "wanline: cannot return to our namespace: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	free(copy);
	return fd;
}

static void print_counters(const struct dir *d)
{
	fprintf(stderr,
		"wanline %s: delivered %llu packets, %llu wire bytes; dropped %llu at the queue, "
		"%llu for want of ring space, %llu on a down link; longest queue wait %llu us\n",
		d->name, (unsigned long long)d->c.pkts, (unsigned long long)d->c.bytes,
		(unsigned long long)d->c.drop_queue, (unsigned long long)d->c.drop_ring,
		(unsigned long long)d->c.drop_down, (unsigned long long)d->c.max_wait_us);
}

static double parse_num(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0) || v > 1e13) {
		fprintf(stderr, "wanline: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: wanline --a NETNS:IFNAME --b NETNS:IFNAME --delay-ms D "
			"[--rate BITS_PER_S] [--queue-ms Q] [--ring-mib M]\n");
	exit(2);
}

struct opts {
	const char *a, *b;
	double delay_ms, rate, queue_ms, ring_mib;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "a", required_argument, NULL, 'a' },
		{ "b", required_argument, NULL, 'b' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "queue-ms", required_argument, NULL, 'q' },
		{ "ring-mib", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .delay_ms = -1, .queue_ms = -1, .ring_mib = 256 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->a = optarg;
			break;
		case 'b':
			o->b = optarg;
			break;
		case 'd':
			o->delay_ms = parse_num(optarg, "--delay-ms");
			break;
		case 'r':
			o->rate = parse_num(optarg, "--rate");
			break;
		case 'q':
			o->queue_ms = parse_num(optarg, "--queue-ms");
			break;
		case 'm':
			o->ring_mib = parse_num(optarg, "--ring-mib");
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !o->a || !o->b || o->delay_ms < 0 || o->ring_mib < 1 ||
	    o->ring_mib > 4096)
		usage();
	if (o->queue_ms < 0)
		o->queue_ms = o->delay_ms * 2 > 10 ? o->delay_ms * 2 : 10;
}

static int dir_init(struct dir *d, const char *name, const struct opts *o, int in, int out,
		    int stop)
{
	*d = (struct dir){ .name = name, .in_fd = in, .out_fd = out, .stop_fd = stop };
	d->delay_ns = (uint64_t)(o->delay_ms * 1e6);
	d->rate_bps = (uint64_t)o->rate;
	d->queue_ns = (uint64_t)(o->queue_ms * 1e6);
	d->ring_size = (size_t)o->ring_mib << 20;
	d->ring = mmap(NULL, d->ring_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->ring == MAP_FAILED) {
		fprintf(stderr, "wanline: cannot map a %zu-byte ring: %s\n", d->ring_size,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Wait for SIGTERM/SIGINT; SIGUSR1 prints the counters. */
static void wait_signals(const struct dir *ab, const struct dir *ba)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "wanline: signalfd: %s\n", strerror(errno));
		return;
	}
	for (;;) {
		struct signalfd_siginfo si;

		if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
			if (errno == EINTR)
				continue;
			break;
		}
		print_counters(ab);
		print_counters(ba);
		if (si.ssi_signo != SIGUSR1)
			break;
	}
	close(sfd);
}

int main(int argc, char **argv)
{
	struct dir ab, ba;
	pthread_t tab, tba;
	struct opts o;
	int fa, fb, stop;
	sigset_t set;

	parse_opts(argc, argv, &o);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* the threads inherit the mask */
	fa = tun_attach(o.a);
	fb = tun_attach(o.b);
	stop = eventfd(0, EFD_CLOEXEC);
	if (fa < 0 || fb < 0 || stop < 0)
		return 1;
	if (dir_init(&ab, "a->b", &o, fa, fb, stop) || dir_init(&ba, "b->a", &o, fb, fa, stop))
		return 1;
	if (pthread_create(&tab, NULL, dir_run, &ab) || pthread_create(&tba, NULL, dir_run, &ba)) {
		fprintf(stderr, "wanline: cannot start the threads\n");
		return 1;
	}
	fprintf(stderr,
		"wanline ready: %s <-> %s, %.3f ms each way, rate %.0f bit/s%s, queue %.1f ms\n",
		o.a, o.b, o.delay_ms, o.rate, o.rate ? "" : " (no cap)", o.queue_ms);
	wait_signals(&ab, &ba);
	if (eventfd_write(stop, 1))
		fprintf(stderr, "wanline: cannot stop the threads: %s\n", strerror(errno));
	pthread_join(tab, NULL);
	pthread_join(tba, NULL);
	return 0;
}
