# distill-train: usage errors, refusals with clear messages.
$ distill-train --help | head -1
> usage: distill-train [train] --data EXPORTDIR [options]
$ distill-train sample --help | head -1
> usage: distill-train sample --ckpt FILE --prompt TEXT [options]
$ distill-train eval --help | head -1
> usage: distill-train eval --ckpt FILE --prompts FILE [options]
$ distill-train
? 2
~ --data EXPORTDIR is required
$ distill-train --data x --dim 0
? 2
~ --dim wants an integer
$ distill-train --data x --isa sse9
? 2
~ --isa is auto, generic or avx2
$ distill-train bogus
? 2
~ 'bogus' is not a distill-train command
# No export there: the manifest is named.
$ distill-train --data nowhere --out o
? 1
~ nowhere/manifest.json
# A manifest whose shard is missing or altered is refused before training.
$ mkdir ex && printf '{"format_version":1,"shards":[{"file":"train-00000-of-00001.jsonl.zst","split":"train","samples":1,"bytes":3,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}' > ex/manifest.json && printf 'abc' > ex/train-00000-of-00001.jsonl.zst && distill-train --data ex --out o
? 1
~ SHA-256 mismatch
# A checkpoint that is not one.
$ echo nope > c.bin && distill-train sample --ckpt c.bin --prompt hi
? 1
~ bad magic
$ distill-train sample --prompt hi
? 2
~ --ckpt and --prompt are required
