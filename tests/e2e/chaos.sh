#!/bin/sh
# Chaos: while `distill work` runs against a faulty simulator, a random worker
# process is killed with SIGKILL every second; then a rerun completes.  Every
# job must be done exactly once, traces must equal done jobs, no lease may be
# left, and `distill check` must pass.  CHAOS_SECONDS (default 8) and
# CHAOS_PROMPTS (default 400) size it; the documented full run is 20 s.
. "$(dirname "$0")/lib.sh"
SECONDS_TOTAL="${CHAOS_SECONDS:-8}"
N="${CHAOS_PROMPTS:-400}"

start_sim --seed 3 --http-429 0.03 --http-500 0.03 --malformed 0.02 --close 0.01 --ttft 50ms --tokens-per-s 20000
teacher_config teacher.json
distill-teacher-sim gen-prompts --n "$N" --seed 5 --kind add --digits 3 >p.jsonl
distill init >/dev/null
distill ingest p.jsonl --samples 1 >/dev/null

kills=0
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt "$SECONDS_TOTAL" ]; do
	if [ -z "${work_pid:-}" ] || ! kill -0 "$work_pid" 2>/dev/null; then
		distill work --db "$DISTILL_DB" --teacher teacher.json --procs 2 --concurrency 8 \
			>/dev/null 2>>work.err &
		work_pid=$!
		sleep 0.3
	fi
	sleep 1
	victim=$(pgrep -P "$work_pid" | shuf -n 1 || true)
	if [ -n "$victim" ]; then
		kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
	fi
done
kill -KILL "$work_pid" 2>/dev/null || true
pkill -KILL -P "$work_pid" 2>/dev/null || true
wait "$work_pid" 2>/dev/null || true
echo "chaos: $kills workers killed in ${SECONDS_TOTAL}s; $(q "SELECT COUNT(*) FROM jobs WHERE state='done'") of $N done"

# The rerun: leases of killed workers expire (6 s) and are claimed again.
distill work --teacher teacher.json --procs 2 --until-empty --max-time 3m >/dev/null 2>>work.err ||
	fail "rerun failed: $(tail -3 work.err)"

done=$(q "SELECT COUNT(*) FROM jobs WHERE state='done'")
dead=$(q "SELECT COUNT(*) FROM jobs WHERE state='dead'")
traces=$(q "SELECT COUNT(*) FROM traces")
leased=$(q "SELECT COUNT(*) FROM jobs WHERE state='leased' OR lease_owner IS NOT NULL")
twice=$(q "SELECT COUNT(*) FROM (SELECT job_id FROM traces GROUP BY job_id HAVING COUNT(*) > 1)")
[ "$((done + dead))" = "$N" ] || fail "done $done + dead $dead != $N jobs"
[ "$traces" = "$done" ] || fail "traces $traces != done jobs $done"
[ "$leased" = 0 ] || fail "$leased leases left behind"
[ "$twice" = 0 ] || fail "$twice jobs have two traces"
distill check >/dev/null || fail "distill check failed"
echo "chaos: ok: $done done, $dead dead, $traces traces, $kills kills"
echo "1 passed, 0 failed"
