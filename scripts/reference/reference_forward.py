#!/usr/bin/python3
"""Independent reference for `probe trace`: a float64 GPT-2 forward pass.

Reads a Hugging Face model directory and runs the forward pass of
gpt2_ref.py (NumPy, no code shared with probe) with the same interventions,
and writes the same files as `probe trace`: ffn_L.npy, logits.npy, loss.npy,
ids.json.

    /usr/bin/python3 scripts/reference/reference_forward.py --model DIR --ids ids.json \
        --out ref/ [--no-ffn] [--no-ffn-layers 3,5] [--zero 3:100] [--set 5:7=1.5]

Computed in float64, then stored as float32, so probe's float32 result can be
compared against it with a relative tolerance.
"""
import argparse
import json
import os

import numpy as np

from gpt2_ref import GPT2, next_token_loss, parse_edits, parse_layers


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
    model = GPT2(a.model)
    ids = json.load(open(a.ids))
    remove = set(range(model.L)) if a.no_ffn else set()
    if a.no_ffn_layers:
        remove |= set(parse_layers(a.no_ffn_layers))
    edits = (parse_edits(a.zero, 0.0) if a.zero else []) + (parse_edits(a.set) if a.set else [])
    ffn = []
    logits = model.forward(ids, remove, edits, acts=ffn)
    loss = next_token_loss(logits, ids)
    os.makedirs(a.out, exist_ok=True)
    for l, f in enumerate(ffn):
        np.save(os.path.join(a.out, f"ffn_{l}.npy"), f.astype(np.float32))
    np.save(os.path.join(a.out, "logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(a.out, "loss.npy"), loss.astype(np.float32))
    json.dump(ids, open(os.path.join(a.out, "ids.json"), "w"))


if __name__ == "__main__":
    main()
