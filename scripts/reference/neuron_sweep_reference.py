#!/usr/bin/python3
"""Independent reference for `probe ablate --sweep neurons --layer L`: the
attribution-patching estimate of every neuron's single ablation, from
PyTorch autograd in float64 (its own forward pass; it shares with probe only
the file formats: gpt2_ref.py reads the weights and cuts the corpus).

    /usr/bin/python3 scripts/reference/neuron_sweep_reference.py --model DIR \
        --corpus FILE [--ctx N] [--no-bos] --layer L|all [--mode zero|mean --means FILE.json] \
        [--exact N] > expected.json

For each window (corpus rules as probe's: gpt2_ref.windows) the summed
next-token loss of the tokens the window owns is differentiated with respect
to layer L's post-activation a [T x F] (each layer's, with --layer all);
neuron j's estimate adds
sum_t (v_j - a_j(t)) dLoss/da_j(t), v_j = 0 (zero) or its mean (mean mode,
--means as ablate_reference.py). Estimates are divided by the predicted
tokens: the estimated delta loss per token ("estimate": one list per
layer swept, "layers" says which). --exact N also ablates the N neurons
with the largest estimates, one at a time, and reports their measured delta
loss (what the estimate approximates).
"""
import argparse
import json
import math
import sys

import numpy as np
import torch

from gpt2_ref import EOT, GPT2, paragraphs, windows


def forward(model, w, ids, layers, edit=None):
    """(logits [T x V], {layer: post-activation leaf} for `layers`) in
    float64; edit = (layer, neuron, value) sets that neuron at every
    position."""
    C, NH, T = model.C, model.NH, len(ids)
    hs = C // NH
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    leaves = {}

    def ln(x, p):
        return torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], model.eps)

    act = model.cfg.get("activation_function", "gelu_new")
    for l in range(model.L):
        p = f"h.{l}."
        h = ln(x, p + "ln_1")
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(T, NH, hs).transpose(0, 1) for i in range(3))
        s = q @ k.transpose(1, 2)
        if model.scale_attn:
            s = s / math.sqrt(hs)
        if model.scale_by_layer:
            s = s / float(l + 1)
        s = s.masked_fill(mask, float("-inf")).softmax(-1)
        o = (s @ v).transpose(0, 1).reshape(T, C)
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        f = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        if act == "gelu_new":
            f = torch.nn.functional.gelu(f, approximate="tanh")
        elif act == "relu":
            f = torch.relu(f)
        else:
            f = torch.nn.functional.gelu(f)
        if edit is not None and edit[0] == l:
            f = f.clone()
            f[:, edit[1]] = edit[2]
        if l in layers:  # the lowest is the graph's leaf; higher ones keep their grad
            if not leaves:
                f = f.detach().requires_grad_(True)
            else:
                f.retain_grad()
            leaves[l] = f
        x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = torch.nn.functional.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"], model.eps)
    return x @ w["head"].T, leaves


def window_loss(logits, ids, frm):
    rows = torch.arange(frm - 1, len(ids) - 1)
    tgt = torch.tensor(ids[frm:])
    return -torch.log_softmax(logits[rows], -1)[torch.arange(len(rows)), tgt]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--layer", required=True, help="a layer, or all")
    ap.add_argument("--mode", choices=["zero", "mean"], default="zero")
    ap.add_argument("--means")
    ap.add_argument("--exact", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(2)
    model = GPT2(a.model)
    w = {k: torch.from_numpy(v) for k, v in model.w.items()}
    w["head"] = torch.from_numpy(model.head)
    ctx = a.ctx or model.P
    from gpt2_bpe import Encoder
    enc = Encoder.load()
    data = open(a.corpus, "rb").read()
    docs = [([] if a.no_bos else [EOT]) + enc.encode(raw.decode("utf-8", "surrogateescape"))
            for _, raw in paragraphs(data)]
    F = model.F
    layers = list(range(model.L)) if a.layer == "all" else [int(a.layer)]
    value = {l: np.zeros(F) for l in layers}
    if a.mode == "mean":
        means = json.load(open(a.means))
        value = {l: np.array(means[str(l)], dtype=np.float64) for l in layers}

    wins = []
    for ids in docs:
        for (start, length, first_new) in windows(len(ids), ctx):
            frm = max(first_new - start, 1)
            if frm < length:
                wins.append((ids[start:start + length], frm))
    est = {l: torch.zeros(F, dtype=torch.float64) for l in layers}
    n, nll = 0, 0.0
    for ids, frm in wins:
        logits, leaves = forward(model, w, ids, set(layers))
        loss = window_loss(logits, ids, frm)
        loss.sum().backward()
        for l in layers:
            est[l] += ((torch.from_numpy(value[l]) - leaves[l].detach()) * leaves[l].grad).sum(0)
        n += len(loss)
        nll += loss.sum().item()
    out = {"model": a.model, "ctx": ctx, "layers": layers, "mode": a.mode, "tokens": n,
           "baseline_ce": nll / n, "estimate": [(est[l] / n).tolist() for l in layers]}
    if a.exact:
        flat = [(-(est[l][j].item() / n), l, j) for l in layers for j in range(F)]
        exact = []
        with torch.no_grad():
            for (_, l, j) in sorted(flat)[:a.exact]:
                tot = 0.0
                for ids, frm in wins:
                    base, _ = forward(model, w, ids, set())
                    abl, _ = forward(model, w, ids, set(), (l, j, float(value[l][j])))
                    tot += (window_loss(abl, ids, frm) - window_loss(base, ids, frm)).sum().item()
                exact.append({"layer": l, "neuron": j, "estimate": est[l][j].item() / n, "delta_loss": tot / n})
        out["exact"] = exact
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
