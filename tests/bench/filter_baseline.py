#!/usr/bin/env python3
"""filter_baseline.py - the baseline for filter.bench.sh: rules/r1.rules
written rule by rule as the Python `re` script a data team would otherwise
write.  It reads the same traces from the same database, judges them and
writes one verdict per rule plus the outcome, a batch per transaction, under
a rule set of its own.

usage: filter_baseline.py DB regex|full    prints: traces bytes seconds
       filter_baseline.py DB regex|full N  the rules alone: the first N traces
                                           held in memory, CPU seconds of judging
"""
import re
import sqlite3
import sys
import time
from collections import Counter

# --- rule by rule, as in rules/r1.rules -------------------------------------

API_ERROR_SIGNATURES = [
    "Error code: ", "Internal Server Error", "{'error': {", '{"error": {', '{"error":{',
    "Service Unavailable", "Bad Gateway", "Gateway Timeout", "Rate limit reached",
    "rate_limit_exceeded", "insufficient_quota", "context_length_exceeded", "Request timed out",
    "APIConnectionError", "APIError", "Traceback (most recent call last)", "Error after ",
]


def api_error(t):
    r = t["response"]
    if len(r) <= 2000:
        for s in API_ERROR_SIGNATURES:
            if s in r:
                return "fail"
    return "pass"


def think_format(t):
    if t["finish_reason"] == "length":
        return "fail"
    if t["reasoning"] is None or t["placement"] == "none":
        return "fail"
    if not t["reasoning"].strip():
        return "fail"
    if "<think>" in t["reasoning"] or "</think>" in t["reasoning"]:
        return "fail"
    a = t["answer"] or ""
    if "<think>" in a or "</think>" in a or not a.strip():
        return "fail"
    return "pass"


BOX = re.compile(r"\\boxed\s*\{")
FINAL = re.compile(r"(?:final answer is|answer:)\s*\$?([^\n$]+)", re.I)


def last_boxed(s):
    i = s.rfind("\\boxed")
    if i < 0:
        return None
    j = s.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return s[j + 1:k]
    return None


def normalize(x):
    x = x.strip().strip("$").strip()
    x = re.sub(r"\\text\{([^}]*)\}", r"\1", x)
    x = re.sub(r"\\[dt]frac", r"\\frac", x)
    x = x.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace(",", "")
    x = re.sub(r"\s+", "", x).rstrip(".")
    try:
        return float(x)
    except ValueError:
        return x


def answer_correct(t):
    if t["domain"] != "math":
        return "skip"
    if not t["reference"]:
        return "skip"
    a = t["answer"] or ""
    got = last_boxed(a)
    if got is None:
        got = last_boxed(t["reasoning"] or "")
    if got is None:
        m = FINAL.findall(a)
        got = m[-1] if m else None
    if got is None:
        return "fail"
    g, r = normalize(got), normalize(t["reference"])
    if isinstance(g, float) and isinstance(r, float):
        return "pass" if abs(g - r) <= 1e-6 * max(1.0, abs(r)) else "fail"
    return "pass" if g == r else "fail"


def boxed_answer(t):
    if t["domain"] != "math":
        return "skip"
    return "pass" if BOX.search(t["answer"] or "") else "fail"


ALLOWED = "A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u0370-\u03ff\u1f00-\u1fff"
FOREIGN = ("\u0400-\u052f\u0531-\u058f\u05d0-\u05f2\u0620-\u064a\u0671-\u06d3\u0900-\u097f"
           "\u0e01-\u0e5b\u1100-\u11ff\u3005-\u3007\u3041-\u30ff\u3130-\u318f\u3400-\u4dbf"
           "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f")
LETTER_RE = re.compile("[" + ALLOWED + FOREIGN + "]")
FOREIGN_RE = re.compile("[" + FOREIGN + "]")
SWITCH_RE = re.compile("[" + ALLOWED + "][" + FOREIGN + "]|[" + FOREIGN + "][" + ALLOWED + "]")
PARA_RE = re.compile(r"\n[ \t\r]*\n")


def language(t):
    r = t["response"]
    if SWITCH_RE.search(r):
        return "fail"
    letters = len(LETTER_RE.findall(r))
    foreign = len(FOREIGN_RE.findall(r))
    if letters and foreign / letters > 0.05:
        return "fail"
    for p in PARA_RE.split(r):
        pl = len(LETTER_RE.findall(p))
        if pl >= 20 and len(FOREIGN_RE.findall(p)) / pl > 0.3:
            return "fail"
    return "pass"


def paragraph_length(t):
    for p in PARA_RE.split(t["reasoning"] or ""):
        if len(p.strip("\n")) > 6000:
            return "fail"
    return "pass"


FENCE_RE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)


def code_blocks(t):
    if t["domain"] != "math":
        return "skip"
    n = len(FENCE_RE.findall(t["reasoning"] or ""))
    return "fail" if (n + 1) // 2 > 0 else "pass"


SENT_RE = re.compile(r"(?<=[.!?])\s+|\n")


def repetition(t):
    w = t["response"].split()
    if len(w) >= 100:
        grams = Counter(tuple(w[i:i + 8]) for i in range(len(w) - 7))
        total = len(w) - 7
        if max(grams.values()) > 40:
            return "fail"
        if sum(c - 1 for c in grams.values()) / total > 0.5:
            return "fail"
    sents = Counter(s.strip() for s in SENT_RE.split(t["response"]) if len(s.strip()) >= 20)
    if sents and max(sents.values()) > 20:
        return "fail"
    return "pass"


CONTROL_RE = re.compile(r"<[|\uff5c][^<>\n]{1,40}[|\uff5c]>")


def control_tokens(t):
    return "fail" if CONTROL_RE.search(t["response"]) else "pass"


REPLACEMENT_RE = re.compile("\ufffd")


def replacement_chars(t):
    return "fail" if REPLACEMENT_RE.search(t["response"]) else "pass"


def answer_length(t):
    return "fail" if len((t["answer"] or "").split()) > 3000 else "pass"


# (name, function, rejects) in r1.rules order; the regex set is the
# must_match / must_not_match rules.
FULL = [
    ("api_error", api_error, True), ("think_format", think_format, True),
    ("answer_correct", answer_correct, True), ("boxed_answer", boxed_answer, False),
    ("language", language, True), ("paragraph_length", paragraph_length, True),
    ("code_blocks", code_blocks, True), ("repetition", repetition, True),
    ("control_tokens", control_tokens, True), ("replacement_chars", replacement_chars, False),
    ("answer_length", answer_length, False),
]
REGEX = [r for r in FULL if r[0] in ("boxed_answer", "control_tokens", "replacement_chars")]

SELECT = """SELECT t.id, p.text, t.reasoning, t.answer, t.finish_reason, t.placement, p.reference, p.domain
FROM traces t JOIN jobs j ON j.id = t.job_id JOIN prompts p ON p.id = j.prompt_id
WHERE t.id > ? ORDER BY t.id LIMIT 256"""


def judge_in_memory(db, rules, n):
    rows = db.execute(SELECT.replace("WHERE t.id > ?", "WHERE t.id > 0").replace("LIMIT 256", "LIMIT ?"),
                      (n,)).fetchall()
    docs, nbytes = [], 0
    for (tid, prompt, reasoning, answer, finish, placement, ref, domain) in rows:
        t = {"prompt": prompt, "reasoning": reasoning, "answer": answer, "finish_reason": finish,
             "placement": placement, "reference": ref, "domain": domain}
        nbytes += len(((reasoning or "") + (answer or "")).encode())
        docs.append(t)
    t0 = time.process_time()
    for t in docs:
        t["response"] = ((t["reasoning"] + "\n\n") if t["reasoning"] else "") + (t["answer"] or "")
        accepted = 1
        for name, fn, rejects in rules:
            if fn(t) in ("fail", "limit") and rejects:
                accepted = 0
    print(len(docs), nbytes, "%.4f" % (time.process_time() - t0))


def main():
    path, mode = sys.argv[1], sys.argv[2]
    rules = FULL if mode == "full" else REGEX
    if len(sys.argv) > 3:
        judge_in_memory(sqlite3.connect(path), rules, int(sys.argv[3]))
        return
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    h = "python-baseline-" + mode + "-" + str(time.time())
    db.execute("INSERT INTO rulesets(hash, text, engine_version, checker_version, is_current, created_at)"
               " VALUES (?, ?, 'python', 'python', 0, 0)", (h, mode))
    rs = db.execute("SELECT id FROM rulesets WHERE hash = ?", (h,)).fetchone()[0]
    db.commit()
    t0 = time.time()
    last, n, nbytes = 0, 0, 0
    while True:
        rows = db.execute(SELECT, (last,)).fetchall()
        if not rows:
            break
        verdicts, outcomes = [], []
        for (tid, prompt, reasoning, answer, finish, placement, ref, domain) in rows:
            t = {"prompt": prompt, "reasoning": reasoning, "answer": answer, "finish_reason": finish,
                 "placement": placement, "reference": ref, "domain": domain}
            t["response"] = ((reasoning + "\n\n") if reasoning else "") + (answer or "")
            nbytes += len(((reasoning or "") + (answer or "")).encode())
            accepted = 1
            for name, fn, rejects in rules:
                st = fn(t)
                if st in ("fail", "limit") and rejects:
                    accepted = 0
                verdicts.append((tid, rs, name, st, "reject" if rejects else "flag"))
            outcomes.append((tid, rs, accepted, 0))
            last = tid
            n += 1
        db.executemany("INSERT OR REPLACE INTO verdicts(trace_id, ruleset_id, rule, state, action)"
                       " VALUES (?, ?, ?, ?, ?)", verdicts)
        db.executemany("INSERT OR REPLACE INTO trace_outcomes(trace_id, ruleset_id, accepted, flagged,"
                       " judged_at) VALUES (?, ?, ?, ?, 0)", outcomes)
        db.commit()
    print(n, nbytes, "%.3f" % (time.time() - t0))


if __name__ == "__main__":
    main()
