#!/bin/sh
# filter.bench.sh - throughput of `distill filter` with rules/r1.rules on a
# database of BENCH_TRACES (default 100,000) traces made from the real
# traces with varied numbers (filter_gen.py), in MB of trace text
# (reasoning + answer) per second per core, against the Python `re` script
# of filter_baseline.py measured in the same run on the same database: the
# regex rules of r1.rules alone, then the full set.  Both write one verdict
# per rule and the outcome; both use WAL with synchronous=NORMAL; verdicts
# are cleared before every run, so each judges every trace afresh.  "Per
# core" is bytes over CPU seconds (user + system, workers included), which a
# busy shared machine does not distort; wall times are printed too.  Medians
# of BENCH_RUNS (default 3) runs of distill and BENCH_PY_RUNS (default 1) of
# the slow baseline, then the ratios.  Then the rules alone, without the
# database (bench_filter against the baseline's memory mode, on the first
# BENCH_ENGINE_TRACES traces, default 20,000), since SQLite's reads and writes
# are the same work on both sides.
set -eu
BIN="${DISTILL_BIN:-$(pwd)/build}"
SRC="${DISTILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
SHARED="${DISTILL_SHARED:-$SRC/../shared/data}"
N="${BENCH_TRACES:-100000}"
RUNS="${BENCH_RUNS:-3}"
PY_RUNS="${BENCH_PY_RUNS:-1}"
ENGINE_N="${BENCH_ENGINE_TRACES:-20000}"
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

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
clear() { sqlite3 "$db" "DELETE FROM verdicts; DELETE FROM trace_outcomes;"; }

# timed OUT CMD...: append "wall cpu" of one run to OUT.
timed() {
	out=$1
	shift
	clear
	/usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >/dev/null 2>&1
	awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$work/t" >>"$out"
}

for set in regex full; do
	rules="$SRC/rules/r1.rules"
	[ "$set" = regex ] && rules="$work/regex.rules"
	: >"$work/d1" && : >"$work/d2" && : >"$work/py"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		timed "$work/d1" "$BIN/distill" filter --db "$db" --rules "$rules" --procs 1
		timed "$work/d2" "$BIN/distill" filter --db "$db" --rules "$rules" --procs 2
		i=$((i + 1))
	done
	i=0
	while [ "$i" -lt "$PY_RUNS" ]; do
		timed "$work/py" python3 "$SRC/tests/bench/filter_baseline.py" "$db" "$set"
		i=$((i + 1))
	done
	d1c=$(awk '{ print $2 }' "$work/d1" | median)
	d2w=$(awk '{ print $1 }' "$work/d2" | median)
	d2c=$(awk '{ print $2 }' "$work/d2" | median)
	pyc=$(awk '{ print $2 }' "$work/py" | median)
	pyw=$(awk '{ print $1 }' "$work/py" | median)
	echo "$set $bytes $d1c $d2w $d2c $pyc $pyw" | awk '{
		mb = $2 / 1e6
		printf "%-5s distill: %6.1f MB/s per core (1 proc: %.2f CPU-s; 2 procs: %.2f s wall, %.2f CPU-s)\n", $1, mb / $3, $3, $4, $5
		printf "      python re: %6.1f MB/s per core (%.2f CPU-s, %.2f s wall)   ratio per core: %.1fx\n", mb / $6, $6, $7, $6 / $3
		if ($1 == "full")
			printf "      800,000 traces of 4 KB (3.2 GB) on 2 cores at this rate: %.0f s of wall time if both cores are free (target < 120 s)\n", 3.2e9 / 1e6 / (mb / $3) / 2
	}'
done

echo "the rules alone, in memory, first $ENGINE_N traces:"
for set in regex full; do
	rules="$SRC/rules/r1.rules"
	[ "$set" = regex ] && rules="$work/regex.rules"
	c=$("$BIN/bench_filter" "$db" "$rules" "$ENGINE_N")
	p=$(python3 "$SRC/tests/bench/filter_baseline.py" "$db" "$set" "$ENGINE_N")
	echo "$set $c $p" | awk '{
		c = $3 / 1e6 / $4; p = $6 / 1e6 / $7
		printf "%-5s distill engine: %7.1f MB/s per core | python re: %6.1f MB/s | ratio %.1fx\n", $1, c, p, c / p
	}'
done
