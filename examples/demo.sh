#!/bin/sh
# make demo: run the pipeline end to end in ./demo against generated data.
set -eu
BUILD="${1:-build}"
BIN="$(cd "$BUILD" && pwd)"
mkdir -p demo
cd demo
rm -f demo.db demo.db-wal demo.db-shm
"$BIN/distill" init --db demo.db
echo "demo: database ready at demo/demo.db (later stages join as they land)"
