#!/usr/bin/python3
"""make_checkpoint.py — a random GPT-2 checkpoint in exact Hugging Face layout.

    scripts/make_checkpoint.py OUT_DIR [--layers 2 --embd 32 --heads 4 ...]

writes OUT_DIR/config.json (like transformers' GPT2Config.to_json), OUT_DIR/
model.safetensors (written byte by byte per the safetensors format, with the
h.N.attn.bias buffers [1,1,P,P] like HF), and copies vocab.json + merges.txt
from models/gpt2-tokenizer (also for --vocab < 50257: ids-only models).

Weights are scaled so activations stay O(1) (neither saturated nor vanishing)
and LayerNorm weights and biases are non-trivial, so that a bug in any part of
a forward pass shows. Values are drawn in float32 and rounded to --dtype;
--sums FILE writes a JSON of per-tensor statistics of the values as stored
(decoded to float64), for tests to check the loader against.

Only numpy is needed (no torch), so the file format is written independently
of the reader under test.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(REPO, "models", "gpt2-tokenizer")


def to_bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even (as torch does)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((b >> 16) & 1) + 0x7FFF
    return ((b + rounding) >> 16).astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def encode(x, dtype):
    """Returns (raw little-endian bytes, the stored values decoded to float32)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "F32":
        return x.astype("<f4").tobytes(), x
    if dtype == "F16":
        h = x.astype("<f2")
        return h.tobytes(), h.astype(np.float32)
    if dtype == "BF16":
        bits = to_bf16_bits(x)
        return bits.astype("<u2").tobytes(), bf16_bits_to_f32(bits)
    raise ValueError(dtype)


def gpt2_tensors(a, rng):
    """Ordered dict name -> float32 array (no prefix), HF GPT2LMHeadModel keys."""
    C, F, P, V, L = a.embd, a.inner or 4 * a.embd, a.positions, a.vocab, a.layers
    t = {}

    def randn(*shape, std=1.0):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    # Embeddings: std 3/sqrt(C) keeps tied logits O(3) for any width.
    t["wte.weight"] = randn(V, C, std=3.0 / np.sqrt(C))
    t["wpe.weight"] = randn(P, C, std=1.0 / np.sqrt(C))
    for i in range(L):
        h = f"h.{i}."
        t[h + "ln_1.weight"] = 1.0 + randn(C, std=0.1)
        t[h + "ln_1.bias"] = randn(C, std=0.1)
        t[h + "attn.c_attn.weight"] = randn(C, 3 * C, std=1.0 / np.sqrt(C))
        t[h + "attn.c_attn.bias"] = randn(3 * C, std=0.1)
        t[h + "attn.c_proj.weight"] = randn(C, C, std=1.0 / np.sqrt(C))
        t[h + "attn.c_proj.bias"] = randn(C, std=0.1)
        t[h + "ln_2.weight"] = 1.0 + randn(C, std=0.1)
        t[h + "ln_2.bias"] = randn(C, std=0.1)
        t[h + "mlp.c_fc.weight"] = randn(C, F, std=1.0 / np.sqrt(C))
        t[h + "mlp.c_fc.bias"] = randn(F, std=0.1)
        t[h + "mlp.c_proj.weight"] = randn(F, C, std=1.0 / np.sqrt(F))
        t[h + "mlp.c_proj.bias"] = randn(C, std=0.1)
    t["ln_f.weight"] = 1.0 + randn(C, std=0.1)
    t["ln_f.bias"] = randn(C, std=0.1)
    if a.lm_head:
        t["lm_head.weight"] = randn(V, C, std=3.0 / np.sqrt(C))
    return t


def write_safetensors(path, entries):
    """entries: list of (name, dtype_name, shape, raw bytes), written in order.
    Header: JSON padded with spaces to a multiple of 8 (as safetensors does)."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dt, shape, raw in entries:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, _, raw in entries:
            f.write(raw)


def config_json(a):
    return {
        "activation_function": a.act,
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": a.eps,
        "model_type": "gpt2",
        "n_ctx": a.positions,
        "n_embd": a.embd,
        "n_head": a.heads,
        "n_inner": a.inner,  # None -> null = 4 * n_embd
        "n_layer": a.layers,
        "n_positions": a.positions,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": not a.lm_head,
        "vocab_size": a.vocab,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("out")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embd", type=int, default=32)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--inner", type=int, default=None, help="n_inner (default: null = 4*embd)")
    p.add_argument("--positions", type=int, default=64)
    p.add_argument("--vocab", "--vocab-size", dest="vocab", type=int, default=50257)
    p.add_argument("--act", default="gelu_new")
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    p.add_argument("--prefix", action="store_true", help='keys start with "transformer."')
    p.add_argument("--lm-head", action="store_true", help="write an untied lm_head.weight")
    p.add_argument("--no-buffers", action="store_true", help="omit the h.N.attn.bias buffers")
    p.add_argument("--sums", help="write per-tensor statistics of the stored values to this JSON file")
    a = p.parse_args()
    if a.embd % a.heads:
        sys.exit("make_checkpoint: --embd must be divisible by --heads")

    rng = np.random.default_rng(a.seed)
    tensors = gpt2_tensors(a, rng)
    os.makedirs(a.out, exist_ok=True)

    entries, stats = [], {}
    P = a.positions
    for name, x in tensors.items():
        raw, stored = encode(x, a.dtype)
        key = name if name == "lm_head.weight" or not a.prefix else "transformer." + name
        entries.append((key, a.dtype, x.shape, raw))
        flat = stored.astype(np.float64).ravel()
        stats[name] = {
            "shape": list(x.shape),
            "sum": float(flat.sum()),
            "abs_sum": float(np.abs(flat).sum()),
            "first": [float(v) for v in flat[:4]],
            "last": float(flat[-1]),
        }
        if name.endswith("ln_1.bias") and not a.no_buffers:
            # HF saves the causal-mask buffer of each attention block; the
            # loader must skip it. Written right after ln_1 like a state_dict.
            layer = name.split(".")[1]
            mask = np.tril(np.ones((P, P), dtype=np.float32)).reshape(1, 1, P, P)
            bkey = ("transformer." if a.prefix else "") + f"h.{layer}.attn.bias"
            braw, _ = encode(mask, a.dtype)
            entries.append((bkey, a.dtype, mask.shape, braw))
    write_safetensors(os.path.join(a.out, "model.safetensors"), entries)

    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config_json(a), f, indent=2, sort_keys=True)
        f.write("\n")
    for fn in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, fn), os.path.join(a.out, fn))
    if a.sums:
        with open(a.sums, "w") as f:
            json.dump({"dtype": a.dtype, "prefix": a.prefix, "tied": not a.lm_head, "tensors": stats}, f, indent=1)
            f.write("\n")
    n = sum(x.size for x in tensors.values())
    print(f"make_checkpoint: wrote {a.out} ({n:,} parameters, {a.dtype})")


if __name__ == "__main__":
    main()
