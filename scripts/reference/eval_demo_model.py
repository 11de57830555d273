#!/usr/bin/python3
"""Independent check of a GPT-2 model directory (HF layout): NumPy only (no torch).

Runs gpt2_ref.py's GPT-2 forward pass (its own safetensors reader) and computes
the held-out loss exactly as defined in models/demo/heldout_eval.json
(consecutive non-overlapping windows of `ctx` tokens, full 50257-way softmax,
every token but each window's first scored; the forward pass in float32 for
speed, the softmax in float64), plus the add-one unigram baseline if
--corpus is given.

  scripts/reference/eval_demo_model.py [--model models/demo] [--text examples/heldout_mobydick.txt]

With --predict TEXT --out FILE it writes instead the reference for `probe predict
--json TEXT` (tests/check_demo.c): the top-10 next tokens after <|endoftext|> + TEXT
with their probabilities under the full softmax (float64 forward), as JSON.
Regenerate it whenever models/demo changes (scripts/fixtures/gen_demo_fixtures.sh):

  scripts/reference/eval_demo_model.py --predict "PROMPT" --out tests/fixtures/demo/predict.json
"""
import argparse
import json
import os
import sys

import numpy as np

from gpt2_bpe import Encoder
from gpt2_ref import EOT, GPT2, log_softmax, read_header

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def write_predict_reference(model, enc, text, out):
    """The top-10 next tokens after <|endoftext|> + text (probe predict's window)."""
    ids = np.array([EOT] + enc.encode(text), dtype=np.int64)
    lg = model.forward(ids)[-1]
    p = np.exp(lg - lg.max())
    p /= p.sum()
    top = np.argsort(-p, kind="stable")[:10]
    ref = {"prompt": text, "how": "scripts/reference/eval_demo_model.py --predict: float64 NumPy forward of "
           "<|endoftext|> + the prompt, full 50257-way softmax at the last position",
           "top": [{"id": int(i), "prob": float(p[i])} for i in top]}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %s: %s" % (out, ", ".join("%d %.6f" % (e["id"], e["prob"]) for e in ref["top"][:5])))


def next_token_nll(model, ids):
    """ids: 1-D int array (one window). Returns -log p(ids[j+1] | ids[:j+1]) for all j."""
    lg = model.forward(ids[:-1]).astype(np.float64)
    return -log_softmax(lg)[np.arange(len(ids) - 1), ids[1:]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "demo"))
    ap.add_argument("--text", default=os.path.join(ROOT, "examples", "heldout_mobydick.txt"))
    ap.add_argument("--ctx", type=int, default=0, help="window (default: heldout_eval.json ctx or n_positions)")
    ap.add_argument("--max-tokens", type=int, default=0)
    ap.add_argument("--corpus", default="", help="dir with austen.txt web.txt kjv.txt for the unigram baseline")
    ap.add_argument("--predict", help="write the predict reference for this prompt (with --out)")
    ap.add_argument("--out", help="output file for --predict")
    a = ap.parse_args()
    if a.predict is not None and not a.out:
        sys.exit("eval_demo_model.py: --predict needs --out FILE")
    st = os.path.join(a.model, "model.safetensors")
    header, _ = read_header(st)
    model = GPT2(a.model, np.float64 if a.predict is not None else np.float32)
    cfg = model.cfg
    print("model.safetensors: %d bytes, %d tensors, dtypes %s" % (
        os.path.getsize(st), len(model.w), sorted(set(v["dtype"] for k, v in header.items() if k != "__metadata__"))))
    assert model.w["wte.weight"].shape == (cfg["vocab_size"], cfg["n_embd"]) and cfg["vocab_size"] == 50257
    enc = Encoder.load(a.model)
    if a.predict is not None:
        write_predict_reference(model, enc, a.predict, a.out)
        return
    ref = {}
    rp = os.path.join(a.model, "heldout_eval.json")
    if os.path.exists(rp):
        ref = json.load(open(rp))
    ctx = a.ctx or ref.get("ctx") or cfg["n_positions"]
    toks = np.array(enc.encode(open(a.text, encoding="utf-8").read()), dtype=np.int64)
    if a.max_tokens:
        toks = toks[:a.max_tokens]
    nll = []
    for s in range(0, len(toks), ctx):
        w = toks[s:s + ctx]
        if len(w) >= 2:
            nll.append(next_token_nll(model, w))
    nll = np.concatenate(nll)
    loss = float(nll.mean())
    print("text %s: %d tokens, %d scored, ctx %d" % (a.text, len(toks), len(nll), ctx))
    print("numpy loss: %.6f nats/token" % loss)
    if ref:
        print("heldout_eval.json loss: %.6f (tokens %d)  |diff| = %.2e" % (ref["loss"], ref["tokens"], abs(loss - ref["loss"])))
    if a.corpus:
        counts = np.zeros(50257, dtype=np.int64)
        train = []
        for b in ("austen", "web", "kjv"):
            train.append(np.array(enc.encode(open(os.path.join(a.corpus, b + ".txt"), encoding="utf-8").read())))
        tr = np.concatenate(train + [np.array([EOT] * 3)])
        counts += np.bincount(tr, minlength=50257)
        tgt = np.concatenate([toks[s + 1:s + ctx] for s in range(0, len(toks), ctx) if len(toks[s:s + ctx]) >= 2])
        uni = float(-np.mean(np.log((counts[tgt] + 1.0) / (counts.sum() + 50257))))
        print("unigram (add-one) loss: %.6f" % uni)


if __name__ == "__main__":
    main()
