/* kv.c — see kv.h. */
#include "kv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void kv_shuffle(int n, uint64_t seed, int32_t *perm) {
    uint64_t s = seed ? seed : 1;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* Sattolo: j < i, so one cycle */
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int j = (int)(s % (uint64_t)i);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static int i32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* mean and median of v[0..n) (sorted in place); NAN when n == 0 */
static void mean_median(int32_t *v, int64_t n, double *mean, double *median) {
    if (n == 0) {
        *mean = *median = NAN;
        return;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    qsort(v, (size_t)n, sizeof *v, i32_cmp);
    *mean = s / (double)n;
    *median = n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + v[n / 2]);
}

int kv_layer(Model *m, const ValueVocab *vv, int layer, ValueVariant variant, const int32_t *next, int N,
             const int32_t *perm, int k, KvNeuron *neurons, KvLayer *out, ValueToken *top, ValueToken *bottom,
             char *err) {
    const int F = m->cfg.n_inner, Q = 2 * N;
    if (N < 1 || N > 128) return err_set(err, "%d triggers per neuron (1..128)", N);
    int rc = -1;
    int32_t *queries = malloc(sizeof *queries * (size_t)F * Q);
    int32_t *ranks = malloc(sizeof *ranks * (size_t)F * Q);
    ValueToken *own_top = top ? NULL : malloc(sizeof *own_top * (size_t)F * k);
    int32_t *all = malloc(sizeof *all * (size_t)F * N), *sh = malloc(sizeof *sh * (size_t)F * N);
    if (!queries || !ranks || (!top && !own_top) || !all || !sh) {
        err_set(err, "out of memory for layer %d's key-value analysis", layer);
        goto done;
    }
    if (!top) top = own_top;
    for (int j = 0; j < F; j++) {
        memcpy(queries + (size_t)j * Q, next + (size_t)j * N, sizeof *queries * N);
        memcpy(queries + (size_t)j * Q + N, next + (size_t)perm[j] * N, sizeof *queries * N);
    }
    ValueLayer vl = {.k = k, .top = top, .bottom = bottom, .n_queries = Q, .queries = queries, .ranks = ranks};
    if (value_project_layer(m, vv, layer, variant, &vl, err)) goto done;
    int64_t na = 0, ns = 0;
    int agree = 0, sh_agree = 0, counted = 0, sh_counted = 0;
    for (int j = 0; j < F; j++) {
        KvNeuron *o = &neurons[j];
        const int32_t *q = queries + (size_t)j * Q, *r = ranks + (size_t)j * Q;
        int32_t top_row = value_vocab_row(vv, top[(size_t)j * k].id);
        o->next_id = q[0];
        o->value_top = top[(size_t)j * k].id;
        o->agree = q[0] < 0 ? -1 : value_vocab_row(vv, q[0]) == top_row;
        if (o->agree >= 0) {
            counted++;
            agree += o->agree;
        }
        if (q[N] >= 0) { /* the shuffled partner's top-1 next token */
            sh_counted++;
            sh_agree += value_vocab_row(vv, q[N]) == top_row;
        }
        int32_t *mine = all + na;
        int n = 0;
        o->best_rank = 0;
        for (int i = 0; i < N; i++)
            if (q[i] >= 0) {
                mine[n++] = r[i];
                if (!o->best_rank || r[i] < o->best_rank) o->best_rank = r[i];
            }
        o->n_triggers = n;
        /* the neuron's own mean and median (mean_median sorts its slice) */
        mean_median(mine, n, &o->mean_rank, &o->median_rank);
        na += n;
        for (int i = N; i < Q; i++)
            if (q[i] >= 0) sh[ns++] = r[i];
    }
    out->neurons = counted;
    out->agreement = counted ? (double)agree / counted : NAN;
    out->shuffled_agreement = sh_counted ? (double)sh_agree / sh_counted : NAN;
    mean_median(all, na, &out->mean_rank, &out->median_rank);
    mean_median(sh, ns, &out->shuffled_mean_rank, &out->shuffled_median_rank);
    out->chance = 1.0 / value_vocab_distinct(vv);
    rc = 0;
done:
    free(queries);
    free(ranks);
    free(own_top);
    free(all);
    free(sh);
    return rc;
}
