#!/bin/sh
# make demo: the whole pipeline end to end against the bundled teacher
# simulator, on generated data, in ./demo.  Optional real-trace replay:
#   make demo REPLAY=../shared/data/traces_r1_gsm8k.jsonl
# Environment: DEMO_PROMPTS (default 3000), DEMO_STEPS per student (default
# 800), DEMO_HELDOUT (default 300).
set -eu
BUILD="${1:-build}"
BIN="$(cd "$BUILD" && pwd)"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
REPLAY="${REPLAY:-}"
N="${DEMO_PROMPTS:-3000}"
HELD="${DEMO_HELDOUT:-300}"
STEPS="${DEMO_STEPS:-800}"
PATH="$BIN:$PATH"
export DISTILL_DB="demo.db"
[ -z "$REPLAY" ] || REPLAY="$(cd "$(dirname "$REPLAY")" && pwd)/$(basename "$REPLAY")"

mkdir -p demo
cd demo
rm -rf demo.db demo.db-wal demo.db-shm export export-unfiltered student student-unfiltered report.html \
	*.log prompts.jsonl heldout.jsonl unfiltered.rules
t0=$(date +%s)
say() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - t0))"; }

# 1-2. The simulator, with realistic noise, on a free loopback port; stopped on
# exit, Ctrl-C included.
say "starting the teacher simulator"
sim_pid=""
cleanup() { [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
replay_arg=""
[ -z "$REPLAY" ] || replay_arg="--replay $REPLAY"
# shellcheck disable=SC2086
distill-teacher-sim --port 0 --seed 7 --wrong 0.20 --mixlang 0.05 --loop 0.03 --truncate 0.03 \
	--http-429 0.025 --http-500 0.0125 --http-503 0.0125 --retry-after 1 $replay_arg \
	>sim.log 2>sim.err &
sim_pid=$!
for _ in $(seq 50); do
	grep -q listening sim.log 2>/dev/null && break
	sleep 0.1
done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' sim.log)
[ -n "$port" ] || { echo "demo: the simulator did not start:" >&2; cat sim.err >&2; exit 1; }
export DISTILL_TEACHER_URL="http://127.0.0.1:$port/v1"
echo "distill-teacher-sim on port $port: 20% wrong answers, 5% mixed language, 3% loops, 3% truncation, 5% 429/5xx"

# 3. Prompts: arithmetic for training, a held-out set kept out of it.
say "generating and ingesting prompts"
distill-teacher-sim gen-prompts --n "$HELD" --seed 99 --kind add --digits 3 >heldout.jsonl
distill-teacher-sim gen-prompts --n "$N" --seed 1 --kind add --digits 3 --exclude heldout.jsonl >prompts.jsonl
distill init
distill ingest prompts.jsonl --source sim-add --samples 1
if [ -n "$REPLAY" ]; then
	distill ingest "$REPLAY" --source replay --samples 1 || [ $? = 3 ]
fi

# 4. Work, filter, dedup, export.
say "asking the teacher (distill work)"
distill work --until-empty --max-time 10m || [ $? = 3 ]
say "filtering (rules/r1.rules)"
distill filter --rules "$SRC/rules/r1.rules"
say "dedup and decontamination"
bench="--benchmark heldout.jsonl"
for f in math500_test.jsonl aime24_test.jsonl gsm8k_test.jsonl; do
	[ -f "$SRC/../shared/data/$f" ] && bench="$bench --benchmark $SRC/../shared/data/$f"
done
# shellcheck disable=SC2086
distill dedup $bench || [ $? = 3 ]
say "exporting shards"
# The unfiltered baseline first: a rule set with no rules accepts every trace.
# The verdicts of r1.rules stay stored: refiltering with it makes it current
# again without judging anything twice or asking the teacher.
printf '# no rules: every trace is accepted (the unfiltered baseline)\n' >unfiltered.rules
distill filter --rules unfiltered.rules >/dev/null
unfiltered=$(sqlite3 demo.db "SELECT hash FROM rulesets WHERE is_current = 1")
distill export export-unfiltered --ruleset "$unfiltered" --val-fraction 0.05 --include duplicates,contaminated,flagged
distill filter --rules "$SRC/rules/r1.rules" >/dev/null
distill export export --val-fraction 0.05

# 5. Two students, same shape, steps and seed: filtered and unfiltered traces.
say "training a student on the filtered shards ($STEPS steps)"
train_one() {
	# A small student (2 layers, width 64) learns 3-digit addition in a few
	# hundred steps; both students get the same shape, steps and seed.
	distill-train --data "$1" --out "$2" --layers 2 --dim 64 --ctx 320 --batch 16 --lr 5e-3 \
		--steps "$STEPS" --seed 1 --log-every 100 >"$2.log" 2>&1 ||
		{ tail -5 "$2.log" >&2; exit 1; }
	grep -E '^step ' "$2.log" | tail -1
}
train_one export student
say "training a student on the unfiltered shards ($STEPS steps, same seed)"
train_one export-unfiltered student-unfiltered
say "evaluating both on $HELD held-out problems"
distill-train eval --ckpt student/ckpt.bin --prompts heldout.jsonl | tee eval.log | tail -1
distill-train eval --ckpt student-unfiltered/ckpt.bin --prompts heldout.jsonl | tee eval-unfiltered.log | tail -1

# 6. The report.
say "report"
distill report --out report.html --train-log student/log.jsonl
acc() { sed -n 's/^accuracy: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p' "$1"; }
wilson() {
	# 95% Wilson interval of k successes in n
	awk -v k="$1" -v n="$2" 'BEGIN { z = 1.96; p = k / n; d = 1 + z*z/n;
		c = (p + z*z/(2*n)) / d; h = z * sqrt(p*(1-p)/n + z*z/(4*n*n)) / d;
		lo = c - h; if (lo < 0) lo = 0; hi = c + h; if (hi > 1) hi = 1;
		printf "%.1f%% (95%% CI %.1f-%.1f%%)", 100*p, 100*lo, 100*hi }'
}
printf '\nfunnel:\n'
sqlite3 -header -column demo.db "SELECT (SELECT COUNT(*) FROM prompts) AS prompts, (SELECT COUNT(*) FROM traces) AS traces,
	(SELECT COUNT(*) FROM sample_audit WHERE accepted = 1) AS accepted,
	(SELECT COUNT(*) FROM contamination) AS contaminated,
	(SELECT samples FROM exports ORDER BY id DESC LIMIT 1) AS exported"
printf '\nrejections by rule:\n'
sqlite3 -header -column demo.db "SELECT rule, rejected FROM rule_stats WHERE rejected > 0 ORDER BY rejected DESC"
set -- $(acc eval.log)
filtered="$(wilson "$1" "$2")"
set -- $(acc eval-unfiltered.log)
unf="$(wilson "$1" "$2")"
cat <<EOT

student accuracy on $HELD held-out problems:
  trained on filtered traces:   $filtered
  trained on unfiltered traces: $unf

database: demo/demo.db          shards: demo/export/ (unfiltered: demo/export-unfiltered/)
report:   demo/report.html      took $(($(date +%s) - t0))s

three queries to try (sqlite3 demo/demo.db):
  SELECT rule, evaluated, rejected FROM rule_stats ORDER BY rejected DESC;
  SELECT trace_id, prompt, failed_rules FROM sample_audit WHERE accepted = 0 LIMIT 5;
  SELECT state, count FROM queue_stats;
EOT
