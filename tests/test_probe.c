// SPDX-License-Identifier: MIT
/*
 * The probe's eBPF programs loaded for real (src/probe.h), on what needs no
 * KVM: the loader's choice and its reason, the vCPU run time of real
 * threads (sched_stat_runtime, and the thread-clock fallback), and the RTT
 * of a real loopback TCP connection (tcp_probe). The dirty-page programs
 * need a running guest: tests/e2e/test_probe.sh. The VM here is a struct vm
 * with RAM size, state and vCPU threads filled in, no KVM behind it.
 * Skips what needs privilege when BPF cannot load (HM_REQUIRE=bpf: fails).
 */
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "src/probe.h"
#include "src/vcpu.h"
#include "src/vm.h"

struct fake {
	struct vm vm;
	struct vcpu vcpu;
	volatile bool stop;
};

static void *spin(void *arg)
{
	struct fake *f = arg;

	while (!f->stop)
		;
	return NULL;
}

static void fake_init(struct fake *f, bool ring)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->vm.lock, NULL);
	f->vm.mem.pages = 1 << 18;
	f->vm.mem.size = 1ULL << 30;
	f->vm.dirty_ring = ring;
	f->vm.state = VM_RUNNING;
}

static void fake_exit(struct fake *f)
{
	if (f->vcpu.started) {
		f->stop = true;
		pthread_join(f->vcpu.thread, NULL);
	}
	pthread_mutex_destroy(&f->vm.lock);
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct probe *open_or_skip(struct fake *f, unsigned int flags, bool need_bpf)
{
	struct probe *p = NULL;
	char why[128];

	assert_int_equal(probe_open_flags(&p, &f->vm, flags, why, sizeof(why)), 0);
	assert_non_null(p);
	if (need_bpf && why[0]) {
		probe_close(p);
		fake_exit(f);
		hm_skip_unless("bpf", false, why);
	}
	return p;
}

static void test_probe_source_says_which(void **state)
{
	struct fake f;
	struct probe_sample s;
	struct probe *p;

	fake_init(&f, false);
	p = open_or_skip(&f, 0, false);
	assert_int_equal(probe_sample(p, &s), 0);
	assert_string_equal(s.tracking, "dirty-log");
	if (s.why_fallback[0])
		assert_string_equal(s.source, PROBE_SRC_HARVEST);
	else
		assert_string_equal(s.source, PROBE_SRC_SPTE);
	/* nothing measured yet */
	assert_int_equal(s.nwin, 0);
	assert_int_equal(s.events, 0);
	probe_close(p);
	fake_exit(&f);
}

static void test_probe_ring_counts_ring_pushes(void **state)
{
	struct fake f;
	struct probe_sample s;
	struct probe *p;

	fake_init(&f, true);
	p = open_or_skip(&f, 0, true);
	assert_int_equal(probe_sample(p, &s), 0);
	assert_string_equal(s.source, PROBE_SRC_RING);
	assert_string_equal(s.tracking, "dirty-ring");
	probe_close(p);
	fake_exit(&f);
}

static void test_probe_no_bpf_falls_back_with_reason(void **state)
{
	struct fake f;
	struct probe_sample s;
	struct probe *p;

	fake_init(&f, false);
	p = open_or_skip(&f, PROBE_NO_BPF, false);
	assert_int_equal(probe_sample(p, &s), 0);
	assert_string_equal(s.source, PROBE_SRC_HARVEST);
	assert_true(strlen(s.why_fallback) > 0);
	probe_close(p);
	fake_exit(&f);
}

/* A spinning "vCPU" thread runs most of the time: its run fraction is well above 0. */
static void run_time(unsigned int flags)
{
	struct fake f;
	struct probe_sample s;
	struct probe *p;

	fake_init(&f, false);
	f.vm.nr_vcpus = 1;
	f.vm.vcpus[0] = &f.vcpu;
	assert_int_equal(pthread_create(&f.vcpu.thread, NULL, spin, &f), 0);
	f.vcpu.started = true;
	p = open_or_skip(&f, flags, !(flags & PROBE_NO_BPF));
	assert_int_equal(probe_sample(p, &s), 0);
	nap_ms(1500);
	assert_int_equal(probe_sample(p, &s), 0);
	print_message("vcpu_run %.3f (%s)\n", s.vcpu_run_frac, s.source);
	assert_true(s.vcpu_run_frac > 0.1);
	assert_true(s.vcpu_run_frac < 1.5);
	probe_close(p);
	fake_exit(&f);
}

static void test_probe_vcpu_run_bpf(void **state)
{
	run_time(0);
}

static void test_probe_vcpu_run_thread_clock(void **state)
{
	run_time(PROBE_NO_BPF);
}

/* Dirty tracking that cannot start (no KVM behind this VM) is an error, and leaves no thread. */
static void test_probe_measure_error_is_reported(void **state)
{
	struct fake f;
	struct probe_sample s;
	struct probe *p;

	fake_init(&f, false);
	f.vm.kvm_fd = -1;
	f.vm.vm_fd = -1;
	p = open_or_skip(&f, PROBE_NO_BPF, false);
	assert_true(probe_measure_start(p) < 0);
	assert_int_equal(probe_sample(p, &s), 0);
	assert_int_equal(s.nwin, 0);
	probe_measure_stop(p);
	probe_close(p);
	fake_exit(&f);
}

static int tcp_pair(int *cli, int *srv, uint16_t *cport)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		return -errno;
	*cli = socket(AF_INET, SOCK_STREAM, 0);
	if (*cli < 0 || connect(*cli, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	*srv = accept(l, NULL, NULL);
	close(l);
	len = sizeof(a);
	if (*srv < 0 || getsockname(*cli, (struct sockaddr *)&a, &len))
		return -errno;
	*cport = ntohs(a.sin_port);
	return 0;
}

/* The sender's side of a real connection: ACKs coming back give srtt and cwnd. */
static void test_probe_tcp_rtt_of_watched_port(void **state)
{
	static char buf[65536];
	struct probe_sample s = { 0 };
	struct fake f;
	struct probe *p;
	uint16_t port = 0;
	int cli = -1;
	int srv = -1;

	fake_init(&f, false);
	p = open_or_skip(&f, 0, true);
	assert_int_equal(tcp_pair(&cli, &srv, &port), 0);
	probe_watch_port(p, port);
	for (int i = 0; i < 50 && !s.rtt_us; i++) {
		assert_int_equal(write(cli, buf, sizeof(buf)), sizeof(buf));
		for (ssize_t got = 0; got < (ssize_t)sizeof(buf);) {
			ssize_t n = read(srv, buf, sizeof(buf));

			assert_true(n > 0);
			got += n;
		}
		nap_ms(20);
		assert_int_equal(probe_sample(p, &s), 0);
	}
	print_message("rtt %llu us, cwnd %llu\n", (unsigned long long)s.rtt_us,
		      (unsigned long long)s.cwnd);
	assert_true(s.rtt_us > 0);
	assert_true(s.cwnd > 0);
	/* another port is not watched */
	probe_watch_port(p, 0);
	assert_int_equal(probe_sample(p, &s), 0);
	assert_int_equal(s.rtt_us, 0);
	close(cli);
	close(srv);
	probe_close(p);
	fake_exit(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_source_says_which),
		cmocka_unit_test(test_probe_ring_counts_ring_pushes),
		cmocka_unit_test(test_probe_no_bpf_falls_back_with_reason),
		cmocka_unit_test(test_probe_vcpu_run_bpf),
		cmocka_unit_test(test_probe_vcpu_run_thread_clock),
		cmocka_unit_test(test_probe_measure_error_is_reported),
		cmocka_unit_test(test_probe_tcp_rtt_of_watched_port),
	};

	return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
