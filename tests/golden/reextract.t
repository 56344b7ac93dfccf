# distill reextract: clean references again from the stored raw ones.
$ distill init --db t.db >/dev/null && distill reextract --db t.db
> 0 prompts, 0 with a raw reference, 0 changed, 0 unparsed
$ distill reextract --db missing.db
? 1
$ distill reextract --db t.db extra
? 2
$ distill reextract --help | head -1
> usage: distill reextract [--db PATH] [--dry-run]
