"""gpt2_ref.py — the reference GPT-2 of the Python scripts: a safetensors
reader, a NumPy forward pass with probe's interventions, and probe's corpus
rules (paragraph documents, context windows).

Written from the file format, Hugging Face's GPT2LMHeadModel and SPEC.md,
sharing no code with probe's C sources: the checks that matter compare probe
against this. Computes in float64 by default (the references of the check
suites); NumPy only.

    from gpt2_ref import GPT2
    m = GPT2("tests/fixtures/models/tiny-f32")
    acts = []
    logits = m.forward(ids, remove={1}, edits=[(0, 3, 0.0)], acts=acts)
    loss = next_token_loss(logits, ids)

Used by the references of `probe trace` (reference_forward.py), `probe
record` (record_reference.py), `probe ablate` (ablate_reference.py) and
`probe predict` (eval_demo_model.py, also the default model's held-out
loss), and for its weights by the bench's PyTorch peer (bench/bench_peer.py).
"""
import json
import math
import os
import struct

import numpy as np

EOT = 50256  # <|endoftext|>
PREFIX = "transformer."

# safetensors dtype -> little-endian NumPy dtype (BF16 is decoded by hand)
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}


# ---- safetensors ---------------------------------------------------------

def read_header(path):
    """(header, data_start) of a safetensors file: the JSON header (with its
    __metadata__, if any) and the file offset its data_offsets count from."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8")), 8 + n


def read_safetensors(path, dtype=np.float64):
    """name -> array of `dtype` (an own, writable copy) for every F64 / F32 /
    F16 / BF16 tensor of a safetensors file, names without the "transformer."
    prefix (lm_head.weight keeps its name). Tensors of other dtypes (integer
    or bool buffers) are skipped. Reads one tensor at a time."""
    header, base = read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            f.seek(base + b)
            buf = f.read(e - b)
            dt = info["dtype"]
            if dt == "BF16":
                arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif dt in _DTYPES:
                arr = np.frombuffer(buf, dtype=_DTYPES[dt])
            else:
                continue
            key = name[len(PREFIX):] if name.startswith(PREFIX) else name
            out[key] = arr.astype(dtype).reshape(info["shape"])
    return out


# ---- model ---------------------------------------------------------------

def layer_norm(x, w, b, eps):
    """LayerNorm over the last axis (population variance)."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    """GPT-2's tanh approximation of GELU (HF "gelu_new")."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


_verf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x):
    """Exact GELU, x * Phi(x) (HF "gelu")."""
    return (0.5 * x * (1.0 + _verf(x / math.sqrt(2.0)))).astype(x.dtype)


def relu(x):
    return np.maximum(x, 0.0)


ACTIVATIONS = {"gelu_new": gelu_new, "gelu": gelu, "relu": relu}


def activation(name):
    """The activation function config.json's activation_function names."""
    if name not in ACTIVATIONS:
        raise SystemExit(f"gpt2_ref: unknown activation_function {name!r}")
    return ACTIVATIONS[name]


def log_softmax(z):
    """log softmax over the last axis."""
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def next_token_loss(logits, ids):
    """[T-1] cross-entropy in nats of ids[j+1] under logits[j]."""
    ids = np.asarray(ids)
    lp = log_softmax(logits[:-1])
    return -lp[np.arange(len(ids) - 1), ids[1:]]


class GPT2:
    """A GPT-2 model directory (config.json, model.safetensors) in `dtype`.

    Attributes: cfg (config.json), w (tensors by name, no prefix), L layers,
    C width, NH heads, F = n_inner (default 4 C), P positions, V vocabulary,
    eps, act (the activation), head (lm_head.weight, or wte when tied),
    scale_attn and scale_by_layer (the attention-scaling keys of GPT2Config,
    its defaults when absent)."""

    def __init__(self, model_dir, dtype=np.float64):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        self.w = read_safetensors(os.path.join(model_dir, "model.safetensors"), dtype)
        c = self.cfg
        self.L, self.C, self.NH = c["n_layer"], c["n_embd"], c["n_head"]
        self.F = c.get("n_inner") or 4 * self.C
        self.P, self.V = c["n_positions"], c["vocab_size"]
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.act = activation(c.get("activation_function", "gelu_new"))
        self.head = self.w.get("lm_head.weight", self.w["wte.weight"])
        self.scale_attn = c.get("scale_attn_weights", True)
        self.scale_by_layer = c.get("scale_attn_by_inverse_layer_idx", False)

    def forward(self, ids, remove=(), edits=(), acts=None, resid=None):
        """Logits [T x V] of the window ids (T <= P).

        Interventions, as probe's: the FFN output (c_proj and its bias) of
        the layers in `remove` is not added to the residual stream; edits
        [(layer, neuron, value)] set that neuron's post-activation to value
        at every position, in list order. When acts is a list, each layer's
        post-activation [T x F] (after edits) is appended to it; when resid
        is a list, each layer's (resid_pre, attn_out, resid_post) [T x C]
        (TransformerLens blocks.L.hook_resid_pre, hook_attn_out,
        hook_resid_post; attn_out with c_proj's bias)."""
        w, C, NH = self.w, self.C, self.NH
        T, hs = len(ids), self.C // self.NH
        x = w["wte.weight"][ids] + w["wpe.weight"][:T]
        causal = np.triu(np.ones((T, T), dtype=bool), 1)
        for l in range(self.L):
            p = f"h.{l}."
            h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(T, NH, hs).transpose(1, 0, 2) for i in range(3))
            s = q @ k.transpose(0, 2, 1)
            if self.scale_attn:  # transformers' GPT2Attention._attn
                s = s / math.sqrt(hs)
            if self.scale_by_layer:
                s = s / float(l + 1)
            s[:, causal] = -np.inf
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = (s @ v).transpose(1, 0, 2).reshape(T, C)
            x_pre, o = x, o @ w[p + "attn.c_proj.weight"]
            x = x + o + w[p + "attn.c_proj.bias"]
            h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            f = self.act(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            for (el, en, ev) in edits:
                if el == l:
                    f[:, en] = ev
            if acts is not None:
                acts.append(f.copy())
            if l not in remove:
                x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
            if resid is not None:
                resid.append((x_pre, o + w[p + "attn.c_proj.bias"], x))
        x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], self.eps)
        return x @ self.head.T


# ---- corpus rules (SPEC section 5, src/text/corpus.h) ---------------------

def paragraphs(data):
    """[(byte offset, bytes)] of the paragraph documents of corpus bytes:
    runs of non-blank lines (blank = only spaces, tabs, \\r, \\f, \\v); a
    document ends before its last line's \\n and a \\r before it."""
    docs, start, end = [], None, None
    pos = 0
    for line in data.split(b"\n"):
        if line.strip(b" \t\r\n\f\v") == b"":
            if start is not None:
                docs.append((start, data[start:end]))
            start = None
        else:
            if start is None:
                start = pos
            end = pos + len(line) - (1 if line.endswith(b"\r") else 0)
        pos += len(line) + 1
    if start is not None:
        docs.append((start, data[start:end]))
    return docs


def windows(n, ctx):
    """[(start, length, first_new)] of a sequence of n tokens: one window
    when n <= ctx; else windows of ctx tokens advancing by ctx // 2, the last
    one aligned to the end; each owns the tokens from first_new (the previous
    window's end) to its own end."""
    if n == 0:
        return []
    if n <= ctx:
        return [(0, n, 0)]
    stride = max(ctx // 2, 1)
    out, start, owned_to = [], 0, 0
    while start + ctx < n:
        out.append((start, ctx, owned_to))
        owned_to = start + ctx
        start += stride
    out.append((n - ctx, ctx, owned_to))
    return out


# ---- option specs (as probe's --no-ffn-layers, --zero, --set, --neurons) ---

def parse_layers(spec):
    """"3,5-7" -> [3, 5, 6, 7] (sorted, unique)."""
    out = []
    for item in spec.split(","):
        a, _, b = item.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return sorted(set(out))


def parse_neurons(spec):
    """"5:123,5:456" -> [(5, 123), (5, 456)]."""
    return [tuple(int(x) for x in item.split(":")) for item in spec.split(",")]


def parse_edits(spec, default=None):
    """"3:100,5:7=1.5" -> [(3, 100, default), (5, 7, 1.5)]."""
    edits = []
    for item in spec.split(","):
        ln, _, v = item.partition("=")
        l, n = ln.split(":")
        edits.append((int(l), int(n), float(v) if v else default))
    return edits
