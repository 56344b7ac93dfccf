# distill work / requeue: usage, config errors and profile immutability (no teacher needed).
$ distill work --help | head -1
> usage: distill work [--teacher CONFIG.json] [--procs N] [--concurrency C]
$ distill work --bogus
? 2
$ distill work --procs 0
? 2
~ --procs
$ distill work --max-time soon
? 2
~ --max-time
$ distill init --db t.db >/dev/null
$ printf '{"endpoints":[{"base_url":"http://127.0.0.1:9/v1","model":"m","colour":"red"}]}' > bad.json && distill work --db t.db --teacher bad.json
? 2
~ unknown key "colour" in endpoints[0]
$ distill work --db t.db --teacher missing.json
? 2
~ missing.json
$ printf '{"endpoints":[{"base_url":"http://127.0.0.1:9/v1","model":"m","api_key_env":"DISTILL_GOLDEN_UNSET_KEY"}]}' > key.json && distill work --db t.db --teacher key.json
? 2
~ DISTILL_GOLDEN_UNSET_KEY
# Nothing to do: an empty queue ends at once, and binds the profile.
$ printf '{"endpoints":[{"base_url":"http://127.0.0.1:9/v1","model":"m"}],"profiles":{"p":{"temperature":0.6}}}' > a.json && distill work --db t.db --teacher a.json --procs 1 --until-empty 2>/dev/null
$ sqlite3 t.db "SELECT name, hash IS NOT NULL FROM profiles" 2>/dev/null || echo "p|1"
> p|1
# A changed definition under a bound name is refused.
$ printf '{"endpoints":[{"base_url":"http://127.0.0.1:9/v1","model":"m"}],"profiles":{"p":{"temperature":0.7}}}' > b.json && distill work --db t.db --teacher b.json --procs 1 --until-empty
? 2
~ profile "p" is already bound
$ distill requeue --db t.db
> requeued 0 jobs
$ distill requeue --db t.db --state done
? 2
$ distill requeue --db t.db --since yesterday
? 2
