#!/bin/sh
# The eBPF probe inside a PID namespace (a container, a pod): its filters
# compare the ids the VMM sees with getpid()/gettid(), which there differ
# from the kernel's; before bpf_get_ns_current_pid_tgid it saw nothing of
# the VMM (vCPU run time 0, no pages). Runs the probe's unit tests in a new
# PID namespace with its own /proc. No KVM needed.
. tests/e2e/lib.sh
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	case ",${HM_REQUIRE:-}," in
	*,bpf,*) echo "FAIL: cannot make a PID namespace (unshare)"; exit 1 ;;
	esac
	echo "skip: cannot make a PID namespace"
	exit 77
fi
unshare --pid --fork --mount-proc "$O/tests/test_probe.test" >"$T/probe.out" 2>&1
rc=$?
cat "$T/probe.out"
if grep -q 'SKIPPED.*test_probe_vcpu_run_bpf' "$T/probe.out"; then
	case ",${HM_REQUIRE:-}," in
	*,bpf,*) echo "FAIL: BPF is required (HM_REQUIRE) but the probe did not load"; exit 1 ;;
	esac
	echo "skip: no BPF here"
	exit 77
fi
check "test_probe passes in a PID namespace" [ $rc -eq 0 ]
check "the BPF vCPU run time was measured there" grep -q '^vcpu_run 0\.[1-9].*(bpf:\|^vcpu_run 1\.[0-4].*(bpf:' "$T/probe.out"
check "in a namespace of its own (pid 1 there)" unshare --pid --fork --mount-proc sh -c '[ $$ -eq 1 ]'
finish
