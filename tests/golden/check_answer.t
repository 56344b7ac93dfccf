# distill check-answer: JSON lines in, one verdict line out per input line, in order.
$ printf '%s\n' '{"gold":"\\frac{1}{2}","pred":"0.5"}' '{"gold":"1-1/e","pred":"1+1/e"}' | distill check-answer
> {"equal":true,"status":"ok","extracted":"0.5"}
> {"equal":false,"status":"ok","extracted":"1+1/e"}
# A response: the last box of the answer part wins; a number gold is accepted.
$ printf '%s\n' '{"gold":540,"response":"r \\boxed{500}</think>So \\boxed{540} meters."}' | distill check-answer
> {"equal":true,"status":"ok","extracted":"540"}
# Nothing to extract, an unreadable gold.
$ printf '%s\n' '{"gold":"7","response":"no digits here"}' '{"gold":"\\frac{","pred":"1"}' | distill check-answer
> {"equal":null,"status":"no_answer","extracted":""}
> {"equal":null,"status":"gold_unparsed","extracted":"1"}
# Options per line: strict keeps units significant; mcq reads letters.
$ printf '%s\n' '{"gold":"10","pred":"10 cm","options":{"strict":true}}' '{"gold":"B","pred":"(B) 12","options":{"mode":"mcq"}}' | distill check-answer
> {"equal":false,"status":"ok","extracted":"10 cm"}
> {"equal":true,"status":"ok","extracted":"(B) 12"}
# A bad line gets an error object for that line and exit 3; the rest still runs.
$ printf '%s\n' 'not json' '{"gold":"5"}' '{"gold":"5","pred":"5","options":{"mode":"essay"}}' '{"gold":"5","pred":"5"}' | distill check-answer
> {"error":"not a JSON object","line":1}
> {"error":"exactly one of \"response\" and \"pred\" is needed","line":2}
> {"error":"\"mode\" must be \"math\", \"mcq\" or \"number\"","line":3}
> {"equal":true,"status":"ok","extracted":"5"}
? 3
# A file argument, and --mode as the default for every line.
$ printf '%s\n' '{"gold":"42","pred":"the total is 42 apples"}' > in.jsonl && distill check-answer --mode number in.jsonl
> {"equal":true,"status":"ok","extracted":"the total is 42 apples"}
# Usage errors.
$ distill check-answer --mode essay
? 2
~ --mode must be
$ distill check-answer a b
? 2
$ distill check-answer missing.jsonl
? 1
~ missing.jsonl
$ distill check-answer --help | head -1
> usage: distill check-answer [--mode math|mcq|number] [--strict] [--precision X] [FILE]
