/* model_load.c — a GPT-2 model from a Hugging Face directory.
 *
 *   Model *m = model_load("models/demo", err);
 *     DIR/config.json        -> m->cfg              (config.c)
 *     DIR/model.safetensors  -> m->wte, m->layers.. (validated, see below)
 *     DIR/vocab.json, DIR/merges.txt -> m->tok      (tokenizer.c)
 *
 * Tensor names are HF's GPT2LMHeadModel keys, with or without the
 * "transformer." prefix:
 *
 *   wte.weight [V,C]  wpe.weight [P,C]  ln_f.{weight,bias} [C]
 *   h.N.ln_1.{weight,bias} [C]          h.N.ln_2.{weight,bias} [C]
 *   h.N.attn.c_attn.weight [C,3C] .bias [3C]
 *   h.N.attn.c_proj.weight [C,C]  .bias [C]
 *   h.N.mlp.c_fc.weight    [C,F]  .bias [F]
 *   h.N.mlp.c_proj.weight  [F,C]  .bias [C]
 *   lm_head.weight [V,C]   optional; absent = tied to wte
 *
 * Buffers (h.N.attn.bias, h.N.attn.masked_bias) and any other extra tensor
 * are ignored. Every expected tensor is checked for presence, dtype (F32,
 * F16, BF16) and exact shape before any pointer is handed out. F32 data
 * aligned to 4 bytes is used in place from the mmap; F16/BF16 (and any
 * unaligned F32) is converted into one allocation, m->converted. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/mman.h>

#include "model.h"
#include "util.h"

/* One expected tensor: where its pointer goes and the shape it must have. */
typedef struct {
    char name[64];          /* without prefix */
    const float **dst;
    int ndim;
    int64_t shape[2];
    const StTensor *t;      /* found in the file */
    int needs_copy;
} Want;

static void want_add(Want *w, int *n, const float **dst, int64_t d0, int64_t d1, const char *fmt, int layer) {
    Want *x = &w[(*n)++];
    snprintf(x->name, sizeof x->name, fmt, layer);
    x->dst = dst;
    x->ndim = d1 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->t = NULL;
    x->needs_copy = 0;
}

/* The tensors m expects (from m->cfg and m->tied; m->layers allocated),
 * each with the Model field its pointer goes to, into w[12 L + 5]; returns
 * how many. The one list of names, for the loader and model_weight. */
static int want_table(Model *m, Want *w) {
    const ModelConfig *c = &m->cfg;
    int64_t L = c->n_layer, C = c->n_embd, F = c->n_inner, P = c->n_positions, V = c->vocab_size;
    int n = 0;
    want_add(w, &n, &m->wte, V, C, "wte.weight", 0);
    want_add(w, &n, &m->wpe, P, C, "wpe.weight", 0);
    for (int l = 0; l < L; l++) {
        LayerParams *p = &m->layers[l];
        want_add(w, &n, &p->ln1_w, C, 0, "h.%d.ln_1.weight", l);
        want_add(w, &n, &p->ln1_b, C, 0, "h.%d.ln_1.bias", l);
        want_add(w, &n, &p->qkv_w, C, 3 * C, "h.%d.attn.c_attn.weight", l);
        want_add(w, &n, &p->qkv_b, 3 * C, 0, "h.%d.attn.c_attn.bias", l);
        want_add(w, &n, &p->attn_proj_w, C, C, "h.%d.attn.c_proj.weight", l);
        want_add(w, &n, &p->attn_proj_b, C, 0, "h.%d.attn.c_proj.bias", l);
        want_add(w, &n, &p->ln2_w, C, 0, "h.%d.ln_2.weight", l);
        want_add(w, &n, &p->ln2_b, C, 0, "h.%d.ln_2.bias", l);
        want_add(w, &n, &p->fc_w, C, F, "h.%d.mlp.c_fc.weight", l);
        want_add(w, &n, &p->fc_b, F, 0, "h.%d.mlp.c_fc.bias", l);
        want_add(w, &n, &p->proj_w, F, C, "h.%d.mlp.c_proj.weight", l);
        want_add(w, &n, &p->proj_b, C, 0, "h.%d.mlp.c_proj.bias", l);
    }
    want_add(w, &n, &m->lnf_w, C, 0, "ln_f.weight", 0);
    want_add(w, &n, &m->lnf_b, C, 0, "ln_f.bias", 0);
    if (!m->tied) want_add(w, &n, &m->lm_head, V, C, "lm_head.weight", 0);
    return n;
}

static const StTensor *find_prefixed(const SafeTensors *st, const char *name) {
    const StTensor *t = st_find(st, name);
    if (t) return t;
    char full[96];
    snprintf(full, sizeof full, "transformer.%s", name);
    return st_find(st, full);
}

static void shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && k + 24 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
}

/* Presence, dtype and exact shape of one expected tensor. */
static int check_tensor(const SafeTensors *st, Want *w, char *err) {
    const StTensor *t = find_prefixed(st, w->name);
    if (!t) return err_set(err, "'%s': missing tensor '%s'", st_path(st), w->name);
    if (t->dtype == ST_OTHER) {
        return err_set(err, "'%s': tensor '%s' has dtype %s (expected F32, F16 or BF16)", st_path(st), t->name,
                       t->dtype_name);
    }
    int ok = t->ndim == w->ndim;
    for (int i = 0; ok && i < w->ndim; i++) ok = t->shape[i] == w->shape[i];
    if (!ok) {
        char got[128], want[64];
        shape_str(got, sizeof got, t->shape, t->ndim);
        shape_str(want, sizeof want, w->shape, w->ndim);
        return err_set(err, "'%s': tensor '%s' has shape [%s] (expected [%s] from config.json)", st_path(st),
                       t->name, got, want);
    }
    w->t = t;
    w->needs_copy = t->dtype != ST_F32 || ((uintptr_t)t->data & 3) != 0;
    return 0;
}

/* hash of config.json bytes + safetensors header bytes + file size: tells a
 * database which exact checkpoint produced it. */
/* NaN or Inf anywhere in a weight would turn every activation downstream
 * into NaN, silently (and into NULLs in a database): refuse it at load.
 * One pass over the exponent bits, which vectorises; the index only when
 * something is found. */
static int check_finite(const char *file, const char *name, const float *x, int64_t n, char *err) {
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        bad |= (b & 0x7f800000u) == 0x7f800000u;
    }
    if (!bad) return 0;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return err_set(err, "'%s': tensor '%s' holds %s at index %lld: a model with non-finite weights cannot be run",
                           file, name, isnan(x[i]) ? "NaN" : x[i] > 0 ? "+Inf" : "-Inf", (long long)i);
    return 0;
}

/* The check above read every weight; weights used in place from the file
 * mapping then count as resident although the forward pass may never read
 * most of them (wte's rows of ids absent from a corpus). Dropping the whole
 * pages of a tensor read in place gives them back; they fault in again from
 * the page cache when used. */
static void release_pages(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1), e = ((uintptr_t)p + n) & ~(uintptr_t)(ps - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static int model_checksum(const char *cfg_path, const char *st_path_, size_t file_size, uint64_t *out, char *err) {
    char *text;
    size_t len;
    if (file_read_all(cfg_path, &text, &len, err)) return -1;
    uint64_t h = hash64(text, len, PROBE_HASH_SEED);
    free(text);
    FILE *f = fopen(st_path_, "rb");
    if (!f) return err_set(err, "cannot open '%s'", st_path_);
    unsigned char lenbuf[8];
    uint64_t hlen = 0;
    int ok = fread(lenbuf, 1, 8, f) == 8;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
    char *hdr = ok && hlen <= file_size ? malloc(hlen ? hlen : 1) : NULL;
    ok = hdr && fread(hdr, 1, hlen, f) == hlen;
    fclose(f);
    if (!ok) {
        free(hdr);
        return err_set(err, "cannot read the header of '%s'", st_path_);
    }
    h = hash64(lenbuf, 8, h);
    h = hash64(hdr, hlen, h);
    free(hdr);
    uint64_t sz = file_size;
    *out = hash64(&sz, sizeof sz, h);
    return 0;
}

Model *model_load_weights(const char *dir, char *err) {
    Model *m = calloc(1, sizeof *m);
    Want *w = NULL;
    char cfg_path[4200], st_file[4200];
    if (!m) {
        err_set(err, "out of memory loading '%s'", dir);
        return NULL;
    }
    if (strlen(dir) >= sizeof m->dir) {
        err_set(err, "model directory path too long: '%.64s...'", dir);
        goto fail;
    }
    struct stat sb;
    if (stat(dir, &sb)) {
        err_set(err, "cannot open model directory '%s': %s", dir, strerror(errno));
        goto fail;
    }
    if (!S_ISDIR(sb.st_mode)) {
        err_set(err, "cannot open model directory '%s': Not a directory", dir);
        goto fail;
    }
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(st_file, sizeof st_file, "%s/model.safetensors", dir);

    if (config_load(cfg_path, &m->cfg, err)) goto fail;
    if (!(m->st = st_open(st_file, err))) {
        char bin[4200];
        snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
        if (access(st_file, F_OK) != 0 && access(bin, F_OK) == 0) { /* an older checkpoint: say what to do */
            char first[PROBE_ERR_LEN];
            snprintf(first, sizeof first, "%s", err);
            err_set(err, "%s (the directory has pytorch_model.bin, which probe does not read: save the model as "
                    "safetensors, e.g. transformers' save_pretrained(DIR, safe_serialization=True))", first);
        }
        goto fail;
    }
    size_t L = (size_t)m->cfg.n_layer;
    m->layers = calloc(L, sizeof *m->layers);
    w = calloc(12 * L + 5, sizeof *w);
    if (!m->layers || !w) {
        err_set(err, "out of memory loading '%s'", dir);
        goto fail;
    }
    m->tied = !find_prefixed(m->st, "lm_head.weight");
    int n = want_table(m, w);

    /* Validate everything first, then size the one conversion buffer. */
    size_t n_copy = 0;
    for (int i = 0; i < n; i++) {
        if (check_tensor(m->st, &w[i], err)) goto fail;
        if (w[i].needs_copy) n_copy += (size_t)w[i].t->numel;
    }
    if (n_copy) {
        if (n_copy > SIZE_MAX / sizeof(float) || !(m->converted = malloc(n_copy * sizeof(float)))) {
            err_set(err, "out of memory converting the weights of '%s' (%zu values)", st_file, n_copy);
            goto fail;
        }
    }
    float *dst = m->converted;
    for (int i = 0; i < n; i++) {
        const StTensor *t = w[i].t;
        if (w[i].needs_copy) {
            st_to_f32(t->dtype, t->data, dst, (size_t)t->numel);
            *w[i].dst = dst;
            dst += t->numel;
        } else {
            *w[i].dst = (const float *)t->data;
        }
    }
    for (int i = 0; i < n; i++) {
        if (check_finite(st_file, w[i].t->name, *w[i].dst, w[i].t->numel, err)) goto fail;
        if (!w[i].needs_copy) release_pages(*w[i].dst, (size_t)w[i].t->numel * sizeof(float));
    }
    if (m->tied) m->lm_head = m->wte;
    /* Why the embedding rows are read, not mapped: a page cache of large
     * folios (Linux 6.x) maps up to 2 MB around a touched row, so the few
     * thousand rows of a corpus made all 154 MB of GPT-2's wte resident
     * (measured on GPT-2 small: 64 rows spread over wte added 96 MB of
     * RssFile; `probe record` of the bench corpus held all 510 MB of the
     * file).
     * A row read with pread costs a system call per token; wte is still
     * mapped for the unembedding of commands that compute logits. */
    for (int i = 0; i < n; i++)
        if (w[i].dst == &m->wte) m->wte_by_read = !w[i].needs_copy;
    free(w);
    w = NULL;

    if (model_checksum(cfg_path, st_file, st_file_size(m->st), &m->checksum, err)) goto fail;
    if (model_scratch_init(m, err)) goto fail;
    return m;

fail:
    free(w);
    model_free(m);
    return NULL;
}

Model *model_load(const char *dir, char *err) {
    Model *m = model_load_weights(dir, err);
    if (!m) return NULL;
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (!(m->tok = tok_load(vocab, merges, err))) {
        model_free(m);
        return NULL;
    }
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    model_scratch_free(m);
    tok_free(m->tok);
    free(m->converted);
    free(m->layers);
    st_close(m->st);
    free(m);
}

const float *model_weight(const Model *m, const char *name) {
    if (!strcmp(name, "lm_head.weight")) return m->lm_head;
    Want *w = calloc(12 * (size_t)m->cfg.n_layer + 5, sizeof *w);
    if (!w) return NULL;
    int n = want_table((Model *)m, w); /* only reads the fields' addresses */
    const float *p = NULL;
    for (int i = 0; i < n && !p; i++)
        if (!strcmp(w[i].name, name)) p = *w[i].dst;
    free(w);
    return p;
}

const float *model_converted(const Model *m) { return m->converted; }

ParamCounts model_param_counts(const ModelConfig *cfg, int tied) {
    int64_t L = cfg->n_layer, C = cfg->n_embd, F = cfg->n_inner, P = cfg->n_positions, V = cfg->vocab_size;
    ParamCounts pc;
    pc.embeddings = V * C + P * C;
    pc.attention = L * ((C * 3 * C + 3 * C) + (C * C + C));
    pc.ffn = L * ((C * F + F) + (F * C + C));
    pc.layer_norms = L * 4 * C + 2 * C;
    pc.lm_head = tied ? 0 : V * C;
    pc.total = pc.embeddings + pc.attention + pc.ffn + pc.layer_norms + pc.lm_head;
    return pc;
}
