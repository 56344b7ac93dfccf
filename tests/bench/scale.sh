#!/bin/sh
# Scale run (not in CI): N prompts x 1 sample (default 800,000) through the
# whole pipeline against the simulator at zero latency with a fixed fault mix:
# 2% 429 (Retry-After: 1), 2% 5xx, 1% malformed bodies, 0.2% stalls of 2 s
# under a 1 s stall timeout.  Prints each stage's wall time and peak RSS, the
# database and shard sizes, and checks that nothing was lost.
#   sh tests/bench/scale.sh BUILD_DIR [N]
set -eu
BIN="$(cd "${1:-build}" && pwd)"
N="${2:-${SCALE_N:-800000}}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
PATH="$BIN:$PATH"
work="${SCALE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/distill-scale-XXXXXX")}"
mkdir -p "$work"
cd "$work"
export DISTILL_DB="$work/scale.db"
rm -f scale.db scale.db-wal scale.db-shm
rm -rf export
echo "scale run: $N prompts in $work"

distill-teacher-sim --port 0 --seed 11 --threads 1 --http-429 0.02 --retry-after 1 --http-500 0.01 \
	--http-503 0.01 --malformed 0.01 --stall 0.002 --stall-time 2s --wrong 0.1 >sim.out 2>sim.err &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening sim.out 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' sim.out)
cat >teacher.json <<JSON
{
  "endpoints": [{"name": "sim", "base_url": "http://127.0.0.1:$port/v1", "model": "distill-sim",
                 "max_concurrency": 128}],
  "profiles": {"default": {"model": "distill-sim", "max_tokens": 2048, "seed": 1}},
  "timeouts": {"connect": "5s", "total": "30s", "stall": "1s", "grace": "10s"},
  "max_attempts": 8
}
JSON

printf '%-10s %10s %12s\n' stage seconds "peak RSS MB" >stages.txt
stage() {
	name=$1
	shift
	s=$(date +%s.%N)
	/usr/bin/time -f "%M" -o rss.txt "$@" >"$name.log" 2>&1 || [ $? = 3 ] || { tail "$name.log"; exit 1; }
	e=$(date +%s.%N)
	printf '%-10s %10.1f %12.0f\n' "$name" "$(echo "$e - $s" | bc)" "$(($(tail -1 rss.txt) / 1024))" >>stages.txt
}

distill-teacher-sim gen-prompts --n "$N" --seed 1 --kind add --digits 6 >prompts.jsonl
stage init distill init
stage ingest distill ingest prompts.jsonl --source scale --samples 1
stage work distill work --teacher teacher.json --procs 2 --concurrency 64 --until-empty --max-time 2h
stage filter distill filter --rules "$SRC/rules/r1.rules"
stage dedup distill dedup
stage export distill export export --val-fraction 0.01
stage report distill report --out report.html
cat stages.txt
# The simulator's own peak RSS.
echo "simulator peak RSS: $(($(grep VmHWM /proc/$sim/status | awk '{print $2}') / 1024)) MB"

q() { sqlite3 "$DISTILL_DB" "$1"; }
done=$(q "SELECT COUNT(*) FROM jobs WHERE state = 'done'")
dead=$(q "SELECT COUNT(*) FROM jobs WHERE state = 'dead'")
traces=$(q "SELECT COUNT(*) FROM traces")
exported=$(q "SELECT samples FROM exports ORDER BY id DESC LIMIT 1")
keep=$(q "SELECT COUNT(*) FROM sample_audit WHERE accepted = 1 AND duplicate_of IS NULL
	AND duplicate_prompt_of IS NULL AND NOT contaminated")
echo "jobs: $done done + $dead dead of $N; traces $traces; exported $exported; accepted non-duplicate $keep"
echo "database: $(du -m scale.db | cut -f1) MB; shards: $(du -cm export/*.zst | tail -1 | cut -f1) MB in $(ls export/*.zst | wc -l) files"
[ "$((done + dead))" = "$N" ] && [ "$traces" = "$done" ] && [ "$exported" = "$keep" ] && echo "checks: ok" ||
	{ echo "checks: FAILED"; exit 1; }
