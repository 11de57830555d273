/* explain.c — direct logit attribution (explain.h has the math). One
 * forward pass with two read-only observers copies, at the explained
 * position only, the residual stream at every point of every layer and each
 * layer's FFN post-activation; the rest is dot products in double. */
#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logits.h"
#include "util.h"

typedef struct {
    int pos, C, F;
    float *resid; /* [L x 3 x C]: the row at pos at RESID_PRE, _MID, _POST */
    float *act;   /* [L x F]: the FFN post-activation row at pos */
} ExplainCapture;

static void capture_resid(void *user, int layer, ResidPoint point, const float *resid, int T, int C) {
    ExplainCapture *c = user;
    (void)T;
    memcpy(c->resid + ((size_t)layer * 3 + point) * C, resid + (size_t)c->pos * C, sizeof(float) * (size_t)C);
}

static void capture_act(void *user, int layer, const float *act, int T, int F) {
    ExplainCapture *c = user;
    (void)T;
    memcpy(c->act + (size_t)layer * F, act + (size_t)c->pos * F, sizeof(float) * (size_t)F);
}

/* The logit map with ln_f's scale frozen: f(c) = ((c - mean(c)) . g) / sigma
 * with g = gamma * u and G = sum(g), i.e. (c . g - mean(c) G) / sigma. */
typedef struct {
    const double *g;
    double G, sigma;
    int C;
} LogitMap;

static double logit_map(const LogitMap *lm, const double *c) {
    double dot = 0, sum = 0;
    for (int i = 0; i < lm->C; i++) {
        dot += c[i] * lm->g[i];
        sum += c[i];
    }
    return (dot - sum / lm->C * lm->G) / lm->sigma;
}

static double logit_map_f(const LogitMap *lm, const float *c) {
    double dot = 0, sum = 0;
    for (int i = 0; i < lm->C; i++) {
        dot += (double)c[i] * lm->g[i];
        sum += c[i];
    }
    return (dot - sum / lm->C * lm->G) / lm->sigma;
}

/* d[i] = a[i] - b[i] in double (exact for floats of similar size). */
static void diff(double *d, const float *a, const float *b, int C) {
    for (int i = 0; i < C; i++) d[i] = (double)a[i] - (double)b[i];
}

/* Inserts (layer's neuron j, value v) into out[0..filled), kept in
 * descending |value| (an equal one goes after: ties to the lower index);
 * returns the new fill, at most k. */
static int top_insert(ExplainNeuron *out, int filled, int k, ExplainNeuron n) {
    double a = fabs(n.value);
    if (!(a == a)) return filled;
    if (filled == k && !(a > fabs(out[k - 1].value))) return filled;
    int at = filled < k ? filled++ : k - 1;
    for (; at > 0 && fabs(out[at - 1].value) < a; at--) out[at] = out[at - 1];
    out[at] = n;
    return filled;
}

/* A layer's FFN part by neuron: its top_k neurons (top_k <= F) by
 * |act_j f(v_j)| into out[0..top_k), and the c_proj bias's part in *bias. */
static void explain_neurons(const Model *m, const LogitMap *lm, int layer, const float *act, int top_k,
                            ExplainNeuron *out, double *bias) {
    const LayerParams *p = &m->layers[layer];
    const int C = m->cfg.n_embd, F = m->cfg.n_inner;
    int filled = 0;
    for (int j = 0; j < F; j++) {
        double v = act[j] * logit_map_f(lm, p->proj_w + (size_t)j * C);
        filled = top_insert(out, filled, top_k,
                            (ExplainNeuron){.layer = layer, .neuron = j, .act = act[j], .value = v});
    }
    *bias = logit_map_f(lm, p->proj_b);
}

void explain_free(Explanation *e) {
    if (!e) return;
    free(e->parts);
    free(e->neurons);
    free(e->ffn_bias);
    free(e->ffn_rest);
    memset(e, 0, sizeof *e);
}

const char *explain_part_name(const ExplainPart *p, char *buf, int cap) {
    switch (p->kind) {
    case EXPLAIN_EMBED: snprintf(buf, (size_t)cap, "embed"); break;
    case EXPLAIN_ATTN: snprintf(buf, (size_t)cap, "attn %d", p->layer); break;
    case EXPLAIN_FFN: snprintf(buf, (size_t)cap, "ffn %d", p->layer); break;
    case EXPLAIN_LNF_BIAS: snprintf(buf, (size_t)cap, "ln_f bias"); break;
    }
    return buf;
}

/* Fills e from the captured rows and the target's logit. */
static int explain_compute(const Model *m, const ExplainCapture *cap, Explanation *e, char *err) {
    const ModelConfig *cfg = &m->cfg;
    const int L = cfg->n_layer, C = cfg->n_embd, K = e->top_k;
    double *g = malloc(sizeof(double) * (size_t)C), *c = malloc(sizeof(double) * (size_t)C);
    e->parts = malloc(sizeof(ExplainPart) * (size_t)e->n_parts);
    e->neurons = calloc((size_t)L * K, sizeof(ExplainNeuron));
    e->ffn_bias = malloc(sizeof(double) * (size_t)L);
    e->ffn_rest = malloc(sizeof(double) * (size_t)L);
    if (!g || !c || !e->parts || !e->neurons || !e->ffn_bias || !e->ffn_rest) {
        free(g);
        free(c);
        return err_set(err, "out of memory");
    }
    /* ln_f's scale at pos, from the residual stream it normalized */
    const float *x = cap->resid + ((size_t)(L - 1) * 3 + RESID_POST) * C;
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += x[i];
    mean /= C;
    for (int i = 0; i < C; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    e->sigma = sqrt(var / C + (double)cfg->layer_norm_epsilon);

    const float *u = m->lm_head + (size_t)e->target * C;
    LogitMap lm = {g, 0, e->sigma, C};
    double beta_u = 0;
    for (int i = 0; i < C; i++) {
        g[i] = (double)m->lnf_w[i] * u[i];
        lm.G += g[i];
        beta_u += (double)m->lnf_b[i] * u[i];
    }

    int n = 0;
    e->parts[n++] = (ExplainPart){EXPLAIN_EMBED, -1, logit_map_f(&lm, cap->resid)};
    for (int l = 0; l < L; l++) {
        const float *pre = cap->resid + (size_t)l * 3 * C, *mid = pre + C, *post = mid + C;
        diff(c, mid, pre, C);
        e->parts[n++] = (ExplainPart){EXPLAIN_ATTN, l, logit_map(&lm, c)};
        diff(c, post, mid, C);
        double ffn = logit_map(&lm, c);
        e->parts[n++] = (ExplainPart){EXPLAIN_FFN, l, ffn};
        ExplainNeuron *top = e->neurons + (size_t)l * K;
        explain_neurons(m, &lm, l, cap->act + (size_t)l * cap->F, K, top, &e->ffn_bias[l]);
        double shown = 0;
        for (int k = 0; k < K; k++) shown += top[k].value;
        e->ffn_rest[l] = ffn - e->ffn_bias[l] - shown;
    }
    e->parts[n++] = (ExplainPart){EXPLAIN_LNF_BIAS, -1, beta_u};
    e->sum = 0;
    for (int i = 0; i < n; i++) e->sum += e->parts[i].value;
    free(g);
    free(c);
    return 0;
}

int explain_run(Model *m, const int32_t *ids, int T, int pos, int target, int top_k, Explanation *e,
                char *err) {
    const ModelConfig *cfg = &m->cfg;
    const int L = cfg->n_layer, C = cfg->n_embd, F = cfg->n_inner, V = cfg->vocab_size;
    memset(e, 0, sizeof *e);
    if (pos < 0 || pos >= T) return err_set(err, "position %d outside the window 0..%d", pos, T - 1);
    if (target >= V) return err_set(err, "token id %d outside the model's vocabulary 0..%d", target, V - 1);
    if (top_k < 1 || top_k > F) return err_set(err, "top %d neurons outside 1..%d (n_inner)", top_k, F);
    const int n = pos + 1; /* causal: later tokens cannot change position pos */
    ExplainCapture cap = {pos, C, F, malloc(sizeof(float) * (size_t)L * 3 * C), malloc(sizeof(float) * (size_t)L * F)};
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    uint8_t *capture = malloc((size_t)L);
    int rc = -1;
    if (!cap.resid || !cap.act || !logits || !capture) {
        err_set(err, "out of memory");
        goto done;
    }
    memset(capture, 1, (size_t)L);
    ForwardHooks hooks = {.capture = capture, .observe = capture_act, .user = &cap, .observe_resid = capture_resid};
    if (model_forward(m, ids, n, &hooks, logits, err)) goto done;
    const float *row = logits + (size_t)pos * V;
    *e = (Explanation){.pos = pos, .predicted = logits_argmax(row, V), .n_layer = L, .top_k = top_k,
                       .n_parts = 2 + 2 * L};
    e->target = target >= 0 ? target : e->predicted;
    e->logit = row[e->target];
    if (!isfinite(e->logit)) {
        err_set(err, "the model's logit is not finite at position %d (the forward pass overflows)", pos);
        goto done;
    }
    if (explain_compute(m, &cap, e, err)) goto done;
    rc = 0;
done:
    if (rc) explain_free(e);
    free(cap.resid);
    free(cap.act);
    free(logits);
    free(capture);
    return rc;
}
