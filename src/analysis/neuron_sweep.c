/* neuron_sweep.c — see neuron_sweep.h. Per window: the forward with logits
 * (backward.h keeps what it needs), the softmax's gradient of the summed
 * next-token loss written over the logits in place (p - onehot on the rows
 * that predict a token, 0 elsewhere), the backward to the layer's
 * post-activation, then each neuron's sum over positions in double. */
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
    const float *means;   /* [F] or NULL */
    double *est, *act_sum;
    double nll;
    int64_t positions;
} SweepJob;

static int sweep_window(void *user, const int32_t *ids, int len, int from, int doc, int offset, char *err) {
    SweepJob *j = user;
    (void)doc, (void)offset;
    const int V = j->m->cfg.vocab_size, F = j->m->cfg.n_inner;
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
    if (ffn_grad_backward(j->g, j->logits, err)) return -1;
    const float *a = ffn_grad_act(j->g), *gr = ffn_grad_grad(j->g);
    for (int t = 0; t < len; t++) {
        const float *at = a + (size_t)t * F, *gt = gr + (size_t)t * F;
        for (int n = 0; n < F; n++) {
            float v = j->means ? j->means[n] : 0.0f;
            j->est[n] += (double)((v - at[n]) * gt[n]);
            j->act_sum[n] += at[n];
        }
    }
    j->positions += len;
    return 0;
}

int neuron_sweep_estimate(Model *m, DocSource *src, int ctx, int layer, const float *means,
                          AblateProgressFn progress, void *user, NeuronSweep *out, char *err) {
    const int F = m->cfg.n_inner;
    memset(out, 0, sizeof *out);
    out->layer = layer;
    out->n = F;
    SweepJob j = {.m = m, .means = means};
    int rc = -1;
    if (ctx < 2 || ctx > m->cfg.n_positions) return err_set(err, "context %d out of range 2..%d", ctx, m->cfg.n_positions);
    if (!(j.g = ffn_grad_new(m, layer, err))) return -1;
    j.logits = malloc(sizeof(float) * (size_t)ctx * (size_t)m->cfg.vocab_size);
    out->estimate = calloc((size_t)F, sizeof(double));
    out->act_mean = calloc((size_t)F, sizeof(double));
    if (!j.logits || !out->estimate || !out->act_mean) {
        err_set(err, "out of memory");
        goto done;
    }
    j.est = out->estimate;
    j.act_sum = out->act_mean;
    if (windows_each(src, ctx, sweep_window, &j, F, progress, user, &out->count, err)) goto done;
    double n = out->count.tokens > 0 ? (double)out->count.tokens : 1.0;
    for (int k = 0; k < F; k++) {
        out->estimate[k] /= n;
        out->act_mean[k] /= j.positions > 0 ? (double)j.positions : 1.0;
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

void neuron_sweep_top(const NeuronSweep *s, int k, int *top) {
    /* k is small next to n: a selection by insertion into top[] */
    int have = 0;
    if (k > s->n) k = s->n;
    for (int j = 0; j < s->n && k > 0; j++) {
        double e = s->estimate[j];
        if (have == k && !(e > s->estimate[top[k - 1]])) continue;
        int i = have < k ? have++ : k - 1;
        while (i > 0 && e > s->estimate[top[i - 1]]) {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = j;
    }
}
