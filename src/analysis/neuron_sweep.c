/* neuron_sweep.c — see neuron_sweep.h. Per window: the forward with logits
 * (backward.h keeps what it needs), the softmax's gradient of the summed
 * next-token loss written over the logits in place (p - onehot on the rows
 * that predict a token, 0 elsewhere), the backward, and per swept layer
 * each neuron's sum over positions in double. */
#include "neuron_sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "logits.h"
#include "util.h"

typedef struct {
    Model *m;
    FfnGrad *g;
    float *logits;        /* [ctx x V] */
    const float *means;   /* [L x F] or NULL */
    NeuronSweep *s;
    double nll;
    int64_t positions;
} SweepJob;

/* One layer's post-activation and its gradient: the neurons' sums. */
static void add_layer(void *user, int layer, const float *act, const float *grad, int T, int F) {
    SweepJob *j = user;
    if (layer < j->s->first || layer > j->s->last) return;
    double *est = j->s->estimate + (size_t)layer * F, *sum = j->s->act_mean + (size_t)layer * F;
    const float *v = j->means ? j->means + (size_t)layer * F : NULL;
    for (int t = 0; t < T; t++) {
        const float *at = act + (size_t)t * F, *gt = grad + (size_t)t * F;
        for (int n = 0; n < F; n++) {
            est[n] += (double)(((v ? v[n] : 0.0f) - at[n]) * gt[n]);
            sum[n] += at[n];
        }
    }
}

static int sweep_window(void *user, const int32_t *ids, int len, int from, int doc, int offset, char *err) {
    SweepJob *j = user;
    (void)doc, (void)offset;
    const int V = j->m->cfg.vocab_size;
    if (ffn_grad_forward(j->g, ids, len, j->logits, err)) return -1;
    for (int t = 0; t < len; t++) {
        float *z = j->logits + (size_t)t * V;
        if (t < from - 1 || t == len - 1) { /* predicts nothing scored */
            memset(z, 0, sizeof(float) * (size_t)V);
            continue;
        }
        int target = ids[t + 1];
        double mx = z[logits_argmax(z, V)];
        double zt = z[target];
        double sum = logits_exp_sum(z, V, mx, z); /* z = exp(z - mx) */
        j->nll += mx + log(sum) - zt;
        logits_scale_sum(z, V, 1.0 / sum);        /* z = softmax */
        z[target] -= 1.0f;
    }
    if (ffn_grad_backward(j->g, j->logits, add_layer, j, err)) return -1;
    j->positions += len;
    return 0;
}

int neuron_sweep_estimate(Model *m, DocSource *src, int ctx, int layer, const float *means,
                          AblateProgressFn progress, void *user, NeuronSweep *out, char *err) {
    const int F = m->cfg.n_inner, L = m->cfg.n_layer;
    memset(out, 0, sizeof *out);
    if (layer >= L) return err_set(err, "layer %d out of range 0..%d", layer, L - 1);
    if (ctx < 2 || ctx > m->cfg.n_positions) return err_set(err, "context %d out of range 2..%d", ctx, m->cfg.n_positions);
    *out = (NeuronSweep){.n_layer = L, .n = F, .first = layer < 0 ? 0 : layer, .last = layer < 0 ? L - 1 : layer};
    SweepJob j = {.m = m, .means = means, .s = out};
    int rc = -1;
    if (!(j.g = ffn_grad_new(m, out->first, err))) return -1;
    j.logits = malloc(sizeof(float) * (size_t)ctx * (size_t)m->cfg.vocab_size);
    out->estimate = calloc((size_t)L * F, sizeof(double));
    out->act_mean = calloc((size_t)L * F, sizeof(double));
    if (!j.logits || !out->estimate || !out->act_mean) {
        err_set(err, "out of memory");
        goto done;
    }
    int swept = F * (out->last - out->first + 1);
    if (windows_each(src, ctx, sweep_window, &j, swept, progress, user, &out->count, err)) goto done;
    double n = out->count.tokens > 0 ? (double)out->count.tokens : 1.0, pos = j.positions > 0 ? (double)j.positions : 1.0;
    for (size_t k = 0; k < (size_t)L * F; k++) {
        out->estimate[k] /= n;
        out->act_mean[k] /= pos;
    }
    out->base_ce = j.nll / n;
    rc = 0;
done:
    ffn_grad_free(j.g);
    free(j.logits);
    if (rc) neuron_sweep_free(out);
    return rc;
}

void neuron_sweep_free(NeuronSweep *s) {
    free(s->estimate);
    free(s->act_mean);
    s->estimate = s->act_mean = NULL;
}

/* Ranked order: larger estimate first, then lower layer, then lower neuron
 * (index = layer * n + neuron). A sort, not a selection: the JSON lists
 * every neuron, 36,864 for GPT-2 small. */
typedef struct {
    double estimate;
    int index; /* layer * n + neuron */
} Ranked;

static int ranked_cmp(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->estimate != y->estimate) return x->estimate > y->estimate ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

void neuron_sweep_top(const NeuronSweep *s, int k, int *layer, int *neuron, int *k_out) {
    int total = s->n * (s->last - s->first + 1);
    Ranked *r = malloc(sizeof *r * (size_t)(total > 0 ? total : 1));
    *k_out = 0;
    if (!r) return; /* out of memory: nothing listed */
    for (int i = 0; i < total; i++) {
        int idx = s->first * s->n + i;
        r[i] = (Ranked){s->estimate[idx], idx};
    }
    qsort(r, (size_t)total, sizeof *r, ranked_cmp);
    if (k > total) k = total;
    for (int i = 0; i < k; i++) {
        layer[i] = r[i].index / s->n;
        neuron[i] = r[i].index % s->n;
    }
    *k_out = k > 0 ? k : 0;
    free(r);
}
