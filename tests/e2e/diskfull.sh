#!/bin/sh
# Disk full, simulated with RLIMIT_FSIZE (writes past the limit fail with
# EFBIG; SIGXFSZ is ignored so the program sees the error): during work and
# during export.  Each must fail with a clear message, leave the database
# intact (integrity_check ok, distill check ok), and a rerun without the
# limit must complete.
. "$(dirname "$0")/lib.sh"

start_sim --seed 4 --pad-reasoning 4000
teacher_config teacher.json
distill-teacher-sim gen-prompts --n 300 --seed 6 --kind add --digits 3 >p.jsonl
distill init >/dev/null
distill ingest p.jsonl --samples 1 >/dev/null

# limited KB CMD...: run CMD with files capped at KB kilobytes past the
# database's current size.
limited() {
	kb=$1
	shift
	cap=$(( ($(stat -c %s "$DISTILL_DB") + $(stat -c %s "$DISTILL_DB-wal" 2>/dev/null || echo 0)) / 1024 + kb ))
	sh -c "trap '' XFSZ; ulimit -f $cap; exec \"\$@\"" limited "$@"
}

# During work: the WAL cannot grow past the cap.
if limited 256 distill work --teacher teacher.json --procs 1 --until-empty --max-time 2m >work.out 2>work.err; then
	fail "work under a full disk exited 0"
fi
grep -qiE "disk full|database or disk is full|i/o error|File too large" work.err ||
	fail "work: no clear message: $(tail -3 work.err)"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after a full disk during work"
distill check >/dev/null || fail "distill check after a full disk during work"
before=$(q "SELECT COUNT(*) FROM traces")
distill work --teacher teacher.json --procs 1 --until-empty --max-time 2m >/dev/null 2>&1 ||
	fail "work rerun failed"
[ "$(q "SELECT COUNT(*) FROM jobs WHERE state='done'")" = 300 ] || fail "rerun did not complete the queue"
echo "work: failed cleanly with $before traces recorded, rerun completed all 300"

# During export: shards cannot be written; no OUTDIR appears.
distill filter --rules "$SRC/rules/r1.rules" >/dev/null
if sh -c "trap '' XFSZ; ulimit -f 8; exec distill export out" >exp.out 2>exp.err; then
	fail "export under a full disk exited 0"
fi
grep -qiE "disk full|no space|File too large|i/o error|write" exp.err || fail "export: no clear message: $(cat exp.err)"
[ ! -e out ] || fail "a partial export directory was left at out"
[ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after a full disk during export"
distill export out >/dev/null || fail "export rerun failed"
distill export --verify out >/dev/null || fail "export rerun does not verify"
echo "export: failed cleanly, rerun verified"
echo "2 passed, 0 failed"
