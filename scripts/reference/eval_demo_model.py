#!/usr/bin/python3
"""Independent check of a GPT-2 model directory (HF layout): NumPy only (no torch).

Parses model.safetensors itself (8-byte LE header length, JSON header, raw LE data),
runs its own GPT-2 forward pass, and computes the held-out loss exactly as defined in
models/demo/heldout_eval.json (consecutive non-overlapping windows of `ctx` tokens,
full 50257-way softmax, every token but each window's first scored), plus the add-one
unigram baseline if --corpus is given.

  scripts/reference/eval_demo_model.py [--model models/demo] [--text examples/heldout_mobydick.txt]

With --predict TEXT --out FILE it writes instead the reference for `probe predict
--json TEXT` (tests/check_demo.c): the top-10 next tokens after <|endoftext|> + TEXT
with their probabilities under the full softmax, as JSON. Regenerate it whenever
models/demo changes:

  scripts/reference/eval_demo_model.py --predict "PROMPT" --out tests/fixtures/demo/predict.json
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from gpt2_bpe import Encoder  # noqa: E402


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": "<f4", "F16": "<f2"}[info["dtype"]]
        s, e = info["data_offsets"]
        a = np.frombuffer(raw, dtype=dt, count=(e - s) // np.dtype(dt).itemsize, offset=8 + n + s)
        out[name[len("transformer."):] if name.startswith("transformer.") else name] = \
            a.reshape(info["shape"]).astype(np.float32)
    return header, out


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def final_logits(W, cfg, ids):
    """ids: 1-D int array (one window). Returns the float64 logits [T x V] at every position."""
    E, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    T = len(ids)
    x = W["wte.weight"][ids] + W["wpe.weight"][:T]
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    d = E // H
    for i in range(cfg["n_layer"]):
        g = lambda n: W["h.%d.%s" % (i, n)]  # noqa: E731
        h = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = [qkv[:, j * E:(j + 1) * E].reshape(T, H, d).transpose(1, 0, 2) for j in range(3)]
        att = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        att[:, causal] = -np.inf
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        a = (att @ v).transpose(1, 0, 2).reshape(T, E)
        x = x + a @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"), eps)
        x = x + gelu_new(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")) @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    head = W.get("lm_head.weight", W["wte.weight"])
    return (x @ head.T).astype(np.float64)


def write_predict_reference(W, cfg, enc, text, out):
    """The top-10 next tokens after <|endoftext|> + text (probe predict's window)."""
    ids = np.array([50256] + enc.encode(text), dtype=np.int64)
    W64 = {k: v.astype(np.float64) for k, v in W.items()}
    lg = final_logits(W64, cfg, ids)[-1]
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


def forward_logprobs_of_next(W, cfg, ids):
    """ids: 1-D int array (one window). Returns -log p(ids[j+1] | ids[:j+1]) for all j."""
    E, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    T = len(ids) - 1
    x = W["wte.weight"][ids[:-1]] + W["wpe.weight"][:T]
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    d = E // H
    for i in range(cfg["n_layer"]):
        g = lambda n: W["h.%d.%s" % (i, n)]  # noqa: E731
        h = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = [qkv[:, j * E:(j + 1) * E].reshape(T, H, d).transpose(1, 0, 2) for j in range(3)]
        att = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        att[:, causal] = -np.inf
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        a = (att @ v).transpose(1, 0, 2).reshape(T, E)
        x = x + a @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"), eps)
        x = x + gelu_new(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")) @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    head = W.get("lm_head.weight", W["wte.weight"])
    lg = (x @ head.T).astype(np.float64)
    mx = lg.max(-1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(-1))
    return lse - lg[np.arange(T), ids[1:]]


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
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    header, W = read_safetensors(os.path.join(a.model, "model.safetensors"))
    size = os.path.getsize(os.path.join(a.model, "model.safetensors"))
    print("model.safetensors: %d bytes, %d tensors, dtypes %s" % (
        size, len(W), sorted(set(v["dtype"] for k, v in header.items() if k != "__metadata__"))))
    assert W["wte.weight"].shape == (cfg["vocab_size"], cfg["n_embd"]) and cfg["vocab_size"] == 50257
    ref = {}
    rp = os.path.join(a.model, "heldout_eval.json")
    if os.path.exists(rp):
        ref = json.load(open(rp))
    ctx = a.ctx or ref.get("ctx") or cfg["n_positions"]
    enc = Encoder(json.load(open(os.path.join(a.model, "vocab.json"), encoding="utf-8")),
                  [tuple(l.split()) for l in open(os.path.join(a.model, "merges.txt"), encoding="utf-8").read().split("\n")[1:] if l.strip()])
    if a.predict is not None:
        if not a.out:
            sys.exit("eval_demo_model.py: --predict needs --out FILE")
        write_predict_reference(W, cfg, enc, a.predict, a.out)
        return
    toks = np.array(enc.encode(open(a.text, encoding="utf-8").read()), dtype=np.int64)
    if a.max_tokens:
        toks = toks[:a.max_tokens]
    nll = []
    for s in range(0, len(toks), ctx):
        w = toks[s:s + ctx]
        if len(w) >= 2:
            nll.append(forward_logprobs_of_next(W, cfg, w))
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
        tr = np.concatenate(train + [np.array([50256] * 3)])
        counts += np.bincount(tr, minlength=50257)
        tgt = np.concatenate([toks[s + 1:s + ctx] for s in range(0, len(toks), ctx) if len(toks[s:s + ctx]) >= 2])
        uni = float(-np.mean(np.log((counts[tgt] + 1.0) / (counts.sum() + 50257))))
        print("unigram (add-one) loss: %.6f" % uni)


if __name__ == "__main__":
    main()
