#!/usr/bin/python3
"""Independent reference for `probe record`: what the database must contain.

Splits the corpus into paragraphs, tokenizes with gpt2_bpe.py (a
re-implementation of OpenAI's encoder.py), cuts windows, runs each window
through gpt2_ref.py's float64 forward pass (no code shared with probe),
keeps the tokens each window owns, and computes per (layer, neuron) the
statistics, the top-N examples and per token the top-k neurons. Writes one
JSON file the check suite compares against (tests/check_record.c).

    /usr/bin/python3 scripts/reference/record_reference.py --model tests/fixtures/models/tiny-f32 \
        --corpus tests/fixtures/record/corpus.txt --ctx 16 --examples 8 --top-k 4 \
        --full 1 --out tests/fixtures/record/expected.json

Rules (the ones documented by `probe record --help` and corpus.h):
  - paragraph documents: runs of non-blank lines (blank = only whitespace);
  - each document is preceded by <|endoftext|> (50256), which is context only;
  - windows of ctx tokens advance by ctx // 2, the last aligned to the end of
    the sequence; each owns the tokens after the previous window's end;
  - statistics over every owned token: count, mean, population variance,
    min, max, fraction > 0 (computed here in float64 from float32-rounded
    activations, the precision probe records);
  - top-N examples of a neuron: highest value first, ties to the earlier token;
  - top-k of a token: highest first, ties to the lower neuron.
"""
import argparse
import json

import numpy as np

from gpt2_bpe import Encoder
from gpt2_ref import EOT, GPT2, paragraphs, windows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--examples", type=int, default=32)
    ap.add_argument("--top-k", type=int, default=16)
    ap.add_argument("--full", type=int, action="append", default=[])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    model = GPT2(a.model)
    enc = Encoder.load(a.model)
    L = model.L
    data = open(a.corpus, "rb").read()

    tokens = []  # per token: doc, pos, id, byte_start, byte_end
    acts = [[] for _ in range(L)]  # per layer: owned rows, float32
    docs = paragraphs(data)
    for di, (offset, raw) in enumerate(docs):
        ids = enc.encode(raw.decode("utf-8"))
        lens = [len(enc.token_bytes(i)) for i in ids]
        starts = np.concatenate([[0], np.cumsum(lens)]).astype(int)
        assert starts[-1] == len(raw)
        for p, tid in enumerate(ids):
            tokens.append([di, p, tid, int(starts[p]), int(starts[p + 1])])
        seq = [EOT] + ids
        for (s, n, first) in windows(len(seq), a.ctx):
            ffn = []
            model.forward(seq[s:s + n], acts=ffn)
            own = max(first, 1) - s
            for l in range(L):
                acts[l].append(ffn[l][own:].astype(np.float32))

    out = {"model": a.model, "corpus": a.corpus, "ctx": a.ctx, "examples": a.examples,
           "top_k": a.top_k, "n_docs": len(docs), "doc_offsets": [d[0] for d in docs],
           "tokens": tokens, "layers": []}
    for l in range(L):
        A = np.concatenate(acts[l]).astype(np.float64)  # [n x F]
        n, F = A.shape
        assert n == len(tokens)
        order = lambda col: sorted(range(n), key=lambda t: (-col[t], t))  # noqa: E731
        examples = []
        for j in range(F):
            top = order(A[:, j])[: a.examples]
            examples.append([[t, float(A[t, j])] for t in top])
        topk = []
        for t in range(n):
            idx = sorted(range(F), key=lambda j: (-A[t, j], j))[: a.top_k]
            topk.append([[j, float(A[t, j])] for j in idx])
        layer = {"layer": l, "count": n, "mean": A.mean(0).tolist(), "variance": A.var(0).tolist(),
                 "min": A.min(0).tolist(), "max": A.max(0).tolist(),
                 "frac_pos": (A > 0).mean(0).tolist(), "examples": examples, "topk": topk}
        if l in a.full:
            layer["full"] = A.tolist()
        out["layers"].append(layer)
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"{a.out}: {len(docs)} documents, {len(tokens)} tokens, {L} layers x {F} neurons")


if __name__ == "__main__":
    main()
