#!/bin/sh
# Run every benchmark: each built bench_* binary, then each tests/bench/*.bench.sh
# script.  They print their own medians and ratios.  Usage: run.sh BUILD_DIR
set -u
BUILD="${1:-build}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export DISTILL_BIN="$(cd "$BUILD" && pwd)" DISTILL_SRC="$(cd "$HERE/../.." && pwd)"
export DISTILL_SHARED="${DISTILL_SHARED:-$DISTILL_SRC/../shared/data}"
for b in "$BUILD"/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	"$b" || echo "$(basename "$b") failed" >&2
done
for s in "$HERE"/*.bench.sh; do
	[ -f "$s" ] || continue
	echo "== $(basename "$s")"
	sh "$s" || echo "$(basename "$s") failed" >&2
done
