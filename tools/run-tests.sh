#!/bin/sh
# Run the unit-test binaries given as arguments, then every end-to-end
# script under tests/e2e/. cmocka's summaries reach stdout; the last line is
# the project-wide "N passed, N failed" count. HM_REQUIRE=kvm,uffd,bpf (set
# by .ci/run) turns a skip for a missing facility into a failure.
O=${O:-build}
export O
passed=0
failed=0
skipped=0
failures=""
for t in "$@"; do
	echo "== $t"
	if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures="$failures $t"; fi
done
for t in tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	echo "== $t"
	# a script that hangs fails instead of holding CI: 15 minutes each at most
	timeout -k 10 900 sh "$t"
	rc=$?
	[ $rc -eq 124 ] && echo "FAIL: $t did not finish within 900 s"
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)); echo "SKIPPED: $t" ;;
	*) failed=$((failed + 1)); failures="$failures $t" ;;
	esac
done
[ -n "$failures" ] && echo "failed:$failures"
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
