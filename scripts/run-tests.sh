#!/bin/sh
# Run sealgate's test suites and print one closing line "sealgate: N passed, N failed".
# Usage: scripts/run-tests.sh BUILD_DIR [unit|e2e|all]
#   unit: every BUILD_DIR/tests/test_* (cmocka)
#   e2e:  tests/e2e/test_*.py with Debian's /usr/bin/python3 (unittest), SEALGATE_BIN set
# Output of passing suites is kept short; a failing suite's output is printed whole.
set -u
build=${1:?build dir}
what=${2:-all}
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
failed_suites=""
logdir=$(mktemp -d /tmp/sealgate-tests.XXXXXX)
trap 'rm -rf "$logdir"' EXIT

count() {	# count LOG: add cmocka or unittest totals from a suite log
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	if grep -q '^e2e-result:' "$1"; then
		p=$(sed -n 's/^e2e-result: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$1" | tail -1)
		f=$(sed -n 's/^e2e-result: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$1" | tail -1)
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

run_suite() {	# run_suite NAME CMD...
	name=$1
	shift
	log="$logdir/$(echo "$name" | tr '/' '_').log"
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	count "$log"
	secs=$(($(date +%s) - start))
	if [ $rc -ne 0 ]; then
		cat "$log"
		echo "FAIL $name (exit $rc, ${secs}s)"
		failed_suites="$failed_suites $name"
		grep -q '^\[  FAILED  \]\|^e2e-result:' "$log" || failed=$((failed + 1))
	else
		grep '^\[  PASSED  \]\|^e2e-result:' "$log" | sed "s|^|ok   $name: |; s|\$| (${secs}s)|"
	fi
}

if [ "$what" = unit ] || [ "$what" = all ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		run_suite "unit/$(basename "$t")" "$t"
	done
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
	for t in "$top"/tests/e2e/test_*.py; do
		[ -f "$t" ] || continue
		run_suite "e2e/$(basename "$t" .py)" env SEALGATE_BIN="$top/$build/sealgate" \
			/usr/bin/python3 "$top/tests/e2e/runner.py" "$t"
	done
fi

[ -n "$failed_suites" ] && echo "failed suites:$failed_suites"
echo "sealgate: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ -z "$failed_suites" ]
