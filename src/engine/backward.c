/* backward.c — see backward.h. Each step is the derivative of one step of
 * model.c's forward, written out (x: a block's input, y its output, g_
 * the gradient of the loss):
 *   y = x W + b            g_x = g_y W^T                 (matmul_nt_forward)
 *   y = LN(x) w + b        g_x = rstd (a - mean(a) - xhat mean(a xhat)), a = g_y w
 *   y = act(f)             g_f = g_y act'(f)
 *   O = softmax(s Q K^T) V g_V = P^T g_O, g_P = g_O V^T,
 *                          g_S = P (g_P - rowsum(P g_P)), g_Q = s g_S K, g_K = s g_S^T Q
 * and a residual branch adds its input's gradient to the stream's. */
#include "backward.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastexp.h"
#include "kernels.h"
#include "parallel.h"
#include "util.h"

struct FfnGrad {
    Model *m;
    int layer, T;    /* layer: the lowest */
    float *saved;    /* [(L-1-layer) x 2 x P x C] resid_pre, resid_mid of layers above; then [P x C] ln_f's input */
    float *act;      /* [(L-layer) x P x F] the post-activations, lowest first */
    float *grad;     /* [P x F] dLoss/d act of one layer */
    float *g_resid;  /* [P x C] */
    float *g_tmp;    /* [P x C] */
    float *ln;       /* [P x C] */
    float *qkv;      /* [P x 3C] */
    float *g_qkv;    /* [P x 3C] */
    float *f;        /* [P x F] pre-activation */
    float *att;      /* [slots x 2 x B x P] per thread: a block of B query rows' weights and their gradient */
    int slots;
    uint8_t *capture; /* [L] the layers from the lowest up: their post-activations are kept */
    float *mem;
};

FfnGrad *ffn_grad_new(Model *m, int layer, char *err) {
    const ModelConfig *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layer) {
        err_set(err, "layer %d out of range 0..%d", layer, c->n_layer - 1);
        return NULL;
    }
    FfnGrad *g = calloc(1, sizeof *g);
    if (!g) {
        err_set(err, "out of memory");
        return NULL;
    }
    g->m = m;
    g->layer = layer;
    g->slots = parallel_threads();
    size_t P = (size_t)c->n_positions, C = (size_t)c->n_embd, F = (size_t)c->n_inner;
    size_t above = (size_t)(c->n_layer - 1 - layer);
    size_t sizes[] = {(2 * above + 1) * P * C, (above + 1) * P * F, P * F, P * C, P * C, P * C, 3 * P * C, 3 * P * C, P * F,
                      (size_t)g->slots * 2 * (PROBE_ATT_BLOCK < P ? PROBE_ATT_BLOCK : P) * P};
    float **ptrs[] = {&g->saved, &g->act, &g->grad, &g->g_resid, &g->g_tmp, &g->ln, &g->qkv, &g->g_qkv, &g->f, &g->att};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    g->mem = malloc(total * sizeof(float));
    if (!g->mem) {
        err_set(err, "out of memory allocating %zu MB for the backward pass", total * 4 >> 20);
        free(g);
        return NULL;
    }
    if (!(g->capture = calloc((size_t)c->n_layer, 1))) {
        err_set(err, "out of memory");
        ffn_grad_free(g);
        return NULL;
    }
    memset(g->capture + layer, 1, (size_t)(c->n_layer - layer));
    float *p = g->mem;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    return g;
}

void ffn_grad_free(FfnGrad *g) {
    if (!g) return;
    free(g->capture);
    free(g->mem);
    free(g);
}

static float *act_at(const FfnGrad *g, int l) {
    return g->act + (size_t)(l - g->layer) * g->m->cfg.n_positions * g->m->cfg.n_inner;
}

/* ---- the forward: observers keep what the backward reads ------------------ */

static float *saved_at(const FfnGrad *g, int l, ResidPoint pt) {
    const ModelConfig *c = &g->m->cfg;
    size_t PC = (size_t)c->n_positions * c->n_embd;
    if (l < 0) return g->saved + (size_t)2 * (c->n_layer - 1 - g->layer) * PC; /* ln_f's input */
    return g->saved + ((size_t)2 * (l - g->layer - 1) + (pt == RESID_MID)) * PC;
}

static void keep_act(void *user, int layer, const float *act, int T, int F) {
    FfnGrad *g = user;
    memcpy(act_at(g, layer), act, sizeof(float) * (size_t)T * F);
}

static void keep_resid(void *user, int layer, ResidPoint pt, const float *resid, int T, int C) {
    FfnGrad *g = user;
    float *dst = NULL;
    if (layer > g->layer && pt != RESID_POST) dst = saved_at(g, layer, pt);
    if (layer == g->m->cfg.n_layer - 1 && pt == RESID_POST) dst = saved_at(g, -1, pt);
    if (dst) memcpy(dst, resid, sizeof(float) * (size_t)T * C);
}

int ffn_grad_forward(FfnGrad *g, const int32_t *ids, int T, float *logits, char *err) {
    ForwardHooks h = {.capture = g->capture, .observe = keep_act, .user = g, .observe_resid = keep_resid};
    if (model_forward(g->m, ids, T, &h, logits, err)) return -1;
    g->T = T;
    return 0;
}

/* ---- layer norm ------------------------------------------------------------ */

typedef struct {
    float *g_x;          /* += */
    const float *x, *w, *g_y;
    float eps;
    int T, C;
} LnBackJob;

static void ln_back_task(void *ctx, int tid, int nt) {
    const LnBackJob *j = ctx;
    const int C = j->C;
    int t0, t1;
    parallel_slice(j->T, 1, tid, nt, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const float *x = j->x + (size_t)t * C, *gy = j->g_y + (size_t)t * C;
        float *gx = j->g_x + (size_t)t * C;
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        double rstd = 1.0 / sqrt(var / C + j->eps);
        double ma = 0, max = 0; /* mean(a), mean(a xhat) */
        for (int i = 0; i < C; i++) {
            double a = (double)gy[i] * j->w[i], xh = (x[i] - mean) * rstd;
            ma += a;
            max += a * xh;
        }
        ma /= C;
        max /= C;
        for (int i = 0; i < C; i++) {
            double a = (double)gy[i] * j->w[i], xh = (x[i] - mean) * rstd;
            gx[i] += (float)(rstd * (a - ma - xh * max));
        }
    }
}

/* g_x += dLN/dx^T g_y for out = LN(x) w + b over T rows. */
static void layernorm_backward_add(float *g_x, const float *x, const float *w, const float *g_y, float eps, int T,
                                   int C) {
    LnBackJob j = {g_x, x, w, g_y, eps, T, C};
    parallel_run(ln_back_task, &j);
}

/* ---- activation ------------------------------------------------------------ */

typedef struct {
    float *g;            /* in: g_y, out: g_f */
    const float *f;
    size_t n;
    Activation act;
} ActBackJob;

/* g *= act'(f) over n values, one loop per activation so that each
 * vectorises (gelu_new's tanh through exp_f32, as the forward's GELU:
 * tanh(u) = 1 - 2 / (1 + exp(2u)), which saturates to +-1 without a NaN). */
static void act_back_range(Activation a, float *restrict g, const float *restrict f, size_t n) {
    switch (a) {
    case ACT_GELU_NEW: {
        const float s = 0.7978845608028654f, k = 0.044715f;
        for (size_t i = 0; i < n; i++) {
            float x = f[i], th = 1.0f - 2.0f / (1.0f + exp_f32(2.0f * s * (x + k * x * x * x)));
            g[i] *= 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * s * (1.0f + 3.0f * k * x * x);
        }
        break;
    }
    case ACT_GELU:
        for (size_t i = 0; i < n; i++) {
            float x = f[i];
            g[i] *= 0.5f * (1.0f + erff(x * 0.7071067811865476f)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
        }
        break;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) g[i] = f[i] > 0.0f ? g[i] : 0.0f;
        break;
    }
}

static void act_back_task(void *ctx, int tid, int nt) {
    const ActBackJob *j = ctx;
    size_t lo = j->n * (size_t)tid / (size_t)nt, hi = j->n * (size_t)(tid + 1) / (size_t)nt;
    act_back_range(j->act, j->g + lo, j->f + lo, hi - lo);
}

/* ---- attention ------------------------------------------------------------- */

typedef struct {
    float *g_qkv;        /* [T x 3C] out */
    float *att;
    const float *qkv, *g_out; /* g_out [T x C]: dLoss/d concatenated head outputs */
    int T, C, NH, slots;
    float scale; /* the forward's factor on q.k (config_attn_scale) */
} AttBackJob;

/* One head, in blocks of query rows as the forward (attention_forward):
 * block [r0, r1) only involves keys [0, r1), so the masked upper triangle
 * is never computed; the gradients of K and V add up over the blocks. */
static void att_back_head(const AttBackJob *j, float *P, float *dP, int h) {
    const int T = j->T, C = j->C, HS = C / j->NH, C3 = 3 * C;
    const float scale = j->scale;
    const float *q = j->qkv + h * HS, *k = j->qkv + C + h * HS, *v = j->qkv + 2 * C + h * HS;
    const float *gO = j->g_out + h * HS;
    float *gq = j->g_qkv + h * HS, *gk = j->g_qkv + C + h * HS, *gv = j->g_qkv + 2 * C + h * HS;
    for (int t = 0; t < T; t++) {
        memset(gk + (size_t)t * C3, 0, sizeof(float) * (size_t)HS);
        memset(gv + (size_t)t * C3, 0, sizeof(float) * (size_t)HS);
    }
    for (int r0 = 0; r0 < T; r0 += PROBE_ATT_BLOCK) {
        int r1 = r0 + PROBE_ATT_BLOCK < T ? r0 + PROBE_ATT_BLOCK : T, M = r1 - r0, N = r1;
        const float *qb = q + (size_t)r0 * C3, *gOb = gO + (size_t)r0 * C;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, HS, scale, qb, C3, k, C3, 0.0f, P, N);
        for (int i = 0; i < M; i++) { /* causal softmax of query r0+i over keys 0..r0+i */
            float *row = P + (size_t)i * N, mx = row_max(row, r0 + i + 1);
            double sum = 0;
            for (int c = 0; c <= r0 + i; c++) sum += row[c] = exp_f32(row[c] - mx);
            float inv = (float)(1.0 / sum);
            for (int c = 0; c <= r0 + i; c++) row[c] *= inv;
            for (int c = r0 + i + 1; c < N; c++) row[c] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, HS, 1.0f, gOb, C, v, C3, 0.0f, dP, N);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, HS, M, 1.0f, P, N, gOb, C, 1.0f, gv, C3);
        for (int i = 0; i < M; i++) { /* dP -> dS */
            const float *p = P + (size_t)i * N;
            float *d = dP + (size_t)i * N;
            double dot = 0;
            for (int c = 0; c <= r0 + i; c++) dot += (double)p[c] * d[c];
            for (int c = 0; c <= r0 + i; c++) d[c] = p[c] * (d[c] - (float)dot);
            for (int c = r0 + i + 1; c < N; c++) d[c] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, HS, N, scale, dP, N, k, C3, 0.0f,
                    gq + (size_t)r0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, HS, M, scale, dP, N, qb, C3, 1.0f, gk, C3);
    }
}

static void att_back_task(void *ctx, int tid, int nt) {
    const AttBackJob *j = ctx;
    int users = nt < j->slots ? nt : j->slots;
    if (tid >= users) return;
    int h0, h1;
    parallel_slice(j->NH, 1, tid, users, &h0, &h1);
    size_t block = (size_t)(PROBE_ATT_BLOCK < j->T ? PROBE_ATT_BLOCK : j->T) * j->T;
    float *P = j->att + (size_t)tid * 2 * block;
    for (int h = h0; h < h1; h++) att_back_head(j, P, P + block, h);
}

/* ---- the backward pass ----------------------------------------------------- */

/* g_resid holds dLoss/d resid_post of layer l on entry, dLoss/d resid_pre on
 * return; fn gets the post-activation's gradient on the way. */
static void layer_backward(FfnGrad *g, int l, FfnGradFn fn, void *user) {
    Model *m = g->m;
    const ModelConfig *c = &m->cfg;
    const LayerParams *p = &m->layers[l];
    const int T = g->T, C = c->n_embd, F = c->n_inner;
    const float eps = c->layer_norm_epsilon;
    const float *x = saved_at(g, l, RESID_PRE), *x_mid = saved_at(g, l, RESID_MID);

    /* FFN block: resid_post = x_mid + act(LN2(x_mid) W_fc + b_fc) W_proj + b */
    layernorm_forward(g->ln, x_mid, p->ln2_w, p->ln2_b, eps, T, C);
    matmul_forward(g->f, g->ln, p->fc_w, p->fc_b, T, C, F, 0);
    matmul_nt_forward(g->grad, g->g_resid, p->proj_w, T, C, F); /* g_act */
    fn(user, l, act_at(g, l), g->grad, T, F);
    ActBackJob aj = {g->grad, g->f, (size_t)T * F, c->activation};
    parallel_run(act_back_task, &aj);
    matmul_nt_forward(g->g_tmp, g->grad, p->fc_w, T, F, C); /* g_ln2 */
    layernorm_backward_add(g->g_resid, x_mid, p->ln2_w, g->g_tmp, eps, T, C);

    /* attention block: x_mid = x + attn(LN1(x) W_qkv + b) W_o + b_o */
    layernorm_forward(g->ln, x, p->ln1_w, p->ln1_b, eps, T, C);
    matmul_forward(g->qkv, g->ln, p->qkv_w, p->qkv_b, T, C, 3 * C, 0);
    matmul_nt_forward(g->g_tmp, g->g_resid, p->attn_proj_w, T, C, C); /* g of the head outputs */
    AttBackJob j = {g->g_qkv, g->att, g->qkv, g->g_tmp, T, C, c->n_head, g->slots, config_attn_scale(c, l)};
    parallel_run(att_back_task, &j);
    matmul_nt_forward(g->ln, g->g_qkv, p->qkv_w, T, 3 * C, C); /* g_ln1 (ln as scratch) */
    layernorm_backward_add(g->g_resid, x, p->ln1_w, g->ln, eps, T, C);
}

int ffn_grad_backward(FfnGrad *g, const float *dlogits, FfnGradFn fn, void *user, char *err) {
    Model *m = g->m;
    const ModelConfig *c = &m->cfg;
    const int T = g->T, C = c->n_embd, F = c->n_inner, V = c->vocab_size;
    if (T < 1) return err_set(err, "no forward pass to differentiate");
    /* unembedding (logits = final lm_head^T), then ln_f */
    matmul_forward(g->g_tmp, dlogits, m->lm_head, NULL, T, V, C, 0);
    memset(g->g_resid, 0, sizeof(float) * (size_t)T * C);
    layernorm_backward_add(g->g_resid, saved_at(g, -1, RESID_POST), m->lnf_w, g->g_tmp, c->layer_norm_epsilon, T, C);
    for (int l = c->n_layer - 1; l > g->layer; l--) layer_backward(g, l, fn, user);
    /* g_resid = dLoss/d resid_post of the lowest layer, which adds act W_proj */
    matmul_nt_forward(g->grad, g->g_resid, m->layers[g->layer].proj_w, T, C, F);
    fn(user, g->layer, act_at(g, g->layer), g->grad, T, F);
    return 0;
}
