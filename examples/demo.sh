#!/bin/sh
# make demo: run the pipeline end to end in ./demo against generated data.
# Until the later stages land (teacher simulator, work, filter, dedup,
# export, trainer), it runs what exists: create the database, ingest the
# shipped arithmetic prompts with two samples each, and show the status.
set -eu
BUILD="${1:-build}"
BIN="$(cd "$BUILD" && pwd)"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p demo
cd demo
rm -f demo.db demo.db-wal demo.db-shm
echo "demo: 1. create the database"
"$BIN/distill" init --db demo.db
echo "demo: 2. ingest examples/prompts.jsonl (generated arithmetic prompts), 2 samples per prompt"
"$BIN/distill" ingest --db demo.db --samples 2 "$SRC/examples/prompts.jsonl"
echo "demo: 3. ingest it again: nothing new"
"$BIN/distill" ingest --db demo.db --samples 2 "$SRC/examples/prompts.jsonl"
echo "demo: 4. status"
"$BIN/distill" status --db demo.db
"$BIN/distill" check --db demo.db >/dev/null
echo "demo: done.  demo/demo.db holds the prompts and a queue of jobs; inspect it with"
echo "      sqlite3 demo/demo.db < examples/audit.sql"
echo "      (the teacher, filters, dedup, export and trainer join this demo as they land)"
