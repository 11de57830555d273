#!/usr/bin/python3
"""Independent reference for `probe trace`: a float64 GPT-2 forward pass.

Reads a Hugging Face model directory with its own safetensors parser (json +
numpy, no code shared with probe), runs the same interventions, and writes
the same files as `probe trace`: ffn_L.npy, logits.npy, loss.npy, ids.json.

    /usr/bin/python3 scripts/reference/reference_forward.py --model DIR --ids ids.json \
        --out ref/ [--no-ffn] [--no-ffn-layers 3,5] [--zero 3:100] [--set 5:7=1.5]

Computed in float64 with torch, then stored as float32, so probe's float32
result can be compared against it with a relative tolerance.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = data[b:e]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.tensor(arr.astype(np.float64).reshape(info["shape"]))
    return out


def parse_layers(spec):
    out = set()
    for item in spec.split(","):
        if "-" in item:
            a, b = item.split("-")
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(item))
    return out


def parse_edits(spec, default):
    edits = []
    for item in spec.split(","):
        if "=" in item:
            ln, v = item.split("=")
            value = float(v)
        else:
            ln, value = item, default
        l, n = ln.split(":")
        edits.append((int(l), int(n), value))
    return edits


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(cfg, w, ids, remove=(), edits=()):
    L, C, NH = cfg["n_layer"], cfg["n_embd"], cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act_name = cfg.get("activation_function", "gelu_new")
    act = {"gelu_new": gelu_new, "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
           "relu": torch.relu}[act_name]
    p = "transformer." if "transformer.wte.weight" in w else ""
    g = lambda k: w[p + k]
    T = len(ids)
    ids_t = torch.tensor(ids)
    x = g("wte.weight")[ids_t] + g("wpe.weight")[:T]
    ln = lambda x, name: torch.nn.functional.layer_norm(x, (C,), g(name + ".weight"), g(name + ".bias"), eps)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    ffn = []
    for l in range(L):
        h = f"h.{l}."
        a = ln(x, h + "ln_1") @ g(h + "attn.c_attn.weight") + g(h + "attn.c_attn.bias")
        q, k, v = a.split(C, dim=1)
        hs = C // NH
        q = q.view(T, NH, hs).transpose(0, 1)
        k = k.view(T, NH, hs).transpose(0, 1)
        v = v.view(T, NH, hs).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hs)
        s = s.masked_fill(mask, float("-inf")).softmax(-1)
        o = (s @ v).transpose(0, 1).reshape(T, C)
        x = x + o @ g(h + "attn.c_proj.weight") + g(h + "attn.c_proj.bias")
        f = act(ln(x, h + "ln_2") @ g(h + "mlp.c_fc.weight") + g(h + "mlp.c_fc.bias"))
        for (el, en, ev) in edits:
            if el == l:
                f[:, en] = ev
        ffn.append(f)
        if l not in remove:
            x = x + f @ g(h + "mlp.c_proj.weight") + g(h + "mlp.c_proj.bias")
    x = ln(x, "ln_f")
    head = w["lm_head.weight"] if "lm_head.weight" in w else g("wte.weight")
    logits = x @ head.T
    logp = torch.log_softmax(logits, -1)
    loss = -logp[torch.arange(T - 1), ids_t[1:]]
    return ffn, logits, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-ffn", action="store_true")
    ap.add_argument("--no-ffn-layers")
    ap.add_argument("--zero")
    ap.add_argument("--set")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    w = load_safetensors(os.path.join(a.model, "model.safetensors"))
    ids = json.load(open(a.ids))
    remove = set(range(cfg["n_layer"])) if a.no_ffn else set()
    if a.no_ffn_layers:
        remove |= parse_layers(a.no_ffn_layers)
    edits = (parse_edits(a.zero, 0.0) if a.zero else []) + (parse_edits(a.set, None) if a.set else [])
    with torch.no_grad():
        ffn, logits, loss = forward(cfg, w, ids, remove, edits)
    os.makedirs(a.out, exist_ok=True)
    for l, f in enumerate(ffn):
        np.save(os.path.join(a.out, f"ffn_{l}.npy"), f.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "loss.npy"), loss.numpy().astype(np.float32))
    json.dump(ids, open(os.path.join(a.out, "ids.json"), "w"))


if __name__ == "__main__":
    main()
