#!/usr/bin/python3
"""kv_reference.py — float64 NumPy reference of `probe kv`'s value projections
and key-value figures, checked against what probe stored.

    kv_reference.py --db probe.db --model DIR [--kv-run ID] [--tol 1e-4]

For every layer of the kv run (default: the latest) and both variants (raw
W_U.v, and ln_f: W_U.(gamma*v)), it recomputes independently of probe:
  - every neuron's value logits over the vocabulary, with vocabulary ids whose
    unembedding rows are identical collapsed into one entry (named by its
    smallest id, with the count of ids sharing it), and checks the stored
    value_tokens (promoted and suppressed, every rank): ids (a swap of two
    entries whose logits are within tolerance is accepted), counts, logits;
  - from the run's neuron_examples and tokens, each trigger's next token,
    and checks kv_neurons: the top-1 trigger's next token, the value's top
    token, agreement, the number of triggers, the median rank (rank = 1 + the
    ids with a strictly larger logit; near-ties may move a rank by a few ids,
    so ranks compare within 0.5% + 2), and kv_layers' agreement rate.
The shuffled baseline depends on probe's seeded permutation and is checked
only for being present and in range. Exit 0 when everything agrees, 1 with
the first disagreements, 2 when the check cannot run.
"""
import argparse
import os
import sqlite3
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_ref import GPT2  # noqa: E402


def distinct_rows(head):
    """(row of each id, representative id of each row, count of each row),
    rows numbered in order of their smallest id."""
    V = head.shape[0]
    keys = {}
    row = np.empty(V, dtype=np.int64)
    rep, count = [], []
    for v in range(V):
        k = head[v].tobytes()
        r = keys.get(k)
        if r is None:
            r = keys[k] = len(rep)
            rep.append(v)
            count.append(0)
        row[v] = r
        count[r] += 1
    return row, np.array(rep), np.array(count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--kv-run", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    db = sqlite3.connect(a.db)
    kv = db.execute("SELECT id, run_id, layers, triggers, model_checksum, distinct_rows FROM kv_runs"
                    + (" WHERE id = ?" if a.kv_run else " ORDER BY id DESC LIMIT 1"),
                    (a.kv_run,) if a.kv_run else ()).fetchone()
    if not kv:
        print("kv_reference: no kv run in", a.db)
        return 2
    kv_id, run_id, layers, N, checksum, distinct = kv
    layers = [int(x) for x in layers.strip("[]").split(",") if x.strip()]
    m = GPT2(a.model, np.float32)  # the model's own float32 values, computed below in float64
    head = m.head.astype(np.float32)
    row, rep, count = distinct_rows(head)
    D = len(rep)
    bad = []
    if D != distinct:
        bad.append(f"distinct rows: stored {distinct}, reference {D}")
    U = head[rep].astype(np.float64)  # [D x C]
    gamma = m.w["ln_f.weight"].astype(np.float64)
    # triggers' next tokens
    nxt = {}
    for layer, neuron, rank, nid in db.execute(
            "SELECT e.layer, e.neuron, e.rank, n.token_id FROM neuron_examples e JOIN tokens t ON t.id = e.token_row"
            " LEFT JOIN tokens n ON n.doc_id = t.doc_id AND n.pos = t.pos + 1"
            " WHERE e.run_id = ? AND e.rank <= ?", (run_id, N)):
        nxt.setdefault((layer, neuron), {})[rank] = nid
    worst_logit = 0.0
    checked = 0
    for layer in layers:
        V = m.w[f"h.{layer}.mlp.c_proj.weight"].astype(np.float64)  # [F x C]
        for variant in ("raw", "ln_f"):
            stored = {}
            for neuron, direction, rank, tid, cnt, logit in db.execute(
                    "SELECT neuron, direction, rank, token_id, ids_sharing, logit FROM value_tokens"
                    " WHERE model_checksum = ? AND layer = ? AND variant = ?", (checksum, layer, variant)):
                stored.setdefault((neuron, direction), {})[rank] = (tid, cnt, logit)
            kvn = {n: (nx, top, ag, trig, med) for n, nx, top, ag, trig, med in db.execute(
                "SELECT neuron, next_token_id, value_top_id, agree, triggers, median_rank FROM kv_neurons"
                " WHERE kv_run_id = ? AND layer = ? AND variant = ?", (kv_id, layer, variant))}
            agree_n = agree_k = 0
            for j0 in range(0, V.shape[0], 256):
                vb = V[j0:j0 + 256] * (gamma if variant == "ln_f" else 1.0)
                lg = vb @ U.T  # [b x D]
                for r in range(lg.shape[0]):
                    j = j0 + r
                    x = lg[r]
                    scale = max(1e-6, float(np.abs(x).max()))
                    for direction in ("promoted", "suppressed"):
                        ranks = stored.get((j, direction), {})
                        if not ranks:
                            bad.append(f"{layer}:{j} {variant} {direction}: no stored value tokens")
                            continue
                        order = np.argsort(-x if direction == "promoted" else x, kind="stable")
                        for rk in sorted(ranks):
                            tid, cnt, logit = ranks[rk]
                            ref_row = order[rk - 1]
                            got_row = row[tid] if 0 <= tid < len(row) else -1
                            err = abs(logit - x[ref_row]) / scale
                            worst_logit = max(worst_logit, err)
                            if got_row != ref_row and (got_row < 0 or abs(x[got_row] - x[ref_row]) > a.tol * scale):
                                bad.append(f"{layer}:{j} {variant} {direction} rank {rk}: stored id {tid}, reference "
                                           f"id {rep[ref_row]} ({x[ref_row]:.6g} vs {x[got_row] if got_row >= 0 else 'nan'})")
                            elif got_row >= 0 and cnt != count[got_row]:
                                bad.append(f"{layer}:{j} {variant} {direction} rank {rk}: {cnt} ids sharing, "
                                           f"reference {count[got_row]}")
                            elif err > a.tol:
                                bad.append(f"{layer}:{j} {variant} {direction} rank {rk}: logit {logit:.6g} vs "
                                           f"{x[ref_row]:.6g}")
                            checked += 1
                    # key-value figures of the neuron
                    k = kvn.get(j)
                    if k is None:
                        bad.append(f"{layer}:{j} {variant}: no kv_neurons row")
                        continue
                    trig = nxt.get((layer, j), {})
                    ids = [trig[i] for i in sorted(trig) if trig[i] is not None]
                    top_row = int(np.argmax(x))  # first of equal maxima = smallest representative
                    if rep[top_row] != k[1] and abs(x[row[k[1]]] - x[top_row]) > a.tol * scale:
                        bad.append(f"{layer}:{j} {variant}: value top {k[1]}, reference {rep[top_row]}")
                    n1 = trig.get(1)
                    if (k[0] if k[0] is not None else None) != n1:
                        bad.append(f"{layer}:{j} {variant}: next token {k[0]}, reference {n1}")
                    if n1 is not None:
                        ref_agree = int(row[n1] == top_row)
                        agree_n += 1
                        agree_k += ref_agree
                        if k[2] != ref_agree and abs(x[row[n1]] - x[top_row]) > a.tol * scale:
                            bad.append(f"{layer}:{j} {variant}: agree {k[2]}, reference {ref_agree}")
                    if k[3] != len(ids):
                        bad.append(f"{layer}:{j} {variant}: {k[3]} triggers, reference {len(ids)}")
                    if ids:
                        cnt_sorted = count  # ids per row
                        rk = [1 + int(cnt_sorted[x > x[row[t]]].sum()) for t in ids]
                        med = float(np.median(rk))
                        if k[4] is None or abs(k[4] - med) > 0.005 * med + 2:
                            bad.append(f"{layer}:{j} {variant}: median rank {k[4]}, reference {med}")
            lay = db.execute("SELECT agreement, neurons, shuffled_agreement, shuffled_mean_rank FROM kv_layers"
                             " WHERE kv_run_id = ? AND layer = ? AND variant = ?", (kv_id, layer, variant)).fetchone()
            if not lay:
                bad.append(f"layer {layer} {variant}: no kv_layers row")
            else:
                ref = agree_k / agree_n if agree_n else None
                if lay[1] != agree_n or (ref is not None and abs(lay[0] - ref) > 2.0 / max(agree_n, 1)):
                    bad.append(f"layer {layer} {variant}: agreement {lay[0]} over {lay[1]}, reference {ref} over "
                               f"{agree_n}")
                if lay[2] is None or not (0 <= lay[2] <= 1) or lay[3] is None or lay[3] < 1:
                    bad.append(f"layer {layer} {variant}: shuffled baseline missing or out of range: {lay[2:]}")
    print(f"kv_reference: kv run {kv_id}, layers {layers}, {D} distinct vocabulary rows, {checked} value tokens "
          f"checked, worst logit error {worst_logit:.2e} (of the neuron's largest |logit|)")
    if bad:
        print(f"{len(bad)} disagreements; the first:")
        for b in bad[:10]:
            print("  " + b)
        return 1
    print("all agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
