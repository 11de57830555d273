#!/usr/bin/python3
"""Train probe's bundled demo model: a small GPT-2 (HF GPT2LMHeadModel layout) on
public-domain English (Austen, World English Bible, King James Bible, and since issue 12
Spurgeon's Treasury of David, Matthew Henry's Concise Commentary, Bierce's Devil's
Dictionary; --books chooses), with Moby Dick held out and the last --val-tokens tokens
of each training book kept as an in-domain validation split. Writes
OUT/{config.json,model.safetensors,vocab.json,merges.txt,README.md,heldout_eval.json,
lr_schedule.json} (OUT defaults to models/demo) with no human step.

  scripts/model/extract_corpus.py                 # -> /work/train/corpus/*.txt
  scripts/model/train_demo_model.py --steps N [--deadline HH:MM [--time-schedule]] [--bf16] [--bench A,B]

Checkpoints go to WORK/ckpt.pt (every --ckpt-every steps; --resume continues) and
WORK/ckpt_best.pt (best validation loss, exported at the end when --patience stops early
or the last evaluation is worse).

Softmax trick (exact, not an approximation): the training books use K distinct GPT-2
ids. Training uses K output rows plus ONE shared row u standing for each of the
V-K never-seen ids, entered in the softmax with logit h.u + log(V-K). The exported
checkpoint is a plain 50257-row GPT-2 whose never-seen rows all equal u, so the
training softmax equals the exported model's full-vocabulary softmax exactly. All
reported held-out losses are recomputed from the exported weights over all 50257 ids.
"""
import argparse
import datetime
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))
from gpt2_bpe import Encoder  # noqa: E402

V = 50257
EOT = 50256
# the model card's first sanity check (issue 12): Genesis 1:3 is in the training text
SANITY_PROMPT = "And God said, Let there be"
SANITY_WANT = " light"
# name -> (what, Debian package); all written by scripts/model/extract_corpus.py
BOOKS = {
    "austen": ("Jane Austen's six novels", "r-cran-janeaustenr"),
    "web": ("World English Bible (with deuterocanon)", "sword-text-web"),
    "kjv": ("King James Bible", "bible-kjv-text"),
    "tdavid": ("C. H. Spurgeon, The Treasury of David (1869-1885)", "sword-comm-tdavid"),
    "mhcc": ("Matthew Henry's Concise Commentary", "sword-comm-mhcc"),
    "devil": ("Ambrose Bierce, The Devil's Dictionary (1911)", "dict-devil"),
}
TRAIN_BOOKS = list(BOOKS)  # --books overrides
OLD_BOOKS = ["austen", "web", "kjv"]  # the first demo model's training books
HELDOUT_FILE = os.path.join(ROOT, "examples", "heldout_mobydick.txt")


# ------------------------------------------------------------------ data
def load_tokens(corpus, cache, books):
    os.makedirs(cache, exist_ok=True)
    enc = None
    out = {}
    for name in books + ["mobydick"]:
        p = os.path.join(cache, name + ".npy")
        src = os.path.join(corpus, name + ".txt")
        if not os.path.exists(p) or os.path.getmtime(p) < os.path.getmtime(src):
            enc = enc or Encoder.load()
            t0 = time.time()
            ids = enc.encode(open(src, encoding="utf-8").read())
            np.save(p, np.array(ids, dtype=np.int32))
            log("tokenized %s: %d tokens in %.0fs" % (name, len(ids), time.time() - t0))
        out[name] = np.load(p)
    return out


def insert_para_eot(ids, p, rng):
    """Insert <|endoftext|> after a random fraction p of the paragraph breaks of a book's
    ids. A break between paragraphs ('\\n\\n' before a non-space) is the id pair 198 198
    in the GPT-2 BPE of the whole string; the EOT goes after it, so the text's ids are
    unchanged and the model also sees paragraphs that start a document, as `probe ablate`
    and `probe predict` present them (each paragraph after <|endoftext|>)."""
    if p <= 0:
        return ids
    brk = np.nonzero((ids[1:] == 198) & (ids[:-1] == 198))[0] + 2
    brk = brk[rng.random(len(brk)) < p]
    return np.insert(ids, brk, EOT)


def heldout_tokens():
    return np.array(Encoder.load().encode(open(HELDOUT_FILE, encoding="utf-8").read()), dtype=np.int64)


# ------------------------------------------------------------------ model
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2(torch.nn.Module):
    """GPT-2 with HF parameter names/orientation (Conv1D weights are [in, out]).
    Token embedding `emb` has n_rows rows (K seen ids + 1 shared unseen row during
    training, or 50257 for the exported model); `extra_logit` is added to the last
    row's logit (log(V-K) during training, None for the plain model)."""

    def __init__(self, cfg, n_rows, extra_logit=None):
        super().__init__()
        E, L, P = cfg["n_embd"], cfg["n_layer"], cfg["n_positions"]
        self.cfg = cfg
        self.extra_logit = extra_logit
        self.dropout = 0.0  # training only (embeddings, attention probabilities, residual branches)
        p = {}  # HF name -> Parameter (registered below with '.' -> '__')
        p["wte"] = torch.nn.Parameter(torch.empty(n_rows, E))
        p["wpe"] = torch.nn.Parameter(torch.empty(P, E))
        for i in range(L):
            for n, shape in (("ln_1.weight", [E]), ("ln_1.bias", [E]),
                             ("attn.c_attn.weight", [E, 3 * E]), ("attn.c_attn.bias", [3 * E]),
                             ("attn.c_proj.weight", [E, E]), ("attn.c_proj.bias", [E]),
                             ("ln_2.weight", [E]), ("ln_2.bias", [E]),
                             ("mlp.c_fc.weight", [E, 4 * E]), ("mlp.c_fc.bias", [4 * E]),
                             ("mlp.c_proj.weight", [4 * E, E]), ("mlp.c_proj.bias", [E])):
                p[key(i, n)] = torch.nn.Parameter(torch.empty(*shape))
        p["ln_f.weight"] = torch.nn.Parameter(torch.empty(E))
        p["ln_f.bias"] = torch.nn.Parameter(torch.empty(E))
        self.p = p
        for k, t in p.items():
            self.register_parameter(k.replace(".", "__"), t)
        self.register_buffer("mask", torch.tril(torch.ones(P, P, dtype=torch.bool)), persistent=False)

    def init_weights(self, gen):
        L = self.cfg["n_layer"]
        for k, t in self.p.items():
            with torch.no_grad():
                if "ln_" in k:
                    t.fill_(1.0 if k.endswith("weight") else 0.0)
                elif k.endswith("bias"):
                    t.zero_()
                elif k.endswith("c_proj.weight"):
                    t.normal_(0.0, 0.02 / math.sqrt(2 * L), generator=gen)
                else:
                    t.normal_(0.0, 0.02, generator=gen)

    def hidden(self, idx):
        cfg, p = self.cfg, self.p
        B, T = idx.shape
        E, H = cfg["n_embd"], cfg["n_head"]
        eps = cfg["layer_norm_epsilon"]
        x = p["wte"][idx] + p["wpe"][:T]
        dp = self.dropout if self.training else 0.0
        if dp:
            x = F.dropout(x, dp, True)
        mask = self.mask[:T, :T]
        for i in range(cfg["n_layer"]):
            h = F.layer_norm(x, (E,), p[key(i, "ln_1.weight")], p[key(i, "ln_1.bias")], eps)
            qkv = torch.addmm(p[key(i, "attn.c_attn.bias")], h.reshape(-1, E), p[key(i, "attn.c_attn.weight")])
            q, k, v = qkv.view(B, T, 3, H, E // H).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(E // H)
            att = att.masked_fill(~mask, torch.finfo(att.dtype).min)
            att = torch.softmax(att, dim=-1)
            if dp:
                att = F.dropout(att, dp, True)
            a = (att @ v).transpose(1, 2).reshape(B * T, E)
            a = torch.addmm(p[key(i, "attn.c_proj.bias")], a, p[key(i, "attn.c_proj.weight")])
            x = x + (F.dropout(a, dp, True) if dp else a).view(B, T, E)
            h = F.layer_norm(x, (E,), p[key(i, "ln_2.weight")], p[key(i, "ln_2.bias")], eps)
            m = gelu_new(torch.addmm(p[key(i, "mlp.c_fc.bias")], h.reshape(-1, E), p[key(i, "mlp.c_fc.weight")]))
            m = torch.addmm(p[key(i, "mlp.c_proj.bias")], m, p[key(i, "mlp.c_proj.weight")])
            x = x + (F.dropout(m, dp, True) if dp else m).view(B, T, E)
        return F.layer_norm(x, (E,), self.p["ln_f.weight"], self.p["ln_f.bias"], eps)

    def logits(self, idx):
        lg = self.hidden(idx) @ self.p["wte"].t()
        if self.extra_logit is not None:
            lg = lg.float()  # under bf16 autocast: add the shared row's log(V-K) in float32
            lg[..., -1] += self.extra_logit
        return lg


def key(i, n):
    return "h.%d.%s" % (i, n)


# ------------------------------------------------------------------ export / io
def write_safetensors(path, tensors, dtype):
    """tensors: ordered dict name -> float32 numpy array. dtype 'F16' or 'F32'."""
    npdt = {"F16": "<f2", "F32": "<f4"}[dtype]
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].astype(npdt))
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def read_safetensors(path):
    """Independent reader: header via json, data via numpy.frombuffer."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F16": "<f2", "F32": "<f4", "BF16": None}[info["dtype"]]
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + s:base + e], dtype=dt).reshape(info["shape"]).astype(np.float32)
    return out


def export_tensors(model, seen_ids):
    """Training model (K+1 rows) -> plain GPT-2 tensors (50257-row wte)."""
    sd = {k: v.detach().float().numpy().copy() for k, v in model.p.items()}
    emb = sd.pop("wte")
    wte = np.repeat(emb[-1:], V, axis=0)  # never-seen ids all share row u
    wte[seen_ids] = emb[:-1]
    sd["wte.weight"] = wte
    sd["wpe.weight"] = sd.pop("wpe")
    return sd


def hf_config(cfg):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": EOT,
        "embd_pdrop": 0.0,
        "eos_token_id": EOT,
        "initializer_range": 0.02,
        "layer_norm_epsilon": cfg["layer_norm_epsilon"],
        "model_type": "gpt2",
        "n_ctx": cfg["n_positions"],
        "n_embd": cfg["n_embd"],
        "n_head": cfg["n_head"],
        "n_inner": None,
        "n_layer": cfg["n_layer"],
        "n_positions": cfg["n_positions"],
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.0,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": {"F16": "float16", "F32": "float32"}[cfg.get("dtype", "F32")],
        "use_cache": True,
        "vocab_size": V,
    }


def full_model_from_tensors(cfg, tensors):
    m = GPT2(cfg, V)
    with torch.no_grad():
        for k, t in m.p.items():
            name = {"wte": "wte.weight", "wpe": "wpe.weight"}.get(k, k)
            t.copy_(torch.from_numpy(np.asarray(tensors[name], dtype=np.float32)))
    return m.eval()


def eval_windows(model, toks, ctx, bs=4, per_token=False):
    """Mean NLL (nats/token, full vocabulary) of toks split into consecutive
    non-overlapping windows of ctx tokens (last window may be shorter); inside each
    window token j+1 is predicted from tokens 0..j; every token except each window's
    first is scored."""
    total, n, parts = 0.0, 0, []
    wins = [toks[s:s + ctx] for s in range(0, len(toks), ctx)]
    wins = [w for w in wins if len(w) >= 2]
    with torch.no_grad():
        for i in range(0, len(wins), bs):
            grp = wins[i:i + bs]
            for T in sorted(set(len(w) for w in grp)):
                sub = [w for w in grp if len(w) == T]
                x = torch.from_numpy(np.stack(sub)).long()
                lp = torch.log_softmax(model.logits(x[:, :-1]), dim=-1)
                nll = -lp.gather(-1, x[:, 1:, None]).double()
                total += nll.sum().item()
                n += x[:, 1:].numel()
                parts.append(nll.reshape(-1).numpy())  # windows of equal length keep order
    if per_token:
        return total / n, n, np.concatenate(parts)
    return total / n, n


def scored_targets(toks, ctx):
    return np.concatenate([toks[s + 1:s + ctx] for s in range(0, len(toks), ctx) if len(toks[s:s + ctx]) >= 2])


# ------------------------------------------------------------------ misc
LOGF = None


def log(msg):
    line = "[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg)
    print(line, flush=True)
    if LOGF:
        LOGF.write(line + "\n")
        LOGF.flush()


def parse_deadline(s):
    if not s:
        return None
    now = datetime.datetime.now()
    hh, mm = [int(x) for x in s.split(":")]
    d = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if d < now:
        d += datetime.timedelta(days=1)
    return d.timestamp()


def lr_at(step, a):
    if getattr(a, "lr_table", None) is not None and step < len(a.lr_table):
        return a.lr_table[step]  # --lr-file: replay a recorded schedule
    if a.reschedule:
        s0, total = [int(v) for v in a.reschedule.split(":")]
        if step >= s0:  # cosine from the lr reached at step s0 down to min_lr at step `total`
            lr0 = lr_at(s0, argparse.Namespace(**dict(vars(a), reschedule="")))
            prog = min(1.0, (step - s0) / max(1, total - s0))
            return a.min_lr + 0.5 * (lr0 - a.min_lr) * (1 + math.cos(math.pi * prog))
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    total = a.schedule_steps or a.steps
    prog = min(1.0, (step - a.warmup) / max(1, total - a.warmup))
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * prog))


# ------------------------------------------------------------------ main
def main():
    global LOGF
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/work/train/corpus")
    ap.add_argument("--work", default="/work/train/run")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "demo"))
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000, help="steps to run")
    ap.add_argument("--schedule-steps", type=int, default=0, help="cosine length (default --steps)")
    ap.add_argument("--reschedule", default="", metavar="S:T",
                    help="from step S on, cosine from the lr at S down to --min-lr at step T "
                         "(used to shorten a run under way; part of the recipe when given)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--deadline", default="", help="HH:MM local: stop training, then eval+export")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--dtype", default="F32", choices=["F16", "F32"])
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-whole-eval", action="store_true", help="skip the whole-Moby-Dick evaluation")
    ap.add_argument("--finish-only", action="store_true",
                    help="no training: load WORK/ckpt.pt and redo export, evaluation and README")
    ap.add_argument("--books", default=",".join(TRAIN_BOOKS),
                    help="training books (comma list of %s)" % ",".join(BOOKS))
    ap.add_argument("--val-tokens", type=int, default=10240,
                    help="the last N tokens of each training book are the in-domain validation split "
                         "(never trained on); 0 = none")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--para-eot", type=float, default=0.0,
                    help="insert <|endoftext|> after this fraction of paragraph breaks of the training "
                         "text (seeded by --seed; validation and held-out texts unchanged)")
    ap.add_argument("--bf16", action="store_true",
                    help="bfloat16 autocast for the training forward/backward (CPU AMX/AVX512-BF16); "
                         "weights, optimizer and all evaluations stay float32")
    ap.add_argument("--patience", type=int, default=0,
                    help="early stopping: stop after this many evaluations without a better "
                         "validation loss (0 = never); the best-validation weights are exported")
    ap.add_argument("--time-schedule", action="store_true",
                    help="with --deadline: after warmup, the cosine runs over wall-clock time up to the "
                         "deadline (progress = elapsed / available), so it ends annealed whatever the "
                         "machine's speed; every step's lr is written to OUT/lr_schedule.json")
    ap.add_argument("--reserve-s", type=float, default=0.0,
                    help="--time-schedule: end the cosine this many seconds before the deadline")
    ap.add_argument("--lr-file", default="", help="replay the per-step lr of an lr_schedule.json")
    ap.add_argument("--bench-steps", type=int, default=4, help="--bench: steps per shape (the first is not timed)")
    ap.add_argument("--bench", default="", help="comma list EMBDxHEADS, e.g. 128x4,192x6: time steps only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    LOGF = open(os.path.join(a.work, "train.log"), "a")
    deadline = parse_deadline(a.deadline)
    a.lr_table = json.load(open(a.lr_file))["lr"] if a.lr_file else None
    if a.time_schedule and not deadline:
        sys.exit("train_demo_model: --time-schedule needs --deadline")

    books = [b for b in a.books.split(",") if b]
    for b in books:
        if b not in BOOKS:
            sys.exit("train_demo_model: unknown book %r" % b)
    a.books_list = books
    toks = load_tokens(a.corpus, os.path.join(a.work, "tokens"), books)
    # in-domain validation: the last --val-tokens tokens of each book, never trained on
    val = {b: toks[b][len(toks[b]) - a.val_tokens:].astype(np.int64) for b in books} if a.val_tokens else {}
    prng = np.random.default_rng(a.seed)
    train = np.concatenate(sum([[insert_para_eot(toks[b][:len(toks[b]) - a.val_tokens], a.para_eot, prng),
                                 np.array([EOT], np.int32)] for b in books], [])).astype(np.int64)
    a.train_tokens = {b: len(toks[b]) - a.val_tokens for b in books}
    counts = np.bincount(train, minlength=V)
    seen = np.nonzero(counts)[0]
    K = len(seen)
    remap = np.full(V, K, dtype=np.int64)
    remap[seen] = np.arange(K)
    ctrain = torch.from_numpy(remap[train])
    held = heldout_tokens()
    log("train tokens %d (%s), distinct ids K=%d, heldout tokens %d"
        % (len(train), ", ".join("%s %d" % (b, a.train_tokens[b]) for b in books), K, len(held)))
    extra = math.log(V - K)

    def make_cfg(E, H):
        return {"n_layer": a.n_layer, "n_embd": E, "n_head": H, "n_positions": a.ctx,
                "layer_norm_epsilon": 1e-5}

    def batch(gen):
        ix = torch.randint(0, len(ctrain) - a.ctx - 1, (a.batch,), generator=gen)
        x = torch.stack([ctrain[i:i + a.ctx + 1] for i in ix.tolist()])
        return x[:, :-1], x[:, 1:]

    if a.bench:
        for shape in a.bench.split(","):
            E, H = [int(s) for s in shape.split("x")]
            cfg = make_cfg(E, H)
            gen = torch.Generator().manual_seed(a.seed)
            m = GPT2(cfg, K + 1, extra)
            m.init_weights(gen)
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
            ts = []
            for s in range(a.bench_steps):
                x, y = batch(gen)
                t0 = time.time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                    lg = m.logits(x)
                loss = F.cross_entropy(lg.float().view(-1, K + 1), y.reshape(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
                ts.append(time.time() - t0)
            dt = sum(ts[1:]) / len(ts[1:])
            log("bench n_embd=%d heads=%d layers=%d%s: %.2fs/step = %.0f tokens/s (loss %.3f)"
                % (E, H, a.n_layer, " bf16" if a.bf16 else "", dt, a.batch * a.ctx / dt, loss.item()))
        return

    cfg = make_cfg(a.n_embd, a.n_head)
    gen = torch.Generator().manual_seed(a.seed)
    torch.manual_seed(a.seed)
    model = GPT2(cfg, K + 1, extra)
    model.init_weights(gen)
    model.dropout = a.dropout
    decay = [t for k, t in model.p.items() if t.dim() == 2]
    nodecay = [t for k, t in model.p.items() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    curve, step, tokens_seen, t_train = [], 0, 0, 0.0
    best_val = {"loss": float("inf"), "step": -1, "evals_since": 0}
    ck = os.path.join(a.work, "ckpt.pt")
    ck_best = os.path.join(a.work, "ckpt_best.pt")
    st_lrs = None
    if (a.resume or a.finish_only) and os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        curve, step, tokens_seen, t_train = st["curve"], st["step"], st["tokens"], st["t_train"]
        best_val = st.get("best_val", best_val)
        st_lrs = st.get("lrs")
        log("resumed at step %d" % step)
    nparams = sum(t.numel() for t in model.parameters())
    log("config %s; training params %d (K+1=%d output rows); steps %d schedule %d; deadline %s"
        % (json.dumps(cfg), nparams, K + 1, a.steps, a.schedule_steps or a.steps, a.deadline or "-"))

    def heldout_loss_restricted(arr=None):
        # exact full-vocab loss via the K+1 softmax; unseen held-out targets cost
        # -log p(u-class) + log(V-K)... computed as full model equivalence below
        arr = held if arr is None else arr
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(arr), a.ctx * 8):
                wins = [arr[t:t + a.ctx] for t in range(s, min(len(arr), s + a.ctx * 8), a.ctx)]
                for T in sorted(set(len(w) for w in wins if len(w) >= 2)):
                    x = torch.from_numpy(np.stack([remap[w] for w in wins if len(w) == T])).long()
                    lp = torch.log_softmax(model.logits(x[:, :-1]), -1)
                    tgt = x[:, 1:]
                    nll = -lp.gather(-1, tgt[..., None])[..., 0].double()
                    nll = nll + (tgt == K).double() * extra  # unseen: share of the u-class
                    tot += nll.sum().item()
                    n += tgt.numel()
        model.train()
        return tot / n

    def val_losses():
        """(all books, the first model's three books) token-weighted validation loss."""
        if not val:
            return float("nan"), float("nan")
        per = {b: heldout_loss_restricted(val[b]) for b in books}
        nb = {b: len(scored_targets(val[b], a.ctx)) for b in books}
        allv = sum(per[b] * nb[b] for b in books) / sum(nb.values())
        old = [b for b in OLD_BOOKS if b in books]
        oldv = sum(per[b] * nb[b] for b in old) / sum(nb[b] for b in old) if old else float("nan")
        return allv, oldv

    probe_enc = Encoder.load()
    sanity_ids = [EOT] + probe_enc.encode(SANITY_PROMPT)  # as `probe predict` does by default
    sanity_want = probe_enc.encode(SANITY_WANT)[0]

    def sanity_check():
        """The model card's first prompt: the rank and probability of SANITY_WANT
        after SANITY_PROMPT (seen ids only; the shared unseen row never wins)."""
        model.eval()
        with torch.no_grad():
            p = torch.softmax(model.logits(torch.from_numpy(remap[sanity_ids])[None])[0, -1].double(), -1)
        model.train()
        want = int(remap[sanity_want])
        rank = int((p > p[want]).sum().item()) + 1
        top = torch.topk(p[:K], 3)
        return "%r: %r rank %d p %.3f; top %s" % (
            SANITY_PROMPT, SANITY_WANT, rank, float(p[want]),
            ", ".join("%r %.3f" % (probe_enc.decode([int(seen[i])]), float(v)) for v, i in zip(top.values, top.indices)))

    def evaluate():
        nonlocal best_val
        hl = heldout_loss_restricted()
        tl = float(np.mean(recent[-a.eval_every:])) if recent else float("nan")
        vl, vo = val_losses()
        curve.append({"step": step, "tokens": tokens_seen, "train_loss": round(tl, 4),
                      "val_loss": round(vl, 4), "val_old3_loss": round(vo, 4), "heldout_loss": round(hl, 4)})
        log("EVAL step %d train %.4f val %.4f (old books %.4f) heldout %.4f" % (step, tl, vl, vo, hl))
        log("SANITY step %d %s" % (step, sanity_check()))
        if val and vl < best_val["loss"]:
            best_val.update(loss=vl, step=step, evals_since=0)
            torch.save({"model": model.state_dict(), "step": step, "tokens": tokens_seen}, ck_best)
        else:
            best_val["evals_since"] += 1

    def export_best(model):
        """Early stopping: load the best-validation weights when they are not the last ones."""
        if val and os.path.exists(ck_best) and curve and best_val["step"] != curve[-1]["step"]:
            model.load_state_dict(torch.load(ck_best)["model"])
            log("exporting the best-validation weights of step %d (val %.4f)" % (best_val["step"], best_val["loss"]))
            a.exported_step = best_val["step"]

    if a.finish_only:
        reason = "steps" if step >= a.steps else "deadline"
        log("finish-only from %s: step %d (%s)" % (ck, step, reason))
        export_best(model)
        finish(a, cfg, model, seen, counts, held, curve, step, tokens_seen, t_train, reason, K, toks, val)
        return
    recent = []
    stop_reason = "steps"
    t_last_ck = time.time()
    lrs = list(st_lrs) if (a.resume and st_lrs) else []
    t_sched0 = None  # --time-schedule: wall clock when warmup ended (this session)
    model.train()
    while step < a.steps:
        if deadline and time.time() >= deadline:
            stop_reason = "deadline"
            break
        t0 = time.time()
        lr = lr_at(step, a)
        if a.time_schedule and step >= a.warmup and a.lr_table is None:
            if t_sched0 is None:
                t_sched0 = time.time()
                lr_start = lr_at(step, argparse.Namespace(**dict(vars(a), reschedule="", schedule_steps=10**9)))
            prog = min(1.0, (time.time() - t_sched0) / max(1.0, deadline - t_sched0 - a.reserve_s))
            lr = a.min_lr + 0.5 * (lr_start - a.min_lr) * (1 + math.cos(math.pi * prog))
            if prog >= 1.0:
                stop_reason = "deadline"
                break
        lrs.append(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            lg = model.logits(x)
        loss = F.cross_entropy(lg.float().view(-1, K + 1), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        t_train += time.time() - t0
        recent.append(loss.item())
        if step % 20 == 0:
            log("step %d loss %.4f lr %.2e %.0f tok/s" % (step, loss.item(), lrs[-1],
                                                          tokens_seen / max(t_train, 1e-9)))
        if step % a.eval_every == 0 or step == a.steps:
            evaluate()
            if a.patience and best_val["evals_since"] >= a.patience:
                stop_reason = "early stop"
        if step % a.ckpt_every == 0 or stop_reason == "early stop":
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "curve": curve, "step": step, "tokens": tokens_seen, "t_train": t_train,
                        "best_val": best_val, "lrs": lrs}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
        if stop_reason == "early stop":
            break
    if not curve or curve[-1]["step"] != step:
        evaluate()
    log("training stopped (%s) at step %d, %d tokens, %.0fs training" % (stop_reason, step, tokens_seen, t_train))
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                "curve": curve, "step": step, "tokens": tokens_seen, "t_train": t_train,
                "best_val": best_val, "lrs": lrs}, ck + ".tmp")
    os.replace(ck + ".tmp", ck)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "lr_schedule.json"), "w") as f:
        json.dump({"how": "learning rate of each step (index = step), replay with --lr-file", "lr": lrs}, f)
    export_best(model)
    finish(a, cfg, model, seen, counts, held, curve, step, tokens_seen, t_train, stop_reason, K, toks, val)


def finish(a, cfg, model, seen, counts, held, curve, step, tokens_seen, t_train, stop_reason, K, toks, val):
    os.makedirs(a.out, exist_ok=True)
    cfg = dict(cfg, dtype=a.dtype)
    tensors = export_tensors(model, seen)
    st_path = os.path.join(a.out, "model.safetensors")
    write_safetensors(st_path, tensors, a.dtype)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(hf_config(cfg), f, indent=2, sort_keys=True)
        f.write("\n")
    for fn in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(ROOT, "models", "gpt2-tokenizer", fn), os.path.join(a.out, fn))
    log("wrote %s (%d bytes, %s)" % (st_path, os.path.getsize(st_path), a.dtype))

    # independent re-read + full-vocabulary evaluation of the exported file
    full = full_model_from_tensors(cfg, read_safetensors(st_path))
    loss, n, nll = eval_windows(full, held, a.ctx, per_token=True)
    tgt = scored_targets(held, a.ctx)
    unseen_mask = counts[tgt] == 0
    split = {"seen_tokens": int((~unseen_mask).sum()), "seen_loss": float(nll[~unseen_mask].mean()),
             "unseen_tokens": int(unseen_mask.sum()),
             "unseen_loss": float(nll[unseen_mask].mean()) if unseen_mask.any() else 0.0}
    uni_all = -np.log((counts[tgt] + 1.0) / (int(counts.sum()) + V))
    split["seen_unigram_loss"] = float(uni_all[~unseen_mask].mean())
    N = int(counts.sum())
    uni = float(-np.mean(np.log((counts[tgt] + 1.0) / (N + V))))
    unseen_held = int(np.sum(counts[tgt] == 0))
    log("exported model: heldout loss %.6f nats/token over %d tokens (unigram %.6f)" % (loss, n, uni))
    md = toks["mobydick"].astype(np.int64)
    if a.no_whole_eval:
        md = md[:2 * a.ctx]
    t0 = time.time()
    md_loss, md_n = eval_windows(full, md, a.ctx)
    md_tgt = scored_targets(md, a.ctx)
    md_uni = float(-np.mean(np.log((counts[md_tgt] + 1.0) / (N + V))))
    log("whole Moby Dick: loss %.6f over %d tokens (unigram %.6f) in %.0fs" % (md_loss, md_n, md_uni, time.time() - t0))

    how = ("examples/heldout_mobydick.txt read as UTF-8 and tokenized as one string with the GPT-2 "
           "BPE (no <|endoftext|> added); the %d ids are cut into consecutive non-overlapping "
           "windows of %d tokens (the last one shorter); each window is run on its own from "
           "position 0, and every token except each window's first is scored with -ln p(token | "
           "window prefix) under the full 50257-way softmax; loss = mean over the %d scored "
           "tokens. unigram_loss: p(id) = (count_train(id)+1)/(N_train+50257) with counts over "
           "the %d training tokens, on the same scored tokens." % (len(held), a.ctx, n, N))
    ev = {"tokens": n, "loss": round(loss, 6), "unigram_loss": round(uni, 6), "ctx": a.ctx,
          "file": "examples/heldout_mobydick.txt", "file_tokens": int(len(held)),
          "how": how, "whole_mobydick": {"tokens": md_n, "loss": round(md_loss, 6),
                                         "unigram_loss": round(md_uni, 6)}}
    if val:
        # in-domain validation split, full 50257-way softmax of the exported model
        vt = {}
        for b in val:
            vl, vn = eval_windows(full, val[b], a.ctx)
            vt[b] = {"tokens": vn, "loss": round(vl, 6)}
        tot = sum(v["tokens"] for v in vt.values())
        old = [b for b in OLD_BOOKS if b in vt]
        ev["validation"] = {
            "how": "the last %d GPT-2 tokens of each training book (never trained on), cut into "
                   "windows of %d tokens and scored like the held-out file" % (a.val_tokens, a.ctx),
            "loss": round(sum(v["loss"] * v["tokens"] for v in vt.values()) / tot, 6), "tokens": tot,
            "old_books_loss": round(sum(vt[b]["loss"] * vt[b]["tokens"] for b in old) / sum(vt[b]["tokens"] for b in old), 6) if old else None,
            "books": vt}
        log("validation (exported model): %s" % json.dumps(ev["validation"]["books"]))
    ev["exported_step"] = getattr(a, "exported_step", step)
    with open(os.path.join(a.out, "heldout_eval.json"), "w") as f:
        json.dump(ev, f, indent=2)
        f.write("\n")

    enc = Encoder.load()
    prompts = ["And God said, Let there be",
               "It is a truth universally acknowledged, that a single man in possession",
               "In the beginning God created the heaven and the",
               "Elizabeth looked at her sister, and",
               "And the LORD said unto Moses,",
               "Call me Ishmael. Some years ago",
               "The whale"]
    rows = []
    with torch.no_grad():
        for pr in prompts:
            ids = [EOT] + enc.encode(pr)  # as `probe predict` does by default
            gen_ids = []
            for _ in range(8):
                x = torch.tensor([(ids + gen_ids)[-a.ctx:]])
                lg = full.logits(x)[0, -1]
                gen_ids.append(int(torch.argmax(lg)))
            p = torch.softmax(full.logits(torch.tensor([ids]))[0, -1].double(), -1)
            top = torch.topk(p, 3)
            rows.append((pr, " ".join("`%s` %.3f" % (enc.decode([int(i)]).replace("\n", "\\n"), float(v))
                                       for v, i in zip(top.values, top.indices)),
                         enc.decode(gen_ids).replace("\n", "\\n")))
    write_readme(a, cfg, curve, step, tokens_seen, t_train, stop_reason, K, toks, N, ev, rows,
                 os.path.getsize(st_path), unseen_held, split)
    log("done: %s" % a.out)


def write_readme(a, cfg, curve, step, tokens_seen, t_train, stop_reason, K, toks, N, ev, rows, size, unseen_held,
                 split=None):
    E, L, H = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    n_emb = V * E + cfg["n_positions"] * E
    n_attn = L * (E * 3 * E + 3 * E + E * E + E)
    n_ffn = L * (E * 4 * E + 4 * E + 4 * E * E + E)
    n_ln = L * 4 * E + 2 * E
    total = n_emb + n_attn + n_ffn + n_ln
    sched = a.schedule_steps or a.steps
    resched = " --reschedule %s" % a.reschedule if a.reschedule else ""
    lines = []
    w = lines.append
    w("# probe demo model\n")
    w("A small GPT-2 (Hugging Face `GPT2LMHeadModel` layout) trained from scratch by "
      "`scripts/model/train_demo_model.py` on public-domain narrative English, so that its neurons "
      "are learned features. It is the default model of `probe` (used when neither `--model` nor "
      "`$PROBE_MODEL` is given). Written automatically by the training script.\n")
    w("## Architecture\n")
    w("| | |\n|---|---|")
    w("| layers (`n_layer`) | %d |" % L)
    w("| width (`n_embd`) | %d |" % E)
    w("| heads (`n_head`) | %d (head size %d) |" % (H, E // H))
    w("| FFN (`n_inner`) | %d = 4 x n_embd (`null` in config.json) |" % (4 * E))
    w("| context (`n_positions`) | %d, learned positions |" % cfg["n_positions"])
    w("| vocabulary | 50257, the real GPT-2 byte-level BPE (`vocab.json`, `merges.txt`) |")
    w("| activation | `gelu_new` (tanh approximation) |")
    w("| blocks | pre-LayerNorm (ln_1, attn, ln_2, mlp), final `ln_f`, eps 1e-5 |")
    w("| output head | tied: `lm_head = wte` (no `lm_head.weight` in the file) |")
    w("| parameters | %d total: embeddings %d (wte+wpe), attention %d, FFN %d (%.1f%%), layer norms %d |"
      % (total, n_emb, n_attn, n_ffn, 100.0 * n_ffn / total, n_ln))
    w("| file | `model.safetensors`, %s, %d bytes; no `h.N.attn.bias` buffers |" % (a.dtype, size))
    w("")
    w("## Data\n")
    w("Extracted from Debian packages by `scripts/model/extract_corpus.py` (see `examples/README` and `NOTICE`):\n")
    w("| book | package | GPT-2 tokens | use |\n|---|---|---|---|")
    for b in a.books_list:
        w("| %s | %s | %d | train %d, validation %d |" % (BOOKS[b][0], BOOKS[b][1], len(toks[b]),
                                                          a.train_tokens[b], len(toks[b]) - a.train_tokens[b]))
    w("| Moby Dick (Melville) | r-cran-tokenizers | %d | **held out**, never trained on |" % len(toks["mobydick"]))
    w("")
    w("Each book is tokenized as one string; its last %d tokens are the in-domain validation split "
      "(never trained on); the rest of the %d training books are concatenated with "
      "`<|endoftext|>` (50256) after each, %d tokens in all, using K = %d distinct ids. Training "
      "windows of %d+1 tokens are drawn uniformly at random from this stream.\n"
      % (a.val_tokens, len(a.books_list), N, K, a.ctx))
    w("## Training\n")
    w("AdamW (betas 0.9/0.95, weight decay %g on matrices), peak lr %g, %d warmup steps, cosine "
      "to %g over %d steps (see below for the shortened schedule, if any), batch %d x %d tokens, gradient clipping 1.0, seed %d, %s, "
      "%d CPU threads, dropout %g." % (a.wd, a.lr, a.warmup, a.min_lr, sched, a.batch, a.ctx, a.seed,
                                      "float32 weights with bfloat16 autocast" if a.bf16 else "float32",
                                      a.threads, a.dropout))
    w("Stopped at **step %d** (%s), **%d tokens seen** (%.2f passes over the training stream), "
      "%.0f s of training.\n" % (step, "step budget" if stop_reason == "steps" else "wall-clock deadline",
                                   tokens_seen, tokens_seen / N, t_train))
    w("Softmax: the training loss is computed over the K seen ids plus one shared row `u` for the "
      "%d ids never seen in training, entered with logit `h.u + ln(%d)`. The exported `wte` has "
      "all never-seen rows equal to `u`, so this is exactly the full 50257-way softmax of the "
      "exported model (not an approximation); it is merely cheaper to train.\n" % (V - K, V - K))
    w("Never-seen vocabulary ids: the %d ids that never occur in the training text all have the same "
      "`wte` row `u` (input embedding and, tied, output row), so the model cannot tell them apart: "
      "each gets 1/%d of the probability it gives the group. Any analysis that ranks vocabulary ids "
      "(a neuron's value projection onto `wte`, top predicted tokens) sees them as %d exact ties; "
      "collapse them into one entry (\"never-seen id\") rather than listing them, or they swamp "
      "the list whenever `u` scores high.\n" % (V - K, V - K, V - K))
    w("Reproduce (after `scripts/model/extract_corpus.py`):\n")
    w("```\n/usr/bin/python3 scripts/model/train_demo_model.py --n-layer %d --n-embd %d --n-head %d --ctx %d "
      "--batch %d --lr %g --min-lr %g --warmup %d --wd %g --seed %d --threads %d --dtype %s "
      "--steps %d --schedule-steps %d%s --books %s --val-tokens %d --dropout %g --para-eot %g%s%s\n```\n"
      % (L, E, H, a.ctx, a.batch, a.lr, a.min_lr, a.warmup, a.wd, a.seed, a.threads, a.dtype, step, sched, resched,
         ",".join(a.books_list), a.val_tokens, a.dropout, a.para_eot, " --bf16" if a.bf16 else "",
         " --lr-file lr_schedule.json" if (a.time_schedule or a.lr_file) else ""))
    if a.time_schedule or a.lr_file:
        w("The learning rate followed a cosine over wall-clock time up to a deadline (`--time-schedule`); "
          "the rate of every step is in `lr_schedule.json` (not in git; see the training log), and "
          "`--lr-file` replays it step by step.\n")
    if a.reschedule:
        s0, t1 = a.reschedule.split(":")
        w("The run was planned for %d cosine steps; because the shared machine became slower, it was "
          "stopped at step %s and resumed from its checkpoint with the schedule shortened: from step %s "
          "the learning rate follows a cosine from its value there down to %g at step %s. The command "
          "above (`--reschedule`) reproduces exactly this schedule.\n" % (sched, s0, s0, a.min_lr, t1))
    w("## Training curve\n")
    w("Train loss: mean training loss (nats/token, full vocabulary) over the preceding %d steps. "
      "Held-out: loss on the held-out slice defined below, measured during training in float32 "
      "before export.\n" % a.eval_every)
    w("| step | tokens | train loss | validation (all books) | validation (Austen+WEB+KJV) | held-out loss |\n|---|---|---|---|---|---|")
    for c in curve:
        w("| %d | %d | %.4f | %.4f | %.4f | %.4f |" % (c["step"], c["tokens"], c["train_loss"], c.get("val_loss", float("nan")),
                                                     c.get("val_old3_loss", float("nan")), c["heldout_loss"]))
    w("")
    w("## Held-out loss\n")
    w("Computed by PyTorch from the exported `model.safetensors` (re-read with an independent "
      "reader: JSON header + `numpy.frombuffer`), full 50257-way softmax:\n")
    w("| text | scored tokens | model (nats/token) | unigram baseline |\n|---|---|---|---|")
    w("| `examples/heldout_mobydick.txt` | %d | **%.4f** | %.4f |" % (ev["tokens"], ev["loss"], ev["unigram_loss"]))
    if "validation" in ev:
        w("| in-domain validation (last %d tokens of each training book) | %d | %.4f | |"
          % (a.val_tokens, ev["validation"]["tokens"], ev["validation"]["loss"]))
    wm = ev["whole_mobydick"]
    w("| whole Moby Dick (extracted text) | %d | %.4f | %.4f |" % (wm["tokens"], wm["loss"], wm["unigram_loss"]))
    w("")
    w("Exact definition (also in `heldout_eval.json`): %s\n" % ev["how"])
    if split:
        w("Moby Dick is out of domain (nautical vocabulary). %d of the %d scored held-out tokens are "
          "ids that never occur in the training books; the model gives each of those the shared "
          "never-seen share, so they cost %.2f nats each on average (%.1f%% of the total loss). On "
          "the other %d tokens the loss is %.4f nats/token (unigram baseline on the same tokens "
          "%.4f).\n" % (split["unseen_tokens"], ev["tokens"], split["unseen_loss"],
                        100.0 * split["unseen_tokens"] * split["unseen_loss"] / (ev["tokens"] * ev["loss"]),
                        split["seen_tokens"], split["seen_loss"], split["seen_unigram_loss"]))
    else:
        w("%d of the scored held-out tokens never occur in the training books.\n" % unseen_held)
    w("## Sanity check: next-token predictions\n")
    w("Top-3 next tokens with probabilities, and an 8-token greedy continuation, each after "
      "`<|endoftext|>` + the prompt (as `probe predict` does by default):\n")
    w("| prompt | top 3 | greedy continuation |\n|---|---|---|")
    for pr, top, cont in rows:
        w("| %s | %s | %s |" % (pr.replace("|", "\\|"), top.replace("|", "\\|"), cont.replace("|", "\\|")))
    w("")
    w("## Licence\n")
    w("The training texts are in the public domain (see `NOTICE`). The weights are released "
      "under the same terms as the rest of probe. `vocab.json` and `merges.txt` are the GPT-2 "
      "tokenizer files (see `models/gpt2-tokenizer/`).")
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
