#!/usr/bin/python3
"""bench_peer.py — the PyTorch peer of `make bench`: what an interpretability
user runs today to get GPT-2's FFN activations (TransformerLens
blocks.L.mlp.hook_post, or hand-written forward hooks), on the same
checkpoint and the same windows as `probe record`.

    scripts/bench/bench_peer.py MODEL_DIR WINDOWS          # timing
    scripts/bench/bench_peer.py MODEL_DIR WINDOWS --check TRACE_DIR

MODEL_DIR is a Hugging Face GPT-2 directory (config.json, model.safetensors);
WINDOWS is the file scripts/bench/bench_forward.c writes (int32 records: len,
owned, ids[len]). A faithful GPT-2 (GPT2LMHeadModel's transformer, stopping
after ln_f: no logits, like probe's forward with logits=NULL) in float32 under
torch.inference_mode() with torch.set_num_threads(os.cpu_count()). Weights are
read from the safetensors file (by scripts/reference/gpt2_ref.py: the
`safetensors` package is not installed) straight into contiguous tensors in
HF's Conv1D orientation [in x out], used with torch.addmm exactly as HF's
Conv1D does. Attention is the standard batched-heads form (torch 1.13 has no
scaled_dot_product_attention): one baddbmm with a precomputed additive causal
mask, softmax, one bmm.

Capture: a forward hook on every layer's activation module (the hook_post
point) copies the [T x n_inner] post-activation into a preallocated CPU NumPy
array per layer, as a user collecting activations would.

Timing: the first window is run once untimed (warm-up), then every window is
timed; prints "windows W tokens N owned O seconds S tokens_per_s R" with
R = O / S, the same line as bench_forward.

--check TRACE_DIR runs the first window and compares each layer's activation
with TRACE_DIR/ffn_L.npy written by `probe trace --ids` on that window: max
abs error over max abs value per layer; exits 1 when any exceeds 1e-4.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from gpt2_ref import read_safetensors  # noqa: E402


def load_safetensors(path):
    """name -> float32 torch tensor (own copy, contiguous), without the
    "transformer." prefix: gpt2_ref.read_safetensors (F32/F16/BF16)."""
    return {k: torch.from_numpy(v) for k, v in read_safetensors(path, np.float32).items()}


class Conv1D(nn.Module):
    """HF's Conv1D: y = x @ W + b with W [in x out]."""

    def __init__(self, w, b):
        super().__init__()
        self.weight = nn.Parameter(w.contiguous(), requires_grad=False)
        self.bias = nn.Parameter(b.contiguous(), requires_grad=False)

    def forward(self, x):
        return torch.addmm(self.bias, x, self.weight)


class Activation(nn.Module):
    """The hook point blocks.L.mlp.hook_post: its output is the post-activation."""

    def __init__(self, name):
        super().__init__()
        if name == "gelu_new":
            self.fn = lambda x: F.gelu(x, approximate="tanh")
        elif name == "gelu":
            self.fn = F.gelu
        elif name == "relu":
            self.fn = F.relu
        else:
            raise SystemExit(f"bench_peer: unsupported activation {name}")

    def forward(self, x):
        return self.fn(x)


class Block(nn.Module):
    def __init__(self, p, i, cfg, mask):
        super().__init__()
        h = f"h.{i}."
        self.C, self.NH, self.eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
        self.ln1 = (p[h + "ln_1.weight"], p[h + "ln_1.bias"])
        self.ln2 = (p[h + "ln_2.weight"], p[h + "ln_2.bias"])
        self.c_attn = Conv1D(p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"])
        self.attn_proj = Conv1D(p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"])
        self.c_fc = Conv1D(p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"])
        self.act = Activation(cfg.get("activation_function", "gelu_new"))
        self.mlp_proj = Conv1D(p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
        self.mask = mask  # [P x P] additive: 0 on and below the diagonal, -inf above
        self.scale = 1.0 / math.sqrt(self.C // self.NH)

    def forward(self, x):
        T, C, NH = x.shape[0], self.C, self.NH
        HS = C // NH
        a = F.layer_norm(x, (C,), self.ln1[0], self.ln1[1], self.eps)
        q, k, v = self.c_attn(a).split(C, dim=1)
        q = q.view(T, NH, HS).transpose(0, 1)  # [NH, T, HS]
        k = k.view(T, NH, HS).transpose(0, 1)
        v = v.view(T, NH, HS).transpose(0, 1)
        att = torch.baddbmm(self.mask[:T, :T], q, k.transpose(1, 2), alpha=self.scale)  # [NH, T, T]
        att = torch.softmax(att, dim=-1)
        y = torch.bmm(att, v).transpose(0, 1).reshape(T, C)
        x = x + self.attn_proj(y)
        m = F.layer_norm(x, (C,), self.ln2[0], self.ln2[1], self.eps)
        return x + self.mlp_proj(self.act(self.c_fc(m)))


class GPT2(nn.Module):
    """GPT2LMHeadModel's transformer up to ln_f (no lm_head)."""

    def __init__(self, p, cfg):
        super().__init__()
        P = cfg["n_positions"]
        mask = torch.full((P, P), float("-inf")).triu_(1)
        self.wte, self.wpe = p["wte.weight"], p["wpe.weight"]
        self.blocks = nn.ModuleList(Block(p, i, cfg, mask) for i in range(cfg["n_layer"]))
        self.lnf = (p["ln_f.weight"], p["ln_f.bias"])
        self.eps = cfg["layer_norm_epsilon"]

    def forward(self, ids):
        T = ids.shape[0]
        x = self.wte[ids] + self.wpe[:T]
        for b in self.blocks:
            x = b(x)
        return F.layer_norm(x, (x.shape[1],), self.lnf[0], self.lnf[1], self.eps)


def read_windows(path):
    data = np.fromfile(path, dtype="<i4")
    out, i = [], 0
    while i < len(data):
        n, owned = int(data[i]), int(data[i + 1])
        out.append((torch.from_numpy(data[i + 2:i + 2 + n].astype(np.int64)), owned))
        i += 2 + n
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("windows")
    ap.add_argument("--check", metavar="TRACE_DIR")
    a = ap.parse_args()

    torch.set_num_threads(os.cpu_count())
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    cfg["n_inner"] = cfg.get("n_inner") or 4 * cfg["n_embd"]
    model = GPT2(load_safetensors(os.path.join(a.model, "model.safetensors")), cfg).eval()
    windows = read_windows(a.windows)

    # Capture: every layer's post-activation copied out to preallocated NumPy.
    P, Fn, L = cfg["n_positions"], cfg["n_inner"], cfg["n_layer"]
    acts = [np.empty((P, Fn), dtype=np.float32) for _ in range(L)]
    views = [torch.from_numpy(x) for x in acts]

    def make_hook(layer):
        def hook(module, inputs, output):
            views[layer][: output.shape[0]].copy_(output)
        return hook

    for i, b in enumerate(model.blocks):
        b.act.register_forward_hook(make_hook(i))

    with torch.inference_mode():
        model(windows[0][0])  # warm-up, untimed
        if a.check:
            T = windows[0][0].shape[0]
            worst = 0.0
            for layer in range(L):
                ref = np.load(os.path.join(a.check, f"ffn_{layer}.npy"))
                if ref.shape != (T, Fn):
                    raise SystemExit(f"bench_peer: ffn_{layer}.npy has shape {ref.shape}, want {(T, Fn)}")
                rel = float(np.abs(acts[layer][:T] - ref).max() / np.abs(ref).max())
                worst = max(worst, rel)
                print(f"check layer {layer} max_rel_err {rel:.3e}")
            print(f"check worst max_rel_err {worst:.3e} ({'ok' if worst <= 1e-4 else 'FAIL'}, tolerance 1e-4)")
            return 0 if worst <= 1e-4 else 1
        tokens = owned = 0
        t0 = time.perf_counter()
        for ids, own in windows:
            model(ids)
            tokens += ids.shape[0]
            owned += own
        secs = time.perf_counter() - t0
    print(f"windows {len(windows)} tokens {tokens} owned {owned} seconds {secs:.4f} "
          f"tokens_per_s {owned / secs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
