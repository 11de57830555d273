/* ablate.c — see ablate.h. The baseline of a window is one plain forward;
 * each condition is one forward with its hooks, compared row by row with
 * the kept baseline. Per row: loss = lse - z[target], argmax, and
 * KL(base || ablated) from the kept baseline probabilities. */
#include "ablate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "logits.h"
#include "util.h"

struct Ablator {
    Model *m;
    int ctx, V;
    /* baseline of the current window, rows 0..T-2 (row t predicts ids[t+1]) */
    float *base_logits; /* [ctx x V] */
    float *base_prob;   /* [ctx x V] softmax of base_logits, float */
    double *base_lse;   /* [ctx] log-sum-exp of each row */
    double *base_psum;  /* [ctx] sum of base_prob's row in double */
    int32_t *base_top;  /* [ctx] argmax of each row */
    float *logits;      /* [ctx x V] the ablated forward */
    const int32_t *ids; /* the current window (borrowed) */
    int T, from;
    int start_layer;    /* > 0: the baseline keeps the stream entering it */
    float *start_resid; /* [ctx x C] that stream */
};

int ablator_start_at(Ablator *a, int layer, char *err) {
    if (layer < 0 || layer >= a->m->cfg.n_layer)
        return err_set(err, "layer %d out of range 0..%d", layer, a->m->cfg.n_layer - 1);
    a->start_layer = layer;
    if (layer && !a->start_resid) {
        a->start_resid = malloc(sizeof(float) * (size_t)a->ctx * (size_t)a->m->cfg.n_embd);
        if (!a->start_resid) {
            a->start_layer = 0;
            return err_set(err, "out of memory");
        }
    }
    return 0;
}

static void keep_start_resid(void *user, int layer, ResidPoint pt, const float *resid, int T, int C) {
    Ablator *a = user;
    if (layer == a->start_layer && pt == RESID_PRE) memcpy(a->start_resid, resid, sizeof(float) * (size_t)T * C);
}

/* Whether hooks change nothing below the kept stream's layer. */
static int starts_late(const Ablator *a, const ForwardHooks *h) {
    if (!a->start_layer || !h || h->observe_resid || (h->observe && h->capture)) return 0;
    for (int e = 0; e < h->n_edits; e++)
        if (h->edits[e].layer < a->start_layer) return 0;
    for (int l = 0; l < a->start_layer && h->remove_ffn; l++)
        if (h->remove_ffn[l]) return 0;
    return 1;
}

Ablator *ablator_new(Model *m, int ctx, char *err) {
    if (ctx < 1 || ctx > m->cfg.n_positions) {
        err_set(err, "context %d out of range 1..%d", ctx, m->cfg.n_positions);
        return NULL;
    }
    Ablator *a = calloc(1, sizeof *a);
    if (!a) goto oom;
    a->m = m;
    a->ctx = ctx;
    a->V = m->cfg.vocab_size;
    size_t rows = (size_t)ctx * (size_t)a->V;
    a->base_logits = malloc(sizeof(float) * rows);
    a->base_prob = malloc(sizeof(float) * rows);
    a->logits = malloc(sizeof(float) * rows);
    a->base_lse = malloc(sizeof(double) * (size_t)ctx);
    a->base_psum = malloc(sizeof(double) * (size_t)ctx);
    a->base_top = malloc(sizeof(int32_t) * (size_t)ctx);
    if (!a->base_logits || !a->base_prob || !a->logits || !a->base_lse || !a->base_psum || !a->base_top)
        goto oom;
    return a;
oom:
    ablator_free(a);
    err_set(err, "out of memory for ablation buffers (3 x %d x %d floats)", ctx, m->cfg.vocab_size);
    return NULL;
}

void ablator_free(Ablator *a) {
    if (!a) return;
    free(a->base_logits);
    free(a->base_prob);
    free(a->logits);
    free(a->base_lse);
    free(a->base_psum);
    free(a->base_top);
    free(a->start_resid);
    free(a);
}

int ablator_baseline(Ablator *a, const int32_t *ids, int T, int from, char *err) {
    if (T < 1 || T > a->ctx) return err_set(err, "window of %d tokens exceeds the context %d", T, a->ctx);
    if (from < 1 || from > T) return err_set(err, "first predicted token %d out of range 1..%d", from, T);
    a->ids = ids;
    a->T = T;
    a->from = from;
    ForwardHooks keep = {.observe_resid = keep_start_resid, .user = a};
    if (model_forward(a->m, ids, T, a->start_layer ? &keep : NULL, a->base_logits, err)) return -1;
    int V = a->V;
    for (int t = from - 1; t < T - 1; t++) {
        const float *z = a->base_logits + (size_t)t * V;
        float *p = a->base_prob + (size_t)t * V;
        int top = logits_argmax(z, V); /* also the row's max */
        double mx = z[top], sum = logits_exp_sum(z, V, mx, p);
        double psum = logits_scale_sum(p, V, 1.0 / sum), lse = mx + log(sum);
        a->base_lse[t] = lse;
        a->base_psum[t] = psum;
        a->base_top[t] = top;
    }
    return 0;
}

int ablator_count(const Ablator *a) { return a->T - a->from; }

int ablator_measure(Ablator *a, const ForwardHooks *hooks, TokenEffect *effects, AblateTotals *tot,
                    char *err) {
    if (!a->ids) return err_set(err, "no baseline computed");
    ForwardHooks late;
    if (starts_late(a, hooks)) {
        late = *hooks;
        late.start_layer = a->start_layer;
        late.start_resid = a->start_resid;
        hooks = &late;
    }
    if (model_forward(a->m, a->ids, a->T, hooks, a->logits, err)) return -1;
    int V = a->V;
    for (int j = a->from; j < a->T; j++) {
        int t = j - 1, target = a->ids[j];
        const float *zb = a->base_logits + (size_t)t * V, *za = a->logits + (size_t)t * V;
        int top = logits_argmax(za, V);
        double lse_a = (double)za[top] + log(logits_exp_sum(za, V, za[top], NULL));
        TokenEffect e = {
            .pos = j,
            .token = target,
            .base_loss = a->base_lse[t] - (double)zb[target],
            .abl_loss = lse_a - (double)za[target],
            .kl = logits_kl(a->base_prob + (size_t)t * V, a->base_psum[t], zb, a->base_lse[t], za,
                                lse_a, V),
            .base_top = a->base_top[t],
            .abl_top = top,
        };
        if (effects) effects[j - a->from] = e;
        tot->n++;
        tot->base_nll += e.base_loss;
        tot->abl_nll += e.abl_loss;
        tot->kl += e.kl;
        tot->dloss_sq += (e.abl_loss - e.base_loss) * (e.abl_loss - e.base_loss);
        tot->agree += e.base_top == e.abl_top;
    }
    return 0;
}

void ablate_figures(const AblateTotals *t, AblateFigures *f) {
    memset(f, 0, sizeof *f);
    f->n = t->n;
    if (t->n == 0) return;
    double n = (double)t->n;
    f->base_ce = t->base_nll / n;
    f->abl_ce = t->abl_nll / n;
    f->base_ppl = exp(f->base_ce);
    f->abl_ppl = exp(f->abl_ce);
    f->dloss = f->abl_ce - f->base_ce;
    if (t->n > 1) {
        double var = (t->dloss_sq - n * f->dloss * f->dloss) / (n - 1.0);
        f->dloss_se = sqrt((var > 0 ? var : 0) / n);
    }
    f->kl = t->kl / n;
    f->agreement = (double)t->agree / n;
}
