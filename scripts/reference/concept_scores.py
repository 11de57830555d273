#!/usr/bin/python3
"""Independent reference for `probe top-neurons --concept/--probe/--words`:
checks one concept ranking stored in the database (a concept_runs row and its
concept_scores rows, schema/080_concepts.sql) against values recomputed here.

    /usr/bin/python3 scripts/reference/concept_scores.py --db DB --concept-run ID \
        --probe-bin ./probe --model DIR (--probe FILE | --words LIST) [--drop FLAGS]

What it recomputes, and from what:
  - every recorded token's FFN post-activation, by running `PROBE_BIN trace
    --ids` on each document's window ([50256] + the document's token ids
    when runs.bos = 1) and reading ffn_L.npy; never probe's replay nor its
    histograms (neuron_histograms). Only documents that fit in one context
    window (bos + tokens <= runs.ctx) are supported; others are refused
    (exit 2). The activations are first checked against what the recording
    stored (neuron_examples.value, neuron_stats count/mean/min/max);
  - which tokens are concept tokens, by its own implementation of the match
    rule of src/analysis/concept.h: the `regex` module runs GPT-2's
    pre-tokenizer pattern (OpenAI's encoder.py) over documents.text_bytes
    decoded with 'surrogateescape' (an invalid byte is one code point that is
    neither letter, number nor space, as in probe's tokenizer); a token is a
    concept token when its byte_end is the end byte of a pre-token whose word
    (the pre-token without its leading ' ') is listed (case "insensitive"
    folds ASCII A-Z only) or fully matches one of the probe's "regexes"
    (Python's bytes `re`, POSIX classes such as [:alpha:] translated to ASCII,
    as glibc's regexec in the C locale); --words: comma-separated, spaces
    around items removed, case-sensitive; --drop: words listed under those
    flags are left out;
  - per (layer, neuron) of the scored layers, in float64 over the float32
    activations: mean_in/mean_out, sample sd (n - 1), Cohen's d with the
    pooled sd sqrt((SS_in + SS_out) / (n1 + n0 - 2)), the exact AUROC
    (Mann-Whitney: pairs in > out count 1, ties 1/2, counted in integers),
    and precision = examples_in / examples over the neuron's stored
    neuron_examples rows;
  - the stored neuron_examples themselves: the top-N token rows by reference
    activation (ties to the earlier token row) must be the stored ones, in
    rank order.

Compared: the concept_runs row (run_id, name, probe_checksum = FNV-1a 64 of
the probe file / of the --words list, words, dropped_flags, layers,
concept_tokens, tokens, windows, windows_replayed) and one concept_scores row
per (scored layer, neuron): means, sds and d within 1e-5 relative + 1e-6
absolute; examples, examples_in and precision exactly; auroc: |stored - exact|
<= auroc_error + 1e-9 (auroc and auroc_error are NULL exactly when the run
has no neuron_histograms rows). Prints a one-paragraph summary with the
largest AUROC difference and auroc_error over all neurons and over the top 10
by exact AUROC. Exit 0 when everything agrees, 1 with the first 10
disagreements, 2 when the check cannot run (bad arguments, missing rows,
documents longer than one window, trace failure).

If the traced activations are not bit-identical to the recorded ones
(another CPU or BLAS kernel), the AUROC and top-example checks allow for
near ties: pairs / rows closer than twice the largest difference seen may
swap (the summary says so and how much slack that gave).
"""
import argparse
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import numpy as np
import regex

EOT = 50256
PRETOKEN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
WORD_MAX = 255  # CONCEPT_WORD_MAX: a longer pre-token never matches
REL_TOL, ABS_TOL = 1e-5, 1e-6
AUROC_SLACK = 1e-9
MAX_REPORT = 10


class Fatal(Exception):
    """The check cannot run (exit 2)."""


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


# ---- the concept ------------------------------------------------------------

POSIX_CLASSES = {
    "[:alpha:]": "A-Za-z", "[:digit:]": "0-9", "[:alnum:]": "A-Za-z0-9", "[:upper:]": "A-Z",
    "[:lower:]": "a-z", "[:space:]": " \\t\\n\\r\\f\\v", "[:punct:]": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "[:xdigit:]": "0-9A-Fa-f", "[:blank:]": " \\t",
}


def posix_to_python(pattern):
    for k, v in POSIX_CLASSES.items():
        pattern = pattern.replace(k, v)
    return pattern


def fold(b):
    return b.lower()  # bytes.lower() folds ASCII A-Z only


class Concept:
    def __init__(self, name, words, regexes, insensitive, checksum, path):
        self.name, self.insensitive, self.checksum, self.path = name, insensitive, checksum, path
        self.words = set(fold(w) if insensitive else w for w in words)
        flags = re.IGNORECASE if insensitive else 0  # bytes patterns: ASCII-only folding
        self.regexes = [re.compile(b"(?:" + posix_to_python(r).encode("utf-8") + b")", flags) for r in regexes]

    def has_word(self, w):
        if not w:
            return False
        if (fold(w) if self.insensitive else w) in self.words:
            return True
        if len(w) > WORD_MAX or b"\0" in w:
            return False
        return any(r.fullmatch(w) for r in self.regexes)


def one_pretoken(w):
    s = w.decode("utf-8", "surrogateescape")
    m = PRETOKEN.match(s)
    return m is not None and m.end() == len(s)


def load_concept(a):
    if a.words is not None:
        if a.drop:
            raise Fatal("--drop applies to --probe files only")
        raw = os.fsencode(a.words)
        words = []
        for item in raw.split(b","):
            item = item.strip(b" ")
            if not item:
                raise Fatal("an empty word in --words '%s'" % a.words)
            words.append(item)
        for w in words:
            if not one_pretoken(w):
                raise Fatal("--words item %r is not one pre-token" % w)
        return Concept("words", words, [], False, fnv1a64(raw), None), len(set(words))
    data = open(a.probe, "rb").read()
    p = json.loads(data.decode("utf-8"))
    if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("words"), list):
        raise Fatal("%s: not a concept probe (needs \"name\" and \"words\")" % a.probe)
    if p.get("match", "word") != "word":
        raise Fatal("%s: unknown match rule %r" % (a.probe, p.get("match")))
    case = p.get("case", "sensitive")
    if case not in ("sensitive", "insensitive"):
        raise Fatal("%s: unknown case rule %r" % (a.probe, case))
    ins = case == "insensitive"
    key = (lambda w: fold(w)) if ins else (lambda w: w)
    flags = p.get("flags", {}) or {}
    dropped = set()
    for f in (a.drop.split(",") if a.drop else []):
        if f not in flags:
            raise Fatal("%s has no flag %r to drop" % (a.probe, f))
        dropped |= set(key(w.encode("utf-8")) for w in flags[f])
    kept = [w.encode("utf-8") for w in p["words"] if key(w.encode("utf-8")) not in dropped]
    for w in kept:
        if not one_pretoken(w) or w.startswith(b" "):
            raise Fatal("%s: word %r is not one pre-token" % (a.probe, w))
    n_words = len(set(key(w) for w in kept))
    return Concept(p["name"], kept, p.get("regexes", []) or [], ins, fnv1a64(data), a.probe), n_words


def word_ends(text_bytes, concept):
    """{byte end of a pre-token: True when its word belongs to the concept}."""
    s = text_bytes.decode("utf-8", "surrogateescape")
    off = [0]
    for ch in s:
        c = ord(ch)
        off.append(off[-1] + (1 if 0xDC80 <= c <= 0xDCFF else len(ch.encode("utf-8"))))
    assert off[-1] == len(text_bytes)
    ends = {}
    for m in PRETOKEN.finditer(s):
        b0, b1 = off[m.start()], off[m.end()]
        w = text_bytes[b0:b1]
        if w.startswith(b" "):
            w = w[1:]
        ends[b1] = concept.has_word(w)
    return ends


# ---- activations from `probe trace` ------------------------------------------

def trace_documents(a, docs, bos, ctx, layers, n_inner):
    """{layer: float32 [n_tokens, n_inner]} in document order."""
    acts = {L: [] for L in layers}
    tmp = tempfile.mkdtemp(prefix="concept_scores.")
    try:
        for di, toks in docs:
            ids = ([EOT] if bos else []) + [t["token_id"] for t in toks]
            if len(ids) > ctx:
                raise Fatal("document %d has %d tokens%s, more than one window of ctx %d: not supported"
                            % (di, len(toks), " + <|endoftext|>" if bos else "", ctx))
            if not toks:
                continue
            ids_path, out = os.path.join(tmp, "ids.json"), os.path.join(tmp, "out")
            with open(ids_path, "w") as f:
                json.dump(ids, f)
            r = subprocess.run([a.probe_bin, "trace", "--ids", ids_path, "--out", out, "--model", a.model],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode:
                raise Fatal("probe trace failed on document %d: %s" % (di, r.stdout.decode("utf-8", "replace")))
            for L in layers:
                x = np.load(os.path.join(out, "ffn_%d.npy" % L))
                if x.dtype != np.float32 or x.shape != (len(ids), n_inner):
                    raise Fatal("ffn_%d.npy of document %d: %s %s, expected float32 %s"
                                % (L, di, x.dtype, x.shape, (len(ids), n_inner)))
                acts[L].append(x[1:] if bos else x)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {L: np.concatenate(v) if v else np.zeros((0, n_inner), np.float32) for L, v in acts.items()}


# ---- scores ----------------------------------------------------------------

def auroc_counts(xin, xout, tol):
    """Per neuron: (2 * #(in > out) + #(in == out), #pairs with 0 < |in - out| <= tol)."""
    n = xin.shape[1]
    u2, near = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for j in range(n):
        o = np.sort(xout[:, j])
        v = xin[:, j]
        lt = np.searchsorted(o, v, "left")
        le = np.searchsorted(o, v, "right")
        u2[j] = 2 * int(lt.sum()) + int((le - lt).sum())
        if tol > 0:
            near[j] = int((np.searchsorted(o, v + tol, "right") - np.searchsorted(o, v - tol, "left")).sum()) \
                - int((le - lt).sum())
    return u2, near


def layer_scores(x32, m, tol):
    x = x32.astype(np.float64)
    xin, xout = x[m], x[~m]
    n1, n0 = len(xin), len(xout)
    r = {}
    r["mean_in"] = xin.mean(0) if n1 else np.full(x.shape[1], np.nan)
    r["mean_out"] = xout.mean(0) if n0 else np.full(x.shape[1], np.nan)
    ss_in = ((xin - r["mean_in"]) ** 2).sum(0) if n1 else np.zeros(x.shape[1])
    ss_out = ((xout - r["mean_out"]) ** 2).sum(0) if n0 else np.zeros(x.shape[1])
    r["sd_in"] = np.sqrt(ss_in / (n1 - 1)) if n1 > 1 else np.full(x.shape[1], np.nan)
    r["sd_out"] = np.sqrt(ss_out / (n0 - 1)) if n0 > 1 else np.full(x.shape[1], np.nan)
    if n1 and n0 and n1 + n0 > 2:
        pooled = np.sqrt((ss_in + ss_out) / (n1 + n0 - 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            r["cohen_d"] = np.where(pooled > 0, (r["mean_in"] - r["mean_out"]) / np.where(pooled > 0, pooled, 1), np.nan)
    else:
        r["cohen_d"] = np.full(x.shape[1], np.nan)
    if n1 and n0:
        u2, near = auroc_counts(x32[m], x32[~m], tol)
        r["auroc"] = u2 / (2.0 * n1 * n0)
        r["slack"] = near / float(n1 * n0)
    else:
        r["auroc"] = np.full(x.shape[1], np.nan)
        r["slack"] = np.zeros(x.shape[1])
    return r


def top_rows(col, row_ids, k):
    """The k token rows of highest value, ties to the earlier (smaller) row id."""
    k = min(k, len(col))
    if k == 0:
        return []
    if k < len(col):
        kth = np.partition(col, len(col) - k)[len(col) - k]
        cand = np.nonzero(col >= kth)[0]
    else:
        cand = np.arange(len(col))
    order = cand[np.lexsort((row_ids[cand], -col[cand].astype(np.float64)))]
    return [int(row_ids[i]) for i in order[:k]]


# ---- the check -----------------------------------------------------------------

def close(stored, ref):
    """stored within REL_TOL relative + ABS_TOL absolute of ref; None (NULL) only against None."""
    if stored is None or ref is None:
        return stored is None and ref is None
    return abs(stored - ref) <= REL_TOL * abs(ref) + ABS_TOL


def fmt(v):
    return "NULL" if v is None else ("%.9g" % v if isinstance(v, float) else str(v))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--concept-run", type=int, required=True)
    ap.add_argument("--probe-bin", required=True)
    ap.add_argument("--model", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--probe")
    g.add_argument("--words")
    ap.add_argument("--drop")
    a = ap.parse_args()
    try:
        return check(a)
    except Fatal as e:
        print("concept_scores.py: %s" % e, file=sys.stderr)
        return 2


def check(a):
    if not os.path.exists(a.db):
        raise Fatal("no database '%s'" % a.db)
    db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    db.row_factory = sqlite3.Row
    cr = db.execute("SELECT * FROM concept_runs WHERE id = ?", (a.concept_run,)).fetchone()
    if cr is None:
        raise Fatal("no concept_runs row %d in '%s'" % (a.concept_run, a.db))
    run_id = cr["run_id"]
    run = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if run is None:
        raise Fatal("concept run %d names run %d, which is not in the database" % (a.concept_run, run_id))
    layers = json.loads(cr["layers"])
    rec_layers = json.loads(run["layers"])
    bos, ctx, n_inner, n_ex = run["bos"], run["ctx"], run["n_inner"], run["n_examples"]
    if not isinstance(layers, list) or not layers or any(L not in rec_layers for L in layers):
        raise Fatal("concept_runs.layers %s: not a non-empty subset of the recorded layers %s" % (cr["layers"], rec_layers))

    concept, n_words = load_concept(a)
    bad = []  # disagreements, as lines

    def disagree(msg):
        bad.append(msg)

    # the concept_runs row itself
    exp = {"name": concept.name, "probe_checksum": concept.checksum, "words": n_words,
           "dropped_flags": a.drop if a.drop else None}
    for k, v in exp.items():
        got = cr[k].lower() if k == "probe_checksum" and cr[k] else cr[k]
        if got != v:
            disagree("concept_runs.%s = %s, expected %s" % (k, fmt(cr[k]), fmt(v)))
    if (cr["probe_path"] is None) != (concept.path is None) or (
            concept.path and os.path.basename(cr["probe_path"]) != os.path.basename(concept.path)):
        disagree("concept_runs.probe_path = %s, expected a path to %s" % (fmt(cr["probe_path"]), fmt(concept.path)))

    # documents and tokens in order
    docs = []
    for d in db.execute("SELECT id, doc_index, n_tokens, text_bytes FROM documents WHERE run_id = ? ORDER BY doc_index",
                        (run_id,)):
        toks = [dict(t) for t in db.execute(
            "SELECT id, pos, token_id, byte_start, byte_end FROM tokens WHERE doc_id = ? ORDER BY pos", (d["id"],))]
        if [t["pos"] for t in toks] != list(range(len(toks))) or len(toks) != d["n_tokens"]:
            raise Fatal("document %d: token positions are not 0..%d" % (d["doc_index"], d["n_tokens"] - 1))
        ends = word_ends(bytes(d["text_bytes"]), concept)
        for t in toks:
            t["in"] = ends.get(t["byte_end"], False)
        docs.append((d["doc_index"], toks))
    all_toks = [t for _, ts in docs for t in ts]
    N = len(all_toks)
    if N != run["n_tokens"]:
        raise Fatal("run %d: %d token rows, runs.n_tokens = %d" % (run_id, N, run["n_tokens"]))
    m = np.array([t["in"] for t in all_toks], bool)
    row_ids = np.array([t["id"] for t in all_toks], np.int64)
    in_rows = set(int(r) for r in row_ids[m])
    n1 = int(m.sum())
    windows = sum(1 for _, ts in docs if ts)
    replayed = sum(1 for _, ts in docs if any(t["in"] for t in ts))
    for k, v in (("concept_tokens", n1), ("tokens", N), ("windows", windows), ("windows_replayed", replayed)):
        if cr[k] != v:
            disagree("concept_runs.%s = %s, expected %d" % (k, fmt(cr[k]), v))

    acts = trace_documents(a, docs, bos, ctx, layers, n_inner)

    # the traced activations against what the recording stored
    act_diff, act_cmp = 0.0, 0
    pos_of = {int(r): i for i, r in enumerate(row_ids)}
    examples = {}  # (layer, neuron) -> [(rank, token_row, value)]
    for L in layers:
        for e in db.execute("SELECT neuron, rank, token_row, value FROM neuron_examples WHERE run_id = ? AND layer = ?"
                            " ORDER BY neuron, rank", (run_id, L)):
            examples.setdefault((L, e[0]), []).append((e[1], e[2], e[3]))
            if e[2] in pos_of:
                act_diff = max(act_diff, abs(float(acts[L][pos_of[e[2]], e[0]]) - e[3]))
                act_cmp += 1
            else:
                disagree("neuron_examples %d:%d rank %d: token row %d is not a token of run %d"
                         % (L, e[0], e[1], e[2], run_id))
        for s in db.execute("SELECT neuron, count, mean, min, max FROM neuron_stats WHERE run_id = ? AND layer = ?",
                            (run_id, L)):
            col = acts[L][:, s[0]]
            if s[1] != N:
                disagree("neuron_stats %d:%d count %d, %d tokens recorded" % (L, s[0], s[1], N))
            if N:
                act_diff = max(act_diff, abs(float(col.min()) - s[3]), abs(float(col.max()) - s[4]))
                if not close(s[2], float(col.astype(np.float64).mean())):
                    disagree("neuron_stats %d:%d mean %s, traced activations give %s"
                             % (L, s[0], fmt(s[2]), fmt(float(col.astype(np.float64).mean()))))
            act_cmp += 3
    scale = max((float(np.abs(acts[L]).max()) for L in layers if acts[L].size), default=0.0)
    if act_diff > REL_TOL * scale + ABS_TOL:
        disagree("traced activations differ from the recorded ones by up to %.3g (neuron_examples.value, "
                 "neuron_stats min/max): another --model, or a corrupted recording" % act_diff)
        tol = 0.0
    else:
        tol = 2 * act_diff  # rounding-level differences (another CPU kernel): near ties may swap

    # the stored top examples: the reference's top-N rows, in rank order
    ex_bad = 0
    for L in layers:
        for j in range(n_inner):
            stored = examples.get((L, j), [])
            srows = [r for _, r, _ in stored]
            if [k for k, _, _ in stored] != list(range(1, len(stored) + 1)) or len(stored) != min(n_ex, N):
                ex_bad += 1
                disagree("neuron_examples %d:%d: ranks %s, expected 1..%d" % (L, j, [k for k, _, _ in stored], min(n_ex, N)))
                continue
            ref = top_rows(acts[L][:, j], row_ids, n_ex)
            if srows == ref:
                continue
            if tol > 0 and all(r in pos_of for r in srows):  # near ties may swap when activations differ
                col = acts[L][:, j]
                kth = float(col[pos_of[ref[-1]]])
                vals = [float(col[pos_of[r]]) for r in srows]
                if len(set(srows)) == len(srows) and min(vals) >= kth - tol and all(
                        vals[i] >= vals[i + 1] - tol for i in range(len(vals) - 1)):
                    continue
            ex_bad += 1
            k = next((i for i in range(min(len(srows), len(ref))) if srows[i] != ref[i]), min(len(srows), len(ref)))
            disagree("neuron_examples %d:%d: rank %d is token row %s, the reference's top-%d has %s there"
                     % (L, j, k + 1, srows[k] if k < len(srows) else None, n_ex, ref[k] if k < len(ref) else None))

    # concept_scores against the reference
    has_hist = db.execute("SELECT count(*) FROM neuron_histograms WHERE run_id = ?", (run_id,)).fetchone()[0] > 0
    stored = {(r["layer"], r["neuron"]): r for r in db.execute(
        "SELECT * FROM concept_scores WHERE concept_run_id = ?", (a.concept_run,))}
    extra = sorted(k for k in stored if k[0] not in layers or not 0 <= k[1] < n_inner)
    if extra:
        disagree("%d concept_scores rows outside the scored layers x neurons, first %d:%d" % (len(extra), *extra[0]))
    missing = 0
    all_rows = []  # (exact auroc, |stored - exact|, auroc_error, slack)
    maxrel = {k: 0.0 for k in ("mean_in", "mean_out", "sd_in", "sd_out", "cohen_d")}
    for L in layers:
        ref = layer_scores(acts[L], m, tol)
        for j in range(n_inner):
            s = stored.get((L, j))
            if s is None:
                missing += 1
                disagree("no concept_scores row for %d:%d" % (L, j))
                continue
            for k in maxrel:
                rv = float(ref[k][j])
                rv = None if math.isnan(rv) else rv
                if not close(s[k], rv):
                    disagree("%d:%d %s = %s, reference %s" % (L, j, k, fmt(s[k]), fmt(rv)))
                elif s[k] is not None and rv is not None:
                    maxrel[k] = max(maxrel[k], abs(s[k] - rv) / max(abs(rv), 1e-300) if rv else abs(s[k]))
            ex = examples.get((L, j), [])
            e_in = sum(1 for _, r, _ in ex if r in in_rows)
            prec = e_in / len(ex) if ex else None
            if s["examples"] != len(ex) or s["examples_in"] != e_in or s["precision"] != prec:
                disagree("%d:%d examples_in/examples/precision = %s/%s/%r, reference %d/%d/%r"
                         % (L, j, s["examples_in"], s["examples"], s["precision"], e_in, len(ex), prec))
            exact = float(ref["auroc"][j])
            if not has_hist:
                if s["auroc"] is not None or s["auroc_error"] is not None:
                    disagree("%d:%d auroc = %s (error %s) but run %d has no histograms: expected NULL"
                             % (L, j, fmt(s["auroc"]), fmt(s["auroc_error"]), run_id))
                continue
            if s["auroc"] is None or s["auroc_error"] is None or not s["auroc_error"] >= 0:
                disagree("%d:%d auroc = %s, auroc_error = %s: expected numbers (exact AUROC %.9g)"
                         % (L, j, fmt(s["auroc"]), fmt(s["auroc_error"]), exact))
                continue
            diff = abs(s["auroc"] - exact)
            slack = float(ref["slack"][j])
            all_rows.append((exact, diff, s["auroc_error"], slack, L, j))
            if diff > s["auroc_error"] + slack + AUROC_SLACK:
                disagree("%d:%d auroc = %.9g, exact %.9g: |diff| %.3g > auroc_error %.3g"
                         % (L, j, s["auroc"], exact, diff, s["auroc_error"]))

    # the summary
    n_rows = len(layers) * n_inner
    parts = ["concept run %d ('%s', %d words%s) over run %d (%s): %d documents traced with %s, %d tokens, "
             "%d concept tokens in %d of %d windows; layers %s x %d neurons = %d rows (%d missing, %d extra)."
             % (a.concept_run, concept.name, n_words, ", dropped " + a.drop if a.drop else "", run_id, run["status"],
                windows, os.path.basename(a.probe_bin), N, n1, replayed, windows, layers, n_inner, n_rows, missing,
                len(extra))]
    parts.append("Traced activations vs recorded (%d values): %s." % (
        act_cmp, "bit-identical" if act_diff == 0 else "max |diff| %.3g, %s" % (
            act_diff, "near ties within %.3g may swap" % tol if tol else "too large to be rounding")))
    parts.append("Max relative difference: " + ", ".join("%s %.2g" % kv for kv in maxrel.items()) + ".")
    parts.append("Top examples: %d of %d neurons as the reference ranks them; precision counted from them." % (
        n_rows - ex_bad, n_rows))
    if all_rows:
        top = sorted(all_rows, key=lambda r: -r[0])[:10]
        parts.append("AUROC: max |stored - exact| %.3g, max auroc_error %.3g over all neurons; over the top 10 by "
                     "exact AUROC (best %d:%d = %.4f): max |diff| %.3g, max auroc_error %.3g%s."
                     % (max(r[1] for r in all_rows), max(r[2] for r in all_rows), top[0][4], top[0][5], top[0][0],
                        max(r[1] for r in top), max(r[2] for r in top),
                        "; near-tie slack up to %.3g" % max(r[3] for r in all_rows) if tol > 0 else ""))
    else:
        parts.append("AUROC: NULL for every neuron (run %d has no histograms), as expected." % run_id
                     if not has_hist else "AUROC: no rows compared.")
    parts.append("%d disagreements." % len(bad) if bad else "Everything agrees.")
    print(" ".join(parts))
    if bad:
        print("first %d of %d disagreements:" % (min(len(bad), MAX_REPORT), len(bad)))
        for b in bad[:MAX_REPORT]:
            print("  " + b)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
