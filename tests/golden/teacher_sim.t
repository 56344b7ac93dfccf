# distill-teacher-sim: prompt generation, usage errors, and a curl smoke test
# against a server started in the background on a free port.
$ distill-teacher-sim gen-prompts --n 3 --seed 1
> {"id":"sim-add3-1-0","prompt":"What is 666 + 303?","answer":"969","kind":"add"}
> {"id":"sim-add3-1-1","prompt":"What is 727 + 889?","answer":"1616","kind":"add"}
> {"id":"sim-add3-1-2","prompt":"What is 782 + 802?","answer":"1584","kind":"add"}
$ distill-teacher-sim gen-prompts --n 1 --seed 1 --kind sub --digits 5
> {"id":"sim-sub5-1-0","prompt":"What is 82781 - 43946?","answer":"38835","kind":"sub"}
# The same flags give the same file; --exclude keeps a held-out set out.
$ distill-teacher-sim gen-prompts --n 200 --seed 4 > a.jsonl && distill-teacher-sim gen-prompts --n 200 --seed 4 | cmp - a.jsonl && echo same
> same
$ distill-teacher-sim gen-prompts --n 300 --seed 4 --exclude a.jsonl > b.jsonl && cat a.jsonl b.jsonl | cut -d, -f2 | sort | uniq -d | wc -l
> 0
$ distill-teacher-sim gen-prompts --n 100 --seed 9 --kind word | cut -d, -f2 | sort -u | wc -l
> 100
# Usage errors exit 2; a missing file is an error (1).
$ distill-teacher-sim gen-prompts --seed 1
? 2
~ --n and --seed are required
$ distill-teacher-sim gen-prompts --n 1 --seed 1 --kind div
? 2
$ distill-teacher-sim gen-prompts --n 1 --seed 1 --kind mul --digits 10
? 2
~ out of range
$ distill-teacher-sim gen-prompts --n 101 --seed 1 --digits 1 --kind add > /dev/null
? 1
~ distinct
$ distill-teacher-sim gen-prompts --n 1 --seed 1 --exclude nosuch.jsonl
? 1
$ distill-teacher-sim --wrong 2
? 2
~ probability
$ distill-teacher-sim --http-500 0.7 --http-429 0.7
? 2
~ sum to
$ distill-teacher-sim --bogus
? 2
$ distill-teacher-sim --config nosuch.json
? 1
$ echo '{"wrong": 0.5, "nosuch": 1}' > bad.json && distill-teacher-sim --config bad.json
? 2
~ nosuch
$ distill-teacher-sim --api-key-env DISTILL_SIM_UNSET_KEY
? 1
~ is not set
$ distill-teacher-sim --help | head -1
> usage: distill-teacher-sim [--port P] [--seed S] [--config FILE] [--replay FILE.jsonl]...
# A real request with curl, then a clean SIGTERM.
$ distill-teacher-sim --port 0 --seed 1 > port.txt 2> err.txt & pid=$!; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do [ -s port.txt ] && break; sleep 0.1; done; url=http://$(sed 's/listening on //' port.txt); curl -s $url/v1/chat/completions -d '{"model":"distill-sim","messages":[{"role":"user","content":"What is 347 + 589?"}]}' | grep -o 'boxed{[0-9]*}'; curl -s -o /dev/null -w '%{http_code}\n' $url/v1/chat/completions -d '{"model":"gpt-9","messages":[]}'; kill $pid; wait $pid; echo "exit $?"; grep -c '"completions":2' err.txt
> boxed{936}
> 404
> exit 0
> 1
# gen-prompts output is what distill ingest reads: prompt from "prompt", reference from "answer".
$ distill init --db t.db > /dev/null && distill-teacher-sim gen-prompts --n 20 --seed 2 --kind mul --digits 2 > m.jsonl && distill ingest --db t.db m.jsonl > /dev/null && sqlite3 t.db "select count(*), count(reference) from prompts"
> 20|20
