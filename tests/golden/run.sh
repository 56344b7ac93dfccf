#!/bin/sh
# Golden CLI test driver.  A .t file is a sequence of cases:
#   $ command line          run in a scratch directory, with distill, distill-teacher-sim
#                           and distill-train on PATH, $SRC = source tree, $SHARED = ../shared/data
#   > expected stdout line  (exact; zero or more lines)
#   ? N                     expected exit code (default 0)
#   ~ text                  stderr must contain this text
#   @ skip-unless-shared    skip the whole file when ../shared/data is absent
# Lines starting with '#' and blank lines are ignored.  Prints a diff on mismatch.
set -u
t="$1"
BIN="${DISTILL_BIN:-$(pwd)}"
SRC="${DISTILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
SHARED="${DISTILL_SHARED:-$SRC/../shared/data}"
export SRC SHARED PATH="$BIN:$PATH"
unset DISTILL_DB
work=$(mktemp -d "${TMPDIR:-/tmp}/distill-golden-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

fails=0 cases=0 cmd="" want_code=0 want_err=""
: >"$work/.want"

run_case() {
	[ -n "$cmd" ] || return 0
	cases=$((cases + 1))
	sh -c "$cmd" >"$work/.got" 2>"$work/.err" </dev/null
	code=$?
	if ! cmp -s "$work/.got" "$work/.want"; then
		echo "FAIL: $t: \$ $cmd: stdout differs" >&2
		diff "$work/.want" "$work/.got" | head -40 >&2
		fails=$((fails + 1))
	elif [ "$code" != "$want_code" ]; then
		echo "FAIL: $t: \$ $cmd: exit $code, want $want_code" >&2
		head -20 "$work/.err" >&2
		fails=$((fails + 1))
	elif [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$work/.err"; then
		echo "FAIL: $t: \$ $cmd: stderr lacks '$want_err'" >&2
		head -20 "$work/.err" >&2
		fails=$((fails + 1))
	fi
	cmd="" want_code=0 want_err=""
	: >"$work/.want"
}

while IFS= read -r line || [ -n "$line" ]; do
	case "$line" in
	'$ '*) run_case; cmd="${line#\$ }" ;;
	'> '*) printf '%s\n' "${line#> }" >>"$work/.want" ;;
	'>') printf '\n' >>"$work/.want" ;;
	'? '*) want_code="${line#\? }" ;;
	'~ '*) want_err="${line#\~ }" ;;
	'@ skip-unless-shared')
		[ -d "$SHARED" ] || { echo "skipped: $SHARED absent"; exit 77; } ;;
	'#'* | '') ;;
	*) echo "$t: bad line: $line" >&2; exit 2 ;;
	esac
done <"$t"
run_case
echo "$((cases - fails)) passed, $fails failed"
[ "$fails" = 0 ]
