#!/usr/bin/python3
"""plot_training_curve.py — the demo model's training curve as a small PNG.

    /usr/bin/python3 scripts/model/plot_training_curve.py [models/demo]

Reads the "Training curve" table of MODEL/README.md (written by
train_demo_model.py: step, tokens, train loss, validation losses, held-out
loss) and writes MODEL/training_curve.png: train, in-domain validation and
held-out (Moby Dick) loss against tokens seen. Needs Debian's
python3-matplotlib (only this script does; probe never reads the PNG).
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curve(readme):
    rows, on = [], False
    for line in open(readme, encoding="utf-8"):
        if line.startswith("## Training curve"):
            on = True
            continue
        if on and line.startswith("## "):
            break
        if on and line.startswith("| ") and line[2:3].isdigit():
            f = [x.strip() for x in line.strip().strip("|").split("|")]
            rows.append([float(x) for x in f])
    return rows


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "models", "demo")
    rows = curve(os.path.join(model, "README.md"))
    if not rows:
        sys.exit("plot_training_curve: no training curve table in %s/README.md" % model)
    tok = [r[1] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(tok, [r[2] for r in rows], label="train (mean of the last steps)", lw=1.2)
    ax.plot(tok, [r[3] for r in rows], label="validation (last tokens of each training book)", lw=1.2)
    ax.plot(tok, [r[5] for r in rows], label="held out: Moby Dick", lw=1.2)
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    import json
    cfg = json.load(open(os.path.join(model, "config.json")))
    ax.set_title("probe demo model (%d layers x %d wide): training curve" % (cfg["n_layer"], cfg["n_embd"]),
                 fontsize=9)
    fig.tight_layout()
    out = os.path.join(model, "training_curve.png")
    fig.savefig(out)
    print("wrote", out)


if __name__ == "__main__":
    main()
