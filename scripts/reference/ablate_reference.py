#!/usr/bin/python3
"""Independent reference for `probe ablate`: the same interventions and
metrics, in float64 NumPy, sharing no code with probe (its own safetensors
reader, forward pass, corpus splitting and windowing).

    /usr/bin/python3 scripts/reference/ablate_reference.py --model DIR \
        (--corpus FILE [--ctx N] [--no-bos] | --ids FILE.json) \
        [--no-ffn | --layers 3,5-7 | --neurons 5:123,5:456 | --sweep-layers] \
        [--mode zero|mean --means FILE.json] [--tokens] > expected.json

Metrics per predicted token (token j predicted from position j-1): baseline
and ablated cross-entropy in nats, KL(baseline || ablated) over the full
vocabulary, and whether the two argmaxes agree. Per condition: the means of
those, perplexities and delta loss (see probe ablate --help).

Interventions (as probe): removing a layer's FFN = its output (c_proj and
its bias) is not added to the residual; zero / mean ablation of a neuron =
its post-activation is set to 0 / its mean for every token. With --mode mean,
--layers / --no-ffn / --sweep-layers set every neuron of the layer to its
mean instead of removing the FFN. --means FILE is a JSON object {"L":
[means of the n_inner neurons of layer L], ...}; --means corpus computes
them here over every token of the corpus (each token once, in the window
that owns it; the <|endoftext|> before a document is context, not a token),
as `probe record` records them. --dump-means FILE writes the means used.
Token positions in the output are counted as in `probe record` (without
the <|endoftext|>; with --ids, the index in the given ids).

Corpus rules (SPEC section 5, src/text/corpus.h): documents are paragraphs
separated by blank lines; each starts with <|endoftext|> unless --no-bos; a
document longer than ctx is cut into windows of ctx tokens advancing by
ctx/2, the last one aligned to the end; each window owns the tokens after
the previous window's end. --check-trace PROBE additionally runs
`probe trace --ids` with each intervention on every window, recomputes every
figure from its logits.npy and reports the largest relative difference.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = 50256


# ---- model ---------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = body[b:e]
        dt = info["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2")
        elif dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        else:
            continue
        key = name[len("transformer."):] if name.startswith("transformer.") else name
        out[key] = arr.astype(np.float64).reshape(info["shape"])
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def activation(name):
    if name == "gelu_new":
        return lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        from math import erf
        verf = np.vectorize(erf)
        return lambda x: 0.5 * x * (1.0 + verf(x / math.sqrt(2.0)))
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    raise SystemExit(f"unknown activation {name}")


class Model:
    def __init__(self, d):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.w = read_safetensors(os.path.join(d, "model.safetensors"))
        c = self.cfg
        self.L, self.C, self.NH = c["n_layer"], c["n_embd"], c["n_head"]
        self.F = c.get("n_inner") or 4 * self.C
        self.P = c["n_positions"]
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.act = activation(c.get("activation_function", "gelu_new"))
        self.head = self.w.get("lm_head.weight", self.w["wte.weight"])

    def forward(self, ids, remove=(), edits=(), acts=None):
        """Logits [T x V] with the FFN of layers in `remove` not added and
        edits [(layer, neuron, value)] applied to the post-activation; when
        acts is a list, the post-activation of each layer is appended."""
        w, C, NH = self.w, self.C, self.NH
        T, hs = len(ids), self.C // self.NH
        x = w["wte.weight"][ids] + w["wpe.weight"][:T]
        causal = np.triu(np.ones((T, T), dtype=bool), 1)
        for l in range(self.L):
            p = f"h.{l}."
            h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(T, NH, hs).transpose(1, 0, 2) for i in range(3))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hs)
            s[:, causal] = -np.inf
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = (s @ v).transpose(1, 0, 2).reshape(T, C)
            x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            f = self.act(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            for (el, en, ev) in edits:
                if el == l:
                    f[:, en] = ev
            if acts is not None:
                acts.append(f.copy())
            if l not in remove:
                x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], self.eps)
        return x @ self.head.T


# ---- corpus --------------------------------------------------------------

def split_paragraphs(text):
    docs, cur = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if cur:
                docs.append("\n".join(cur))
                cur = []
        else:
            cur.append(line)
    if cur:
        docs.append("\n".join(cur))
    return docs


def windows(n, ctx):
    """[(start, length, first_new)] as described in src/text/corpus.h."""
    if n == 0:
        return []
    if n <= ctx:
        return [(0, n, 0)]
    out, start, owned_to = [], 0, 0
    step = ctx // 2
    while True:
        if start + ctx >= n:
            start = n - ctx
            out.append((start, ctx, owned_to))
            return out
        out.append((start, ctx, owned_to))
        owned_to = start + ctx
        start += step


# ---- specs ---------------------------------------------------------------

def parse_layers(spec):
    out = []
    for item in spec.split(","):
        a, _, b = item.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return sorted(set(out))


def parse_neurons(spec):
    return [tuple(int(x) for x in item.split(":")) for item in spec.split(",")]


def conditions(a, model, means):
    """[(spec, remove set, edits)]"""
    def layer_cond(spec, layers):
        if a.mode == "mean":
            return (spec, set(), [(l, n, means[l][n]) for l in layers for n in range(model.F)])
        return (spec, set(layers), [])

    if a.no_ffn:
        return [layer_cond("no-ffn", range(model.L))]
    if a.layers:
        ls = parse_layers(a.layers)
        return [layer_cond(("layer " if len(ls) == 1 else "layers ") + a.layers, ls)]
    if a.neurons:
        val = (lambda l, n: means[l][n]) if a.mode == "mean" else (lambda l, n: 0.0)
        return [("neurons " + a.neurons, set(), [(l, n, val(l, n)) for (l, n) in parse_neurons(a.neurons)])]
    if a.sweep_layers:
        return [layer_cond(f"layer {l}", [l]) for l in range(model.L)]
    return [("none", set(), [])]


# ---- metrics -------------------------------------------------------------

def log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def token_effects(base_logits, abl_logits, ids, frm):
    """Per predicted token j in [frm, T): (j, id, base loss, abl loss, kl, agree)."""
    rows = np.arange(frm - 1, len(ids) - 1)
    tgt = np.asarray(ids[frm:])
    lp = log_softmax(base_logits[rows])
    lq = log_softmax(abl_logits[rows])
    r = np.arange(len(rows))
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    agree = lp.argmax(-1) == lq.argmax(-1)
    return list(zip(range(frm, len(ids)), tgt.tolist(), (-lp[r, tgt]).tolist(), (-lq[r, tgt]).tolist(),
                    kl.tolist(), agree.tolist()))


def summarise(spec, effects, with_tokens):
    n = len(effects)
    col = lambda i: [e[i] for e in effects]
    base, abl, kl = (math.fsum(col(i)) / n for i in (2, 3, 4))
    out = {"spec": spec, "tokens": n, "baseline_ce": base, "ablated_ce": abl,
           "baseline_ppl": math.exp(base), "ablated_ppl": math.exp(abl), "delta_loss": abl - base,
           "delta_loss_se": float(np.std(np.array(col(3)) - np.array(col(2)), ddof=1) / math.sqrt(n)),
           "kl": kl, "top1_agreement": sum(col(5)) / n}
    if with_tokens:
        out["per_token"] = {"doc": col(6), "pos": col(0), "token": col(1), "baseline_loss": col(2),
                            "ablated_loss": col(3), "kl": col(4), "agree": [int(x) for x in col(5)]}
    return out


def trace_logits(probe, model_dir, ids, remove, edits, L):
    """Logits of `probe trace --ids` with the same interventions."""
    with tempfile.TemporaryDirectory() as d:
        json.dump(ids, open(os.path.join(d, "ids.json"), "w"))
        cmd = [probe, "trace", "--model", model_dir, "--ids", os.path.join(d, "ids.json"), "--out", d]
        if remove:
            cmd += ["--no-ffn-layers", ",".join(str(l) for l in sorted(remove))]
        if edits:
            cmd += ["--set", ",".join(f"{l}:{n}={v!r}" for (l, n, v) in edits)]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        return np.load(os.path.join(d, "logits.npy")).astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus")
    src.add_argument("--ids")
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--no-bos", action="store_true")
    cond = ap.add_mutually_exclusive_group()
    cond.add_argument("--no-ffn", action="store_true")
    cond.add_argument("--layers")
    cond.add_argument("--neurons")
    cond.add_argument("--sweep-layers", action="store_true")
    ap.add_argument("--mode", choices=["zero", "mean"], default="zero")
    ap.add_argument("--means")
    ap.add_argument("--dump-means")
    ap.add_argument("--tokens", action="store_true", help="include per-token effects")
    ap.add_argument("--check-trace", metavar="PROBE", help="also recompute from `PROBE trace` logits")
    a = ap.parse_args()

    model = Model(a.model)
    ctx = a.ctx or model.P
    if a.ids:
        docs = [json.load(open(a.ids))]
    else:
        sys.path.insert(0, HERE)
        from gpt2_bpe import Encoder
        enc = Encoder.load()
        text = open(a.corpus, encoding="utf-8", errors="surrogateescape").read()
        docs = [([] if a.no_bos else [EOT]) + enc.encode(d) for d in split_paragraphs(text)]

    means = None
    if a.mode == "mean" and a.means == "corpus":
        sums, count = np.zeros((model.L, model.F)), 0
        for ids in docs:
            for (start, length, first_new) in windows(len(ids), ctx):
                acts = []
                model.forward(ids[start:start + length], acts=acts)
                lo = max(first_new - start, 1 if (start == 0 and not a.no_bos) else 0)
                sums += np.stack([f[lo:].sum(0) for f in acts])
                count += length - lo
        means = {l: (sums[l] / count).tolist() for l in range(model.L)}
    elif a.mode == "mean":
        means = {int(k): v for k, v in json.load(open(a.means)).items()}
    if means and a.dump_means:
        json.dump({str(k): v for k, v in means.items()}, open(a.dump_means, "w"))
    bos = 0 if (a.ids or a.no_bos) else 1  # positions are counted without the <|endoftext|>
    conds = conditions(a, model, means)
    effects = [[] for _ in conds]
    worst_trace = 0.0
    for di, ids in enumerate(docs):
        for (start, length, first_new) in windows(len(ids), ctx):
            w = ids[start:start + length]
            frm = max(first_new - start, 1)
            if frm >= length:
                continue
            base = model.forward(w)
            for ci, (spec, remove, edits) in enumerate(conds):
                abl = model.forward(w, remove, edits)
                eff = token_effects(base, abl, w, frm)
                effects[ci] += [(start + e[0] - bos,) + e[1:] + (di,) for e in eff]
                if a.check_trace:
                    tb = trace_logits(a.check_trace, a.model, w, set(), [], model.L)
                    ta = trace_logits(a.check_trace, a.model, w, remove, edits, model.L)
                    te = token_effects(tb, ta, w, frm)
                    for x, y in zip(eff, te):
                        for i in (2, 3, 4):
                            worst_trace = max(worst_trace, abs(x[i] - y[i]) / max(abs(x[i]), 1e-3))
    out = {"model": a.model, "ctx": ctx, "mode": a.mode, "documents": len(docs),
           "conditions": [summarise(c[0], e, a.tokens) for c, e in zip(conds, effects)]}
    if a.check_trace:
        out["trace_max_rel_diff"] = worst_trace
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
