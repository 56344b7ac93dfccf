# lib.sh - shared by the end-to-end fault tests: a scratch directory, the
# binaries on PATH, and a simulator started on a free port (stopped on exit).
set -eu
BIN="${DISTILL_BIN:?DISTILL_BIN is not set}"
SRC="${DISTILL_SRC:?DISTILL_SRC is not set}"
PATH="$BIN:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/distill-e2e-XXXXXX")
sim_pid=""
cleanup() {
	[ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
	pkill -KILL -f "distill work --db $work/" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export DISTILL_DB="$work/t.db"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# start_sim ARGS...: the simulator on a free port; sets SIM_URL.
start_sim() {
	distill-teacher-sim --port 0 "$@" >sim.out 2>sim.err &
	sim_pid=$!
	for _ in $(seq 100); do
		grep -q listening sim.out 2>/dev/null && break
		sleep 0.05
	done
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' sim.out)
	[ -n "$port" ] || fail "simulator did not start: $(cat sim.err)"
	SIM_URL="http://127.0.0.1:$port/v1"
}

# teacher_config FILE: short timeouts and leases so tests finish quickly.
teacher_config() {
	cat >"$1" <<JSON
{
  "endpoints": [{"name": "sim", "base_url": "$SIM_URL", "model": "distill-sim", "max_concurrency": 16}],
  "profiles": {"default": {"model": "distill-sim", "max_tokens": 512, "seed": 1}},
  "timeouts": {"connect": "2s", "total": "5s", "stall": "2s", "lease": "6s", "grace": "2s"},
  "max_attempts": 8
}
JSON
}

q() { sqlite3 "$DISTILL_DB" "$1"; }
