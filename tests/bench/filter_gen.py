#!/usr/bin/env python3
"""filter_gen.py - the benchmark database of filter.bench.sh: N traces made
from the real trace files (../shared/data/traces_*.jsonl), repeated with
varied numbers (copy k adds k to every number of prompt, response and
reference, so a correct answer stays correct and no two copies are equal).
The response is split at the last "</think>" into reasoning and answer.

usage: filter_gen.py DB N TRACE_FILE...      (DB made by `distill init`)
"""
import hashlib
import json
import re
import sqlite3
import sys

NUM = re.compile(r"\d+")


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    recs = []
    for f in sys.argv[3:]:
        for line in open(f, encoding="utf-8"):
            d = json.loads(line)
            recs.append((d["prompt"], str(d.get("reference_answer") or ""), d["response"]))
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("INSERT OR IGNORE INTO profiles(id, name, created_at) VALUES (1, 'default', 0)")
    for i in range(n):
        k = i // len(recs)
        prompt, ref, resp = recs[i % len(recs)]
        if k:
            bump = lambda m: str(int(m.group()) + k)
            prompt, ref, resp = NUM.sub(bump, prompt), NUM.sub(bump, ref), NUM.sub(bump, resp)
        cut = resp.rfind("</think>")
        reasoning, answer = (resp[:cut], resp[cut + 8:]) if cut >= 0 else (None, resp)
        h = hashlib.sha256((prompt + "#" + str(i)).encode()).hexdigest()[:32]
        cur = db.execute("INSERT INTO prompts(hash, norm_version, text, reference, domain, created_at)"
                         " VALUES (?, 1, ?, ?, 'math', 0)", (h, prompt, ref or None))
        pid = cur.lastrowid
        db.execute("INSERT INTO prompt_sources(prompt_id, source, created_at) VALUES (?, 'gsm8k', 0)", (pid,))
        cur = db.execute("INSERT INTO jobs(prompt_id, profile_id, sample_index, state, created_at, updated_at)"
                         " VALUES (?, 1, 0, 'done', 0, 0)", (pid,))
        db.execute("INSERT INTO traces(job_id, reasoning, answer, placement, finish_reason, created_at)"
                   " VALUES (?, ?, ?, ?, 'stop', 0)",
                   (cur.lastrowid, reasoning, answer, "close_tag_only" if reasoning is not None else "none"))
        if i % 10000 == 9999:
            db.commit()
    db.commit()


if __name__ == "__main__":
    main()
