#!/bin/sh
# Run every libFuzzer harness in DIR for SECONDS each, seeded from tests/fuzz/corpus/NAME
# and with tests/fuzz/NAME.dict when present. Exit 1 on the first crash.
set -eu
dir=${1:?fuzzer dir}
dir=$(cd "$dir" && pwd)	# each harness runs from its own work dir
secs=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
n=0
for f in "$dir"/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	work=$(mktemp -d /tmp/sealgate-fuzz.XXXXXX)
	seeds="$top/tests/fuzz/corpus/$name"
	dict=""
	[ -f "$top/tests/fuzz/$name.dict" ] && dict="-dict=$top/tests/fuzz/$name.dict"
	[ -d "$seeds" ] && cp -r "$seeds/." "$work/" 2>/dev/null || true
	echo "fuzz: $name for ${secs}s"
	# shellcheck disable=SC2086
	if ! (cd "$work" && "$f" -max_total_time="$secs" -max_len=65536 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $dict "$work" >"$work/log" 2>&1); then
		tail -60 "$work/log"
		echo "fuzz: $name FAILED (artifacts in $work)"
		exit 1
	fi
	grep -E 'stat::number_of_executed_units|Done ' "$work/log" | tail -2 | sed "s/^/  /"
	rm -rf "$work"
	n=$((n + 1))
done
echo "fuzz: $n harnesses, 0 crashes"
