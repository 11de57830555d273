#!/usr/bin/python3
"""bench_run.py — the driver of `make bench` (called by scripts/bench/bench.sh after
it has built ./probe, bench-cache/sgemm_peak and bench-cache/bench_forward).

In one run on this machine, with everything cached in bench-cache/:
  1. a GPT-2-small-shaped random F32 checkpoint (scripts/fixtures/make_checkpoint.py:
     12 layers, 768 wide, 12 heads, n_inner 3072, 1024 positions, 50257 ids),
     and an English corpus of BENCH_WINDOWS (16) documents of 1023 tokens, so
     that with <|endoftext|> each is exactly one window of 1024 = --ctx;
  2. OpenBLAS sgemm GFLOPS at GPT-2's four matmul shapes (best of N), and the
     FLOP-limited tokens/s ceiling of a forward pass that stops before logits;
  3. ./probe record (fresh database each run, --quiet, --ctx 1024, otherwise
     default options): whole-process wall time, so model load, tokenization and
     every database write count against it;
     bench_forward: the same windows through probe's model_forward with all 12
     layers captured to a no-op observer and no logits (load excluded, one
     warm-up window untimed);
  4. the PyTorch peer (scripts/bench/bench_peer.py) on the same windows, with hooks
     copying all 12 FFN post-activations to NumPy (load excluded, one warm-up
     window untimed), and a check that it computes what probe computes
     (probe trace on the first window vs the peer, max relative error);
  5. peak RSS of each process (os.wait4 rusage of that very child);
  6. a table, then the closing line
     record/peer=X.XX forward/ceiling=Y.YY db_overhead=Z.ZZ rss/weights=W.WW concept/record=C.CC ablate/forward=A.AA

Runs are interleaved (forward, record, peer; forward, record, peer; ...) and
medians reported; record/peer and db_overhead are medians of the ratios
within each round. Environment: BENCH_RUNS (default 5), BENCH_WINDOWS (16),
BENCH_SGEMM_REPS (10), BENCH_QUICK=1 (smoke test: 2 windows, 1 run, 3 reps).
Exit status 1 when any part failed (its figures print as n/a).
"""
import json
import os
import re
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from gpt2_bpe import vocab_bytes  # noqa: E402  (standard library only)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CACHE = os.path.join(REPO, "bench-cache")
PROBE = os.path.join(REPO, "probe")
TOKDIR = os.path.join(REPO, "models", "gpt2-tokenizer")  # GPT-2's vocab.json, merges.txt
PY = "/usr/bin/python3"

# GPT-2 small
L, C, NH, F, P, V = 12, 768, 12, 3072, 1024, 50257
CTX = 1024
CONCEPT_WORDS = "said,was,were,had"  # ~2% of the bench corpus's tokens


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


QUICK = os.environ.get("BENCH_QUICK") not in (None, "", "0")
RUNS = env_int("BENCH_RUNS", 1 if QUICK else 5)
NWIN = env_int("BENCH_WINDOWS", 2 if QUICK else 16)
REPS = env_int("BENCH_SGEMM_REPS", 3 if QUICK else 10)


def log(msg):
    print(msg, flush=True)


def measure(cmd, cwd=REPO):
    """Runs cmd; returns (rc, wall seconds, peak RSS bytes, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (p.returncode, wall, ru.ru_maxrss * 1024,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def parse_rate(stdout):
    """The 'windows W tokens N owned O seconds S tokens_per_s R' line."""
    for line in stdout.splitlines():
        f = line.split()
        if len(f) == 10 and f[0] == "windows":
            return {f[i]: float(f[i + 1]) for i in range(0, 10, 2)}
    return None


# ---- 1. checkpoint and corpus ---------------------------------------------

def checkpoint():
    d = os.path.join(CACHE, "gpt2-small-f32")
    args = ["--layers", str(L), "--embd", str(C), "--heads", str(NH), "--positions", str(P),
            "--vocab", str(V), "--dtype", "F32", "--seed", "1234"]
    stamp = os.path.join(d, "bench-stamp.json")
    try:
        with open(stamp) as f:
            if json.load(f) == args:
                return d
    except (OSError, ValueError):
        pass
    log(f"generating {d} (once; cached)")
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run([PY, os.path.join(REPO, "scripts", "fixtures", "make_checkpoint.py"), d] + args, check=True)
    with open(stamp, "w") as f:
        json.dump(args, f)
    return d


def english_text():
    src = os.path.join(REPO, "examples", "demo_corpus.txt")
    if os.path.exists(src):
        with open(src, encoding="utf-8", errors="replace") as f:
            return f.read(), src
    parts = []
    lic = "/usr/share/common-licenses"
    for name in sorted(os.listdir(lic)):
        p = os.path.join(lic, name)
        if os.path.isfile(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    return "\n\n".join(parts), lic


def tokenize(text):
    """GPT-2 token ids of text, by `probe tokenize` (the project's own BPE)."""
    p = subprocess.run([PROBE, "tokenize", "--model", TOKDIR, "-"], input=text.encode("utf-8"),
                       stdout=subprocess.PIPE, check=True)
    return json.loads(p.stdout)


def corpus(n_docs, path=None):
    """n_docs paragraphs (one line each, blank line between), each 1023 tokens
    or just under (cut at a word boundary), so that <|endoftext|> + document
    is one window of at most 1024 tokens. Tokenized by ./probe tokenize."""
    path = path or os.path.join(CACHE, f"corpus-{n_docs}.txt")
    if os.path.exists(path):
        return path
    text, src = english_text()
    words = text.split()
    # Each word's token count with its leading space, in one call: GPT-2's
    # pre-tokenizer attaches a single space to the word after it and never
    # splits across whitespace, so in " w1 w2 ..." each word's tokens are those
    # of " " + w alone, and exactly the first of them begins with a space.
    tb = vocab_bytes(TOKDIR)
    counts = []
    for t in tokenize(" " + " ".join(words)):
        if tb[t][:1] == b" ":
            counts.append(0)
        counts[-1] += 1
    if len(counts) != len(words):
        raise SystemExit(f"bench: {len(words)} words but {len(counts)} word starts in the tokens")
    budget = CTX - 1
    docs, i = [], 0

    while len(docs) < n_docs:
        doc = []
        n = 0
        while True:
            k = counts[i % len(words)]  # the text repeats when it runs out
            if n + k > budget:
                break
            doc.append(words[i % len(words)])
            n += k
            i += 1
        while len(tokenize(" ".join(doc))) > budget:  # the first word has no leading space
            doc.pop()
            i -= 1
        docs.append(" ".join(doc))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n\n".join(docs) + "\n")
    os.replace(path + ".tmp", path)
    log(f"corpus {path}: {n_docs} documents from {src}")
    return path


def weights_bytes(model_dir):
    """F32 bytes of the parameters (the attention-mask buffers excluded)."""
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    n = 0
    for name, info in header.items():
        if name == "__metadata__" or name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        k = 1
        for s in info["shape"]:
            k *= s
        n += k
    return 4 * n


# ---- 2. sgemm peak and ceiling --------------------------------------------

MATMULS = {  # name -> (K, N): [T x K] x [K x N] per layer
    "c_attn": (C, 3 * C),
    "attn.c_proj": (C, C),
    "c_fc": (C, F),
    "mlp.c_proj": (F, C),
}


def sgemm():
    rc, _, _, out, err = measure([os.path.join(CACHE, "sgemm_peak"), str(REPS)])
    if rc != 0:
        raise SystemExit(f"bench: sgemm_peak failed: {err.strip()}")
    rates, info = {}, []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "sgemm":
            rates[f[1]] = float(f[5])
        else:
            info.append(line)
    return rates, info


def window_flops(T):
    """(matmul FLOPs per name, attention FLOPs) of one window of T tokens.
    Matmuls: 2 * T * K * N per layer. Attention, causal: query t (1-based)
    scores t keys and mixes t values, 2*t*C FLOPs each (C = NH * HS), so
    sum_t 4*t*C = 4*C*T*(T+1)/2 per layer."""
    mm = {k: L * 2.0 * T * K * N for k, (K, N) in MATMULS.items()}
    return mm, L * 4.0 * C * T * (T + 1) / 2


# ---- 3-5. timed runs ------------------------------------------------------

def main():
    os.makedirs(CACHE, exist_ok=True)
    ckpt = checkpoint()
    corp = corpus(NWIN)
    wbytes = weights_bytes(ckpt)
    windows_bin = os.path.join(CACHE, f"windows-{NWIN}.bin")
    db = os.path.join(CACHE, "bench.db")
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    log(f"cpu: {cpu}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset: OpenBLAS picks)')}; "
        f"PROBE_THREADS={os.environ.get('PROBE_THREADS', '(unset: one per CPU)')}")
    log(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"runs {RUNS}, windows {NWIN} of <= {CTX}{' (QUICK smoke test)' if QUICK else ''}")

    rates, info = sgemm()
    for line in info:
        log(f"openblas {line}")

    cmds = {
        "forward": [os.path.join(CACHE, "bench_forward"), ckpt, corp, str(CTX), windows_bin],
        "record": [PROBE, "record", corp, "--model", ckpt, "--db", db, "--quiet", "--ctx", str(CTX)],
        "peer": [PY, os.path.join(REPO, "scripts", "bench", "bench_peer.py"), ckpt, windows_bin],
    }
    res = {k: [] for k in cmds}  # name -> [(tokens/s, wall, rss)]
    rounds = {k: [None] * RUNS for k in cmds}  # name -> per round (tokens/s, wall, rss) or None
    failed = {}
    owned = None
    for r in range(RUNS):
        if r > 0:  # sgemm again each round; the ceiling takes each shape's best
            more, _ = sgemm()
            rates = {k: max(v, more[k]) for k, v in rates.items()}
        for name, cmd in cmds.items():
            if name in failed:
                continue
            if name == "record":
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(db + suffix):
                        os.remove(db + suffix)
            rc, wall, rss, out, err = measure(cmd)
            if rc != 0:
                failed[name] = (err.strip() or out.strip()).splitlines()[-1:] or [f"exit {rc}"]
                log(f"run {r + 1} {name}: FAILED (exit {rc}): {failed[name][0]}")
                continue
            if name == "record":
                if not owned:
                    failed[name] = ["no token count (bench_forward failed)"]
                    continue
                rate = owned / wall
                detail = f"{wall:.2f} s wall (whole process)"
                m = re.search(r"([\d,]+) tokens in ([\d.]+) s", err + out)
                if m:
                    detail += f", its own summary: {m.group(1)} tokens in {m.group(2)} s"
                stored = sqlite3.connect(db).execute("SELECT count(*) FROM tokens").fetchone()[0]
                if stored != owned:
                    log(f"warning: record stored {stored} tokens, the bench counts {owned:.0f}")
            else:
                st = parse_rate(out)
                if st is None:
                    failed[name] = [f"no rate line in output: {out.strip()[-200:]}"]
                    log(f"run {r + 1} {name}: FAILED: {failed[name][0]}")
                    continue
                rate = st["tokens_per_s"]
                if name == "forward":
                    owned = st["owned"]
                detail = f"{st['seconds']:.2f} s timed, {wall:.2f} s wall"
            res[name].append((rate, wall, rss))
            rounds[name][r] = (rate, wall, rss)
            log(f"run {r + 1} {name:8s} {rate:9.1f} tokens/s  {detail}  peak RSS {rss / 2**20:.0f} MiB")

    # Concept ranking on the last round's database: an ad-hoc concept of
    # common past forms (~2% of the tokens), all layers and one layer, timed
    # against the record run of the same corpus.
    concept = {}
    if "record" not in failed and os.path.exists(db) and res["record"]:
        for scope, extra in (("all", []), ("layer", ["--layer", str(L // 2)])):
            walls = []
            for r in range(min(RUNS, 3)):
                rc, wall, rss, out, err = measure([PROBE, "top-neurons", "--db", db, "--model", ckpt, "--words",
                                                   CONCEPT_WORDS, "--quiet", "--json", "--limit", "1"] + extra)
                if rc != 0:
                    failed["concept"] = [(err.strip() or out.strip()).splitlines()[-1:] or [f"exit {rc}"]][0]
                    log(f"concept ranking ({scope}): FAILED (exit {rc}): {failed['concept'][0]}")
                    break
                j = json.loads(out)
                walls.append(wall)
                log(f"concept ranking ({'layer ' + extra[1] if extra else 'all layers'}) {wall:.2f} s wall: "
                    f"{j['concept_tokens']} of {j['tokens_scored']} tokens "
                    f"({100.0 * j['concept_tokens'] / j['tokens_scored']:.1f}%), "
                    f"{j['windows_replayed']} of {j['windows']} windows replayed")
            if walls:
                concept[scope] = statistics.median(walls)

    # probe kv on the same database: every neuron's value vector projected
    # through the unembedding (36,864 x 50,257 logits, both variants, about
    # 2 x 1.9 TFLOP) with the ranks of its triggers' next tokens.
    kv_wall = None
    if "record" not in failed and os.path.exists(db) and res["record"]:
        rc, wall, rss, out, err = measure([PROBE, "kv", "--db", db, "--model", ckpt, "--quiet", "--json"])
        if rc != 0:
            failed["kv"] = (err.strip() or out.strip()).splitlines()[-1:] or [f"exit {rc}"]
            log(f"kv: FAILED (exit {rc}): {failed['kv'][0]}")
        else:
            kv_wall = wall
            log(f"probe kv (all {L} layers x {F} neurons, raw and ln_f values, trigger ranks): {wall:.2f} s wall, "
                f"peak RSS {rss / 2**20:.0f} MiB")

    # ablate: each forward pass of a condition (and the shared baseline) needs
    # logits; the reference is bench_forward with logits on the same windows.
    # A condition's cost = ablate's own seconds / (conditions + 1 baseline)
    # over that forward pass's time (issue 17's target: <= 1.2).
    ablate_ratio = None
    if "forward" not in failed:
        env = dict(os.environ, BENCH_LOGITS="1")
        p = subprocess.run(cmds["forward"][:4], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           text=True)
        st = parse_rate(p.stdout) if p.returncode == 0 else None
        rc, wall, rss, out, err = measure([PROBE, "ablate", corp, "--model", ckpt, "--ctx", str(CTX), "--no-ffn",
                                           "--no-db", "--quiet", "--json"])
        if st and rc == 0:
            j = json.loads(out)
            per_pass = j["seconds"] / 2.0  # the baseline and one condition
            ablate_ratio = per_pass / st["seconds"]
            log(f"ablate --no-ffn: {j['seconds']:.2f} s for {j['tokens']} predicted tokens x 2 passes "
                f"({j['tokens'] / per_pass:.1f} tokens/s per pass); forward with logits "
                f"{st['tokens_per_s']:.1f} tokens/s ({st['seconds']:.2f} s); a pass costs {ablate_ratio:.2f} x "
                f"the forward with logits")
        else:
            log(f"ablate row: FAILED ({(err or p.stderr).strip()[-200:]})")
        # every neuron of the middle layer alone, estimated (attribution
        # patching: a forward with logits and a backward pass per window)
        rc, wall, rss, out, err = measure([PROBE, "ablate", corp, "--model", ckpt, "--ctx", str(CTX), "--sweep",
                                           "neurons", "--layer", str(L // 2), "--verify", "0", "--no-db", "--quiet",
                                           "--json"])
        if st and rc == 0:
            j = json.loads(out)
            sec = j["sweep"]["seconds"]
            log(f"ablate --sweep neurons --layer {L // 2}: all {F} neurons estimated in {sec:.2f} s "
                f"({j['tokens'] / sec:.1f} tokens/s), {sec / st['seconds']:.2f} x the forward with logits; "
                f"peak RSS {rss / 2**20:.0f} MiB")
        else:
            log(f"neuron sweep row: FAILED ({(err or '').strip()[-200:]})")

    # Does the peer compute what probe computes? probe trace on window 0.
    check = "not run"
    if "forward" not in failed and "peer" not in failed:
        data = np.fromfile(windows_bin, dtype="<i4")
        ids0 = data[2:2 + int(data[0])].tolist()
        ids_json = os.path.join(CACHE, "window0.json")
        with open(ids_json, "w") as f:
            json.dump(ids0, f)
        tdir = os.path.join(CACHE, "trace-window0")
        shutil.rmtree(tdir, ignore_errors=True)
        rc, _, _, out, err = measure([PROBE, "trace", "--ids", ids_json, "--out", tdir, "--model", ckpt])
        if rc != 0:
            check = f"probe trace failed: {err.strip()}"
        else:
            rc, _, _, out, err = measure(cmds["peer"] + ["--check", tdir])
            lines = out.strip().splitlines()
            check = lines[-1] if lines else err.strip()
            if rc != 0:
                failed["check"] = [check]
                log(out.strip())
        shutil.rmtree(tdir, ignore_errors=True)
    log(f"peer vs probe trace, FFN post-activations of window 0, all layers: {check}")

    # ---- 6. report ----
    peak = max(rates.values())
    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) if v else None
           for k, v in res.items()}
    T_list, own_list = [], []  # per window: tokens run, tokens recorded (owned)
    if os.path.exists(windows_bin):
        data = np.fromfile(windows_bin, dtype="<i4")
        i = 0
        while i < len(data):
            T_list.append(int(data[i]))
            own_list.append(int(data[i + 1]))
            i += 2 + int(data[i])
    if not T_list:
        T_list, own_list = [CTX] * NWIN, [CTX - 1] * NWIN
    flops = {k: 0.0 for k in MATMULS}
    attn = 0.0
    for T in T_list:
        mm, at = window_flops(T)
        for k in mm:
            flops[k] += mm[k]
        attn += at
    ntok, nown = sum(T_list), sum(own_list)
    total = sum(flops.values()) + attn
    # tokens/s count recorded tokens everywhere; the <|endoftext|> in front of
    # each document is run but not recorded, so its FLOPs are charged to them
    ceiling = peak * 1e9 / (total / nown)
    shaped = nown / (sum(flops[k] / (rates[k] * 1e9) for k in flops) + attn / (peak * 1e9))

    mm1 = 2 * L * sum(K * N for K, N in MATMULS.values())
    at1 = L * 4 * C * (CTX + 1) / 2
    log("")
    log("sgemm (OpenBLAS, M = 1024 rows, best of %d x %d rounds): %s GFLOPS; peak %.1f"
        % (REPS, RUNS, ", ".join(f"{k} [{1024}x{K}]x[{K}x{N}] {rates[k]:.1f}"
                           for k, (K, N) in MATMULS.items()), peak))
    log(f"FLOPs/token, forward up to ln_f (no logits), window of T tokens, causal:")
    log(f"  2 x {L} x ({C}x{3 * C} + {C}x{C} + {C}x{F} + {F}x{C})   matmuls   = {mm1 / 1e6:.2f} M")
    log(f"  + {L} x 4 x {C} x (T+1)/2                         attention = {at1 / 1e6:.2f} M at T = {CTX}")
    log(f"  = {(mm1 + at1) / 1e6:.2f} MFLOP/token at T = {CTX}; over these {len(T_list)} windows "
        f"({ntok} tokens, {nown} recorded) {total / ntok / 1e6:.2f} per token run, "
        f"{total / nown / 1e6:.2f} per token recorded")
    log(f"ceiling = sgemm peak / FLOPs per recorded token = {peak:.1f} GFLOPS / {total / nown / 1e6:.2f} MFLOP "
        f"= {ceiling:.0f} tokens/s (each matmul at its own shape's rate, attention at peak: "
        f"{shaped:.0f} tokens/s)")
    log("")
    log(f"{'':24s} {'tokens/s':>10s} {'wall s':>8s} {'peak RSS MiB':>13s}   "
        f"(medians of {RUNS}; tokens/s min-max)")
    labels = {"forward": "probe forward (no db)", "record": "probe record", "peer": "PyTorch peer + hooks"}
    for k in ("forward", "record", "peer"):
        if med[k]:
            lo, hi = min(x[0] for x in res[k]), max(x[0] for x in res[k])
            log(f"{labels[k]:24s} {med[k][0]:10.1f} {med[k][1]:8.2f} {med[k][2] / 2**20:13.0f}"
                f"   {lo:.1f}-{hi:.1f}")
        else:
            log(f"{labels[k]:24s} {'n/a':>10s}   failed: {failed.get(k, ['no runs'])[0]}")
    log(f"{'FLOP ceiling':24s} {ceiling:10.1f}")
    log(f"{'F32 weights':24s} {'':10s} {'':8s} {wbytes / 2**20:13.0f}")
    log("")

    def ratio(x):
        return "n/a" if x is None else f"{x:.2f}"

    # The ratios pair the runs of one round (forward, record, peer run back to
    # back) and take the median over rounds: the machine's speed drifts
    # between rounds, and a ratio within a round cancels most of that drift.
    def paired(a, b, f):
        xs = [f(ra[0], rb[0]) for ra, rb in zip(rounds[a], rounds[b]) if ra and rb]
        return statistics.median(xs) if xs else None

    fwd = med["forward"][0] if med["forward"] else None
    rec_wall = med["record"][1] if med["record"] else None
    if concept and rec_wall:
        log("concept ranking / record wall time: all layers %s, layer %d alone %s (median of %d)" % (
            ratio(concept.get("all", 0) / rec_wall if "all" in concept else None), L // 2,
            ratio(concept.get("layer", 0) / rec_wall if "layer" in concept else None), min(RUNS, 3)))
    log("record/peer=%s forward/ceiling=%s db_overhead=%s rss/weights=%s concept/record=%s ablate/forward=%s" % (
        ratio(paired("record", "peer", lambda r, p: r / p)),
        ratio(fwd / ceiling if fwd else None),
        ratio(paired("record", "forward", lambda r, f: 1 - r / f)),
        ratio(med["record"][2] / wbytes if med["record"] else None),
        ratio(concept["all"] / rec_wall if "all" in concept and rec_wall else None),
        ratio(ablate_ratio)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
