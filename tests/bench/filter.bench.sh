#!/bin/sh
# filter.bench.sh - throughput of `distill filter` with rules/r1.rules on a
# database of BENCH_TRACES (default 100,000) traces made from the real
# traces with varied numbers (filter_gen.py), in MB of trace text
# (reasoning + answer) per second per core, against the Python `re` script
# of filter_baseline.py measured in the same run on the same database: the
# regex rules of r1.rules alone, then the full set.  Both write one verdict
# per rule and the outcome; both use WAL with synchronous=NORMAL.  Prints
# medians of BENCH_RUNS (default 3) runs and the ratios.
set -eu
BIN="${DISTILL_BIN:-$(pwd)/build}"
SRC="${DISTILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
SHARED="${DISTILL_SHARED:-$SRC/../shared/data}"
N="${BENCH_TRACES:-100000}"
RUNS="${BENCH_RUNS:-3}"
if [ ! -f "$SHARED/traces_r1_gsm8k.jsonl" ]; then
	echo "skipped: $SHARED has no real traces"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/distill-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
db="$work/b.db"

"$BIN/distill" init --db "$db" >/dev/null
python3 "$SRC/tests/bench/filter_gen.py" "$db" "$N" "$SHARED"/traces_*.jsonl
# The regex rules of r1.rules: its must_match / must_not_match entries.
awk 'BEGIN { RS = ""; ORS = "\n\n" } /\n[ \t]*kind[ \t]+must_(not_)?match/' "$SRC/rules/r1.rules" >"$work/regex.rules"
bytes=$(sqlite3 "$db" "SELECT SUM(COALESCE(length(CAST(reasoning AS BLOB)), 0) + COALESCE(length(CAST(answer AS BLOB)), 0)) FROM traces")
mb=$(echo "$bytes" | awk '{ printf "%.1f", $1 / 1e6 }')
echo "database: $N traces, $mb MB of reasoning + answer; $(grep -c '^rule ' "$work/regex.rules") regex rules, $(grep -c '^rule ' "$SRC/rules/r1.rules") rules in all"

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# distill_time RULES PROCS: seconds of one `distill filter --all` (wall).
distill_time() {
	t0=$(now)
	"$BIN/distill" filter --db "$db" --rules "$1" --all --procs "$2" >/dev/null 2>&1
	t1=$(now)
	echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
}
python_time() {
	python3 "$SRC/tests/bench/filter_baseline.py" "$db" "$1" | awk '{ print $3 }'
}

for set in regex full; do
	rules="$SRC/rules/r1.rules"
	[ "$set" = regex ] && rules="$work/regex.rules"
	: >"$work/d1" && : >"$work/d2" && : >"$work/py"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		distill_time "$rules" 1 >>"$work/d1"
		distill_time "$rules" 2 >>"$work/d2"
		python_time "$set" >>"$work/py"
		i=$((i + 1))
	done
	d1=$(median <"$work/d1")
	d2=$(median <"$work/d2")
	py=$(median <"$work/py")
	echo "$set $bytes $d1 $d2 $py $N" | awk '{
		mbs1 = $2 / 1e6 / $3; mbs2 = $2 / 1e6 / $4; py = $2 / 1e6 / $5
		printf "%-5s distill 1 proc: %6.2f s %7.1f MB/s/core | 2 procs: %6.2f s %7.1f MB/s | python re: %7.2f s %6.1f MB/s | ratio per core %.1fx\n", \
			$1, $3, mbs1, $4, mbs2, $5, py, mbs1 / py
		if ($1 == "full")
			printf "      800,000 traces of 4 KB (3.2 GB) at the 2-proc rate: %.0f s (target < 120 s)\n", 3.2e9 / 1e6 / mbs2
	}'
done
