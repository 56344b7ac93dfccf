#!/bin/sh
# Trainer throughput side by side with llm.c on the reference shape
# (4 layers, 4 heads, width 256, vocabulary 512, B=8, T=256, 2 threads).
# Runs bench_train and, when LLMC_BENCH names a command that trains llm.c's
# CPU train_gpt2.c on that shape and prints "tokens/s N" (llm.c is not part
# of this project: build it outside the tree, OMP_NUM_THREADS=2), alternates
# the two ROUNDS times and prints the median tokens/s of each and the ratio.
# The same for tokens per CPU-second ("cpu_tokens/s N"), which a machine
# shared with other jobs distorts far less than wall time (run llm.c with
# OMP_WAIT_POLICY=passive so that spinning threads do not count as work).
set -u
BIN="${DISTILL_BIN:-build}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
[ -x "$BIN/bench_train" ] || { echo "bench_train not built (make bench)"; exit 1; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ours="" theirs="" ourscpu="" theirscpu=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	out=$("$BIN/bench_train" 10 "$THREADS") || exit 1
	[ "$i" = 0 ] && printf '%s\n' "$out" | grep -v 'tokens/s [0-9]'
	ours="$ours $(printf '%s\n' "$out" | awk '/^tokens\/s/ {print $2}')"
	ourscpu="$ourscpu $(printf '%s\n' "$out" | awk '/^cpu_tokens\/s/ {print $2}')"
	if [ -n "${LLMC_BENCH:-}" ]; then
		t=$(OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=passive sh -c "$LLMC_BENCH" 2>/dev/null)
		theirs="$theirs $(printf '%s\n' "$t" | awk '/^tokens\/s/ {print $2}')"
		theirscpu="$theirscpu $(printf '%s\n' "$t" | awk '/^cpu_tokens\/s/ {print $2}')"
	fi
	i=$((i + 1))
done
mo=$(printf '%s\n' $ours | median)
mc=$(printf '%s\n' $ourscpu | median)
echo "distill-train: median $mo tokens/s, $mc tokens per CPU-second over $ROUNDS rounds ($ours )"
if [ -n "$theirs" ]; then
	ml=$(printf '%s\n' $theirs | median)
	lc=$(printf '%s\n' $theirscpu | median)
	echo "llm.c train_gpt2.c: median $ml tokens/s, $lc tokens per CPU-second over $ROUNDS rounds ($theirs )"
	awk -v a="$mo" -v b="$ml" 'BEGIN {printf "ratio: %.2fx llm.c tokens/s (target >= 2.5x)\n", a / b}'
	awk -v a="$mc" -v b="$lc" 'BEGIN {printf "ratio: %.2fx llm.c tokens per CPU-second\n", a / b}'
else
	echo "llm.c: not measured (set LLMC_BENCH to its benchmark command)"
fi
