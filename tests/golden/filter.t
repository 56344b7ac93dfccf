# distill filter with rules/r1.rules on a handful of traces, each one a case
# the recipe must tell apart (tests/data/filter_fixture.sql).
$ distill init --db t.db >/dev/null && sqlite3 t.db < "$SRC/tests/data/filter_fixture.sql"
$ distill filter --db t.db --rules "$SRC/rules/r1.rules" --procs 2 | sed 's/rule set [0-9a-f]*/rule set H/'
> judged 6 traces under rule set H: 2 accepted, 4 rejected, 1 flagged
~ new rule set
# Unchanged rules: nothing to do.
$ distill filter --db t.db --rules "$SRC/rules/r1.rules" | sed 's/rule set [0-9a-f]*/rule set H/'
> nothing to judge: no trace lacks verdicts under rule set H
# The audit views.
$ sqlite3 t.db "SELECT trace_id, accepted, flagged, failed_rules FROM sample_audit ORDER BY trace_id"
> 1|1|0|[]
> 2|0|1|["answer_correct","api_error","think_format"]
> 3|0|0|["language"]
> 4|1|0|[]
> 5|0|0|["repetition"]
> 6|0|0|["answer_correct","think_format"]
$ sqlite3 t.db "SELECT rule, evaluated, n_pass, n_fail, n_limit, n_skip, rejected FROM rule_stats ORDER BY rule"
> answer_correct|6|3|2|0|1|2
> answer_length|6|6|0|0|0|0
> api_error|6|5|1|0|0|1
> boxed_answer|6|4|1|0|1|0
> code_blocks|6|5|0|0|1|0
> control_tokens|6|6|0|0|0|0
> language|6|5|1|0|0|1
> paragraph_length|6|6|0|0|0|0
> repetition|6|5|1|0|0|1
> replacement_chars|6|6|0|0|0|0
> think_format|6|4|2|0|0|2
$ sqlite3 t.db "SELECT COUNT(*) FROM verdicts; SELECT COUNT(*) FROM rulesets WHERE is_current = 1"
> 66
> 1
# Explain one trace: each rule's verdict and detail.
$ distill filter --db t.db --rules "$SRC/rules/r1.rules" --explain 3 | grep -v '^trace 3 under' | grep -E 'language|outcome'
>   language                 fail  reject 1 script switch inside words (han), first near "ites. So the分类 does "
> outcome: rejected (language)
$ distill filter --db t.db --rules "$SRC/rules/r1.rules" --explain 99
? 1
~ no trace 99
# Changed rules make a new current rule set and re-judge without a teacher.
$ printf 'rule think_format\n  kind think_format\n' > one.rules && distill filter --db t.db --rules one.rules | sed 's/rule set [0-9a-f]*/rule set H/'
> judged 6 traces under rule set H: 4 accepted, 2 rejected, 0 flagged
$ sqlite3 t.db "SELECT COUNT(*) FROM rulesets; SELECT rule, n_fail FROM rule_stats"
> 2
> think_format|2
# --all judges everything again under the current rule set.
$ distill filter --db t.db --rules one.rules --all --procs 3 | sed 's/rule set [0-9a-f]*/rule set H/'
> judged 6 traces under rule set H: 4 accepted, 2 rejected, 0 flagged
# More samples only where no trace is accepted yet: prompts 2, 3 and 5 under r1.rules.
$ distill filter --db t.db --rules "$SRC/rules/r1.rules" >/dev/null 2>&1; distill enqueue --db t.db --samples 3 --only-unaccepted
> 3 prompts without an accepted trace: 6 new jobs (samples 0..2, profile default)
$ distill enqueue --db t.db --samples 3 --only-unaccepted
> 3 prompts without an accepted trace: 0 new jobs (samples 0..2, profile default)
$ sqlite3 t.db "SELECT prompt_id, COUNT(*) FROM jobs GROUP BY prompt_id"
> 1|2
> 2|3
> 3|3
> 4|1
> 5|3
$ distill enqueue --db t.db --samples 2 --profile nosuch
? 1
~ no profile named 'nosuch'
$ distill enqueue --db t.db
? 2
~ --samples K is required
# Errors in a rule file name the file and line; exit 2.
$ printf 'rule a\n  kind must_match\n  pattern (x\n' > bad.rules && distill filter --db t.db --rules bad.rules
? 2
~ bad.rules:3: rule a: bad pattern
$ distill filter --db t.db --rules nowhere.rules
? 1
~ nowhere.rules
$ distill filter --db t.db --procs 0
? 2
$ distill filter --help | head -1
> usage: distill filter [--rules FILE|DIR] [--all] [--procs N] [--batch N] [--db PATH]
