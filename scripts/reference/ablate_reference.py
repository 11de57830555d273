#!/usr/bin/python3
"""Independent reference for `probe ablate`: the same interventions and
metrics, in float64 NumPy, sharing no code with probe (safetensors reader,
forward pass, corpus splitting and windowing of gpt2_ref.py).

    /usr/bin/python3 scripts/reference/ablate_reference.py --model DIR \
        (--corpus FILE [--ctx N] [--no-bos] | --ids FILE.json) \
        [--no-ffn | --layers 3,5-7 | --neurons 5:123,5:456 | --sweep-layers] \
        [--mode zero|mean --means FILE.json] [--tokens] > expected.json

Metrics per predicted token (token j predicted from position j-1): baseline
and ablated cross-entropy in nats, KL(baseline || ablated) over the full
vocabulary, and whether the two argmaxes agree. Per condition: the means of
those, perplexities and delta loss (see probe ablate --help).

Interventions (as probe; gpt2_ref.GPT2.forward): removing a layer's FFN =
its output (c_proj and its bias) is not added to the residual; zero / mean
ablation of a neuron = its post-activation is set to 0 / its mean for every
token. With --mode mean,
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
import subprocess
import sys
import tempfile

import numpy as np

from gpt2_ref import EOT, GPT2, log_softmax, paragraphs, parse_layers, parse_neurons, windows


# ---- conditions ----------------------------------------------------------

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

    model = GPT2(a.model)
    ctx = a.ctx or model.P
    if a.ids:
        docs = [json.load(open(a.ids))]
    else:
        from gpt2_bpe import Encoder
        enc = Encoder.load()
        data = open(a.corpus, "rb").read()
        docs = [([] if a.no_bos else [EOT]) + enc.encode(raw.decode("utf-8", "surrogateescape"))
                for _, raw in paragraphs(data)]

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
