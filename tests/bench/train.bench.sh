#!/bin/sh
# Trainer throughput side by side with llm.c on the reference shape
# (4 layers, 4 heads, width 256, vocabulary 512, B=8, T=256, 2 threads).
# Runs bench_train and, when LLMC_BENCH names a command that trains llm.c's
# CPU train_gpt2.c on that shape and prints "tokens/s N" (llm.c is not part
# of this project: build it outside the tree, OMP_NUM_THREADS=2), alternates
# the two ROUNDS times and prints the median tokens/s of each and the ratio.
set -u
BIN="${DISTILL_BIN:-build}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
[ -x "$BIN/bench_train" ] || { echo "bench_train not built (make bench)"; exit 1; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ours="" theirs=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	out=$("$BIN/bench_train" 10 "$THREADS") || exit 1
	[ "$i" = 0 ] && printf '%s\n' "$out" | grep -v '^tokens/s'
	ours="$ours $(printf '%s\n' "$out" | awk '/^tokens\/s/ {print $2}')"
	if [ -n "${LLMC_BENCH:-}" ]; then
		t=$(OMP_NUM_THREADS="$THREADS" sh -c "$LLMC_BENCH" 2>/dev/null | awk '/^tokens\/s/ {print $2}')
		theirs="$theirs $t"
	fi
	i=$((i + 1))
done
mo=$(printf '%s\n' $ours | median)
echo "distill-train: median $mo tokens/s over $ROUNDS rounds ($ours )"
if [ -n "$theirs" ]; then
	ml=$(printf '%s\n' $theirs | median)
	echo "llm.c train_gpt2.c: median $ml tokens/s over $ROUNDS rounds ($theirs )"
	awk -v a="$mo" -v b="$ml" 'BEGIN {printf "ratio: %.2fx llm.c tokens/s (target >= 2.5x)\n", a / b}'
else
	echo "llm.c: not measured (set LLMC_BENCH to its benchmark command)"
fi
