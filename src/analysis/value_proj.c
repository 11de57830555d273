/* value_proj.c — see value_proj.h. */
#include "value_proj.h"

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "parallel.h"
#include "topk.h"
#include "util.h"

#define BLOCK 128 /* neurons per sgemm: [128 x distinct] floats of logits */
#define MAX_QUERIES 256

struct ValueVocab {
    int V, D, C;
    int32_t *row;   /* [V] distinct row of each id */
    int32_t *rep;   /* [D] smallest id of each distinct row */
    int32_t *count; /* [D] ids sharing it */
    float *countf;  /* [D] the same as floats, for the vectorized rank count */
    float *own;     /* [D x C] the distinct rows when D < V, else NULL */
    const float *w; /* the rows used: own, or the model's lm_head */
};

void value_vocab_free(ValueVocab *vv) {
    if (!vv) return;
    free(vv->row);
    free(vv->rep);
    free(vv->count);
    free(vv->countf);
    free(vv->own);
    free(vv);
}

typedef struct {
    uint64_t h;
    int32_t id;
} RowHash;

static int rowhash_cmp(const void *a, const void *b) {
    const RowHash *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int i32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

ValueVocab *value_vocab_new(const Model *m, char *err) {
    const int V = m->cfg.vocab_size, C = m->cfg.n_embd;
    ValueVocab *vv = calloc(1, sizeof *vv);
    RowHash *h = malloc(sizeof *h * (size_t)V);
    if (!vv || !h) goto oom;
    vv->V = V;
    vv->C = C;
    vv->row = malloc(sizeof *vv->row * (size_t)V);
    vv->rep = malloc(sizeof *vv->rep * (size_t)V);
    vv->count = malloc(sizeof *vv->count * (size_t)V);
    if (!vv->row || !vv->rep || !vv->count) goto oom;
    for (int v = 0; v < V; v++) h[v] = (RowHash){hash64(m->lm_head + (size_t)v * C, sizeof(float) * C, 0), v};
    qsort(h, (size_t)V, sizeof *h, rowhash_cmp);
    /* within a run of equal hashes, ids in increasing order: each joins the
     * first earlier id whose row is byte-equal (hash collisions stay apart) */
    int D = 0;
    for (int i = 0; i < V;) {
        int j = i;
        while (j < V && h[j].h == h[i].h) j++;
        for (int a = i; a < j; a++) {
            int32_t id = h[a].id, found = -1;
            for (int b = i; b < a && found < 0; b++)
                if (!memcmp(m->lm_head + (size_t)h[b].id * C, m->lm_head + (size_t)id * C, sizeof(float) * C))
                    found = vv->row[h[b].id];
            if (found >= 0) {
                vv->row[id] = found;
                vv->count[found]++;
            } else {
                vv->row[id] = D;
                vv->rep[D] = id;
                vv->count[D] = 1;
                D++;
            }
        }
        i = j;
    }
    /* number the distinct rows in order of their representative id */
    int32_t *order = malloc(sizeof *order * (size_t)D), *renum = malloc(sizeof *renum * (size_t)D);
    if (!order || !renum) {
        free(order);
        free(renum);
        goto oom;
    }
    for (int d = 0; d < D; d++) order[d] = vv->rep[d];
    qsort(order, (size_t)D, sizeof *order, i32_cmp);
    int32_t *cnt = malloc(sizeof *cnt * (size_t)D);
    if (!cnt) {
        free(order);
        free(renum);
        goto oom;
    }
    for (int d = 0; d < D; d++) renum[vv->row[order[d]]] = d;
    for (int d = 0; d < D; d++) cnt[renum[d]] = vv->count[d];
    for (int v = 0; v < V; v++) vv->row[v] = renum[vv->row[v]];
    for (int d = 0; d < D; d++) {
        vv->rep[d] = order[d];
        vv->count[d] = cnt[d];
    }
    free(order);
    free(renum);
    free(cnt);
    vv->D = D;
    vv->countf = malloc(sizeof *vv->countf * (size_t)D);
    if (!vv->countf) goto oom;
    for (int d = 0; d < D; d++) vv->countf[d] = (float)vv->count[d];
    if (D < V) {
        vv->own = malloc(sizeof(float) * (size_t)D * C);
        if (!vv->own) goto oom;
        for (int d = 0; d < D; d++)
            memcpy(vv->own + (size_t)d * C, m->lm_head + (size_t)vv->rep[d] * C, sizeof(float) * C);
        vv->w = vv->own;
    } else {
        vv->w = m->lm_head;
    }
    free(h);
    return vv;
oom:
    free(h);
    value_vocab_free(vv);
    err_set(err, "out of memory for the unembedding's %d rows", m->cfg.vocab_size);
    return NULL;
}

int value_vocab_distinct(const ValueVocab *vv) { return vv->D; }
int value_vocab_row(const ValueVocab *vv, int32_t id) { return id >= 0 && id < vv->V ? vv->row[id] : -1; }
int32_t value_vocab_rep(const ValueVocab *vv, int row) { return vv->rep[row]; }
int32_t value_vocab_count(const ValueVocab *vv, int row) { return vv->count[row]; }

/* ---- one block of neurons ------------------------------------------------------ */

typedef struct {
    const ValueVocab *vv;
    const float *logits; /* [n x D] */
    int n, j0;           /* rows of this block, the first one's neuron */
    ValueLayer *out;
    float *kv;           /* [threads x 2k] scratch */
    int32_t *ki;
} BlockJob;

/* The top, bottom and query ranks of rows r0..r1 of the block. */
static void block_rows(const BlockJob *job, int r0, int r1, int tid) {
    const ValueVocab *vv = job->vv;
    const int D = vv->D, k = job->out->k, nq = job->out->n_queries;
    float *kv = job->kv + (size_t)tid * 2 * k, *bv = kv + k;
    int32_t *ki = job->ki + (size_t)tid * 2 * k, *bi = ki + k;
    for (int r = r0; r < r1; r++) {
        const float *x = job->logits + (size_t)r * D;
        int j = job->j0 + r;
        if (job->out->top || job->out->bottom) {
            int ft = 0, fb = 0;
            for (int d = 0; d < D; d++) {
                ft = topk_insert(kv, ki, ft, k, x[d], d);
                fb = topk_insert(bv, bi, fb, k, -x[d], d);
            }
            for (int i = 0; i < k; i++) {
                if (job->out->top)
                    job->out->top[(size_t)j * k + i] =
                        i < ft ? (ValueToken){vv->rep[ki[i]], vv->count[ki[i]], kv[i]} : (ValueToken){-1, 0, 0};
                if (job->out->bottom)
                    job->out->bottom[(size_t)j * k + i] =
                        i < fb ? (ValueToken){vv->rep[bi[i]], vv->count[bi[i]], -bv[i]} : (ValueToken){-1, 0, 0};
            }
        }
        if (nq > 0) {
            /* rank of each query: 1 + the ids whose logit is strictly larger;
             * one branch-free pass per query (vectorized), counts weighted by
             * the ids sharing each row */
            const int32_t *q = job->out->queries + (size_t)j * nq;
            int32_t *ranks = job->out->ranks + (size_t)j * nq;
            const float *cnt = vv->countf;
            for (int i = 0; i < nq; i++) {
                int row = q[i] >= 0 ? value_vocab_row(vv, q[i]) : -1;
                if (row < 0) {
                    ranks[i] = 0;
                    continue;
                }
                /* a query equal to an earlier one has its rank */
                int k2 = 0;
                while (k2 < i && q[k2] != q[i]) k2++;
                if (k2 < i) {
                    ranks[i] = ranks[k2];
                    continue;
                }
                const float v = x[row];
                float above = 0;
                for (int d = 0; d < D; d++) above += x[d] > v ? cnt[d] : 0.0f;
                ranks[i] = (int32_t)(1 + (int64_t)above);
            }
        }
    }
}

static void block_task(void *ctx, int tid, int nt) {
    const BlockJob *job = ctx;
    int r0, r1;
    parallel_slice(job->n, 1, tid, nt, &r0, &r1);
    if (r0 < r1) block_rows(job, r0, r1, tid);
}

int value_project_layer(Model *m, const ValueVocab *vv, int layer, ValueVariant variant, ValueLayer *out, char *err) {
    const int C = m->cfg.n_embd, F = m->cfg.n_inner, D = vv->D, k = out->k;
    if (layer < 0 || layer >= m->cfg.n_layer) return err_set(err, "layer %d out of range", layer);
    if (k < 1 || k > D) return err_set(err, "--top %d out of range 1..%d", k, D);
    if (out->n_queries < 0 || out->n_queries > MAX_QUERIES)
        return err_set(err, "%d queries per neuron (at most %d)", out->n_queries, MAX_QUERIES);
    int T = parallel_threads() > 0 ? parallel_threads() : 1;
    float *vb = malloc(sizeof(float) * (size_t)BLOCK * C);
    float *logits = malloc(sizeof(float) * (size_t)BLOCK * D);
    BlockJob job = {.vv = vv, .logits = logits, .out = out};
    job.kv = malloc(sizeof(float) * (size_t)T * 2 * k);
    job.ki = malloc(sizeof(int32_t) * (size_t)T * 2 * k);
    int rc = -1;
    if (!vb || !logits || !job.kv || !job.ki) {
        err_set(err, "out of memory projecting values (%d x %d logits)", BLOCK, D);
        goto done;
    }
    const float *values = m->layers[layer].proj_w; /* [F x C]: row j is neuron j's value */
    int first = out->count > 0 ? out->first : 0, last = out->count > 0 ? out->first + out->count : F;
    if (first < 0 || last > F || first >= last) {
        err_set(err, "neurons %d..%d out of range 0..%d", first, last - 1, F - 1);
        goto done;
    }
    for (int j0 = first; j0 < last; j0 += BLOCK) {
        int n = last - j0 < BLOCK ? last - j0 : BLOCK;
        for (int r = 0; r < n; r++) {
            const float *v = values + (size_t)(j0 + r) * C;
            float *o = vb + (size_t)r * C;
            for (int c = 0; c < C; c++) o[c] = variant == VALUE_LNF ? v[c] * m->lnf_w[c] : v[c];
        }
        matmul_nt_forward(logits, vb, vv->w, n, C, D);
        job.n = n;
        job.j0 = j0 - first; /* outputs are indexed from first */
        parallel_run(block_task, &job);
    }
    rc = 0;
done:
    free(vb);
    free(logits);
    free(job.kv);
    free(job.ki);
    return rc;
}
