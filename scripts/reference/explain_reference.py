#!/usr/bin/python3
"""Independent reference for `probe explain` and the residual outputs of
`probe trace`: direct logit attribution in float64 on gpt2_ref.py's forward
pass (NumPy, no code shared with probe).

    /usr/bin/python3 scripts/reference/explain_reference.py --model DIR --text "The cat sat on the" \\
        [--no-bos] [--pos -1] [--target ' mat' | --target '#2603'] [--top 5] [--out explain.json]
    /usr/bin/python3 scripts/reference/explain_reference.py --model DIR --text "..." --trace-out DIR [--ctx N]

Explain: the window is <|endoftext|> (unless --no-bos) and the text's last
tokens, n_positions in all (as `probe predict`); at position pos (negative:
from the end) the logit of the target (default: the top prediction) is
split with ln_f's scale sigma = sqrt(var(x) + eps) frozen, x the residual
stream into ln_f, u = W_U[target], gamma/beta ln_f's weight/bias:
  part(c) = ((c - mean(c)) * gamma) . u / sigma
for c = the embeddings (blocks.0.hook_resid_pre), each layer's attention
output (hook_attn_out) and FFN output (hook_mlp_out), plus beta . u; a
neuron j's part is act_j * ((v_j - mean(v_j)) . (gamma * u)) / sigma (v_j its
c_proj row). The script checks that the parts add up to its own logit and the
neurons plus the c_proj bias to each FFN part (to 1e-9), then writes JSON:
ids, pos, target, predicted, logit, sum, sigma, parts [{component, value}],
ffn_bias [L], neuron_values [L][F] (every neuron's part), acts [L][F] and
args (the options it ran with, for the test to run probe with the same).

--trace-out DIR writes what `probe trace` writes for the residual stream:
resid_pre_L.npy, attn_out_L.npy, resid_post_L.npy and ffn_L.npy (float32
from float64) and ids.json; when the ids are longer than --ctx (default
n_positions) they are cut into record's windows (gpt2_ref.windows): the
files of window k in DIR/wk/, all ids in DIR/ids.json, the windows in
DIR/windows.json.
"""
import argparse
import json
import os
import sys

import numpy as np

from gpt2_ref import EOT, GPT2, windows

HERE = os.path.dirname(os.path.abspath(__file__))


def encoder(model_dir):
    sys.path.insert(0, HERE)
    from gpt2_bpe import Encoder
    return Encoder.load(model_dir)


def explain(model, ids, pos, target, top):
    """The decomposition of the logit of `target` (None: the argmax) at pos."""
    resid, acts = [], []
    logits = model.forward(ids[:pos + 1], acts=acts, resid=resid)
    row = logits[pos]
    predicted = int(np.argmax(row))
    t = predicted if target is None else target
    w = model.w
    gamma, beta, u = w["ln_f.weight"], w["ln_f.bias"], model.head[t]
    x = resid[-1][2][pos]
    sigma = float(np.sqrt(x.var() + model.eps))
    gu = gamma * u

    def part(c):
        return float((c - c.mean(-1, keepdims=True)) @ gu / sigma)

    parts = [("embed", part(resid[0][0][pos]))]
    ffn_bias, neuron_values = [], []
    for l, (pre, attn, post) in enumerate(resid):
        mlp = post[pos] - pre[pos] - attn[pos]
        parts.append((f"attn {l}", part(attn[pos])))
        parts.append((f"ffn {l}", part(mlp)))
        v = w[f"h.{l}.mlp.c_proj.weight"]  # [F x C]
        nv = acts[l][pos] * ((v - v.mean(-1, keepdims=True)) @ gu) / sigma
        b = part(w[f"h.{l}.mlp.c_proj.bias"])
        ffn_bias.append(b)
        neuron_values.append(nv.tolist())
        if abs(nv.sum() + b - parts[-1][1]) > 1e-9 * max(1.0, abs(parts[-1][1])):
            raise SystemExit(f"explain_reference: layer {l}: neurons + bias {nv.sum() + b} != FFN part {parts[-1][1]}")
    parts.append(("ln_f bias", float(beta @ u)))
    total = sum(v for _, v in parts)
    if abs(total - row[t]) > 1e-9 * max(1.0, abs(row[t])):
        raise SystemExit(f"explain_reference: parts add up to {total}, the logit is {row[t]}")
    return {"ids": [int(i) for i in ids], "pos": pos, "target": int(t), "predicted": predicted, "top": top,
            "logit": float(row[t]), "sum": total, "sigma": sigma,
            "parts": [{"component": n, "value": v} for n, v in parts],
            "ffn_bias": ffn_bias, "neuron_values": neuron_values,
            "acts": [a[pos].tolist() for a in acts]}


def trace_window(model, ids, out):
    """The residual-stream files of `probe trace` for one window."""
    os.makedirs(out, exist_ok=True)
    resid, acts = [], []
    model.forward(ids, acts=acts, resid=resid)
    for l, (pre, attn, post) in enumerate(resid):
        for name, a in (("resid_pre", pre), ("attn_out", attn), ("resid_post", post), ("ffn", acts[l])):
            np.save(os.path.join(out, f"{name}_{l}.npy"), a.astype(np.float32))
    json.dump([int(i) for i in ids], open(os.path.join(out, "ids.json"), "w"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--file", help="a UTF-8 text file instead of --text")
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--pos", type=int, default=-1)
    ap.add_argument("--target")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--trace-out")
    ap.add_argument("--ctx", type=int)
    a = ap.parse_args()
    model = GPT2(a.model)
    enc = encoder(a.model)
    bos = 0 if a.no_bos else 1
    text_ids = enc.encode(a.text if a.file is None else open(a.file, encoding="utf-8").read())
    if a.trace_out:
        ids = [EOT] * bos + text_ids
        ctx = a.ctx or model.P
        wins = windows(len(ids), ctx)
        if len(wins) == 1:
            trace_window(model, ids, a.trace_out)
            return
        os.makedirs(a.trace_out, exist_ok=True)
        json.dump(ids, open(os.path.join(a.trace_out, "ids.json"), "w"))
        json.dump([{"window": k, "dir": f"w{k}", "start": s, "len": n, "first_new": f}
                   for k, (s, n, f) in enumerate(wins)], open(os.path.join(a.trace_out, "windows.json"), "w"))
        for k, (s, n, _) in enumerate(wins):
            trace_window(model, ids[s:s + n], os.path.join(a.trace_out, f"w{k}"))
        return
    keep = min(len(text_ids), model.P - bos)
    ids = [EOT] * bos + text_ids[len(text_ids) - keep:]
    pos = a.pos + len(ids) if a.pos < 0 else a.pos
    if not 0 <= pos < len(ids):
        raise SystemExit(f"explain_reference: --pos {a.pos} outside the window of {len(ids)} tokens")
    target = None
    if a.target is not None:
        if a.target.startswith("#"):
            target = int(a.target[1:])
        else:
            t = enc.encode(a.target)
            if len(t) != 1:
                raise SystemExit(f"explain_reference: --target {a.target!r} is {len(t)} tokens")
            target = t[0]
    r = explain(model, ids, pos, target, a.top)
    r["args"] = {"text": a.text, "no_bos": a.no_bos, "pos": a.pos, "target": a.target, "top": a.top}
    text = json.dumps(r)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
