/* recorder.c — see recorder.h.
 *
 * State blob of one layer (run_state.state), native little-endian:
 *   uint32 magic 'PRS1', uint32 F, uint32 N, uint32 0, int64 count,
 *   double sum[F], sumsq[F], npos[F]   (sums of x - shift, (x - shift)^2, x > 0)
 *   float shift[F], min[F], max[F],
 *   int32 heap_n[F], float heap_val[F*N], int64 heap_row[F*N]   (heaps as stored)
 *   then per neuron its histogram, packed (hist_codec.h hist_pack: a
 *   histogram has mostly empty bins, and this blob is written at every
 *   commit) ("PRS2"; "PRS1", before the histograms, cannot be resumed). */
#include "recorder.h"

#include <math.h>
#include <stdlib.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <string.h>

#include "act_hist.h"
#include "fp16.h"
#include "hist_codec.h"
#include "parallel.h"
#include "topk.h"
#include "util.h"

#define STATE_MAGIC 0x32535250u /* "PRS2" */
#define STATE_MAGIC_V1 0x31535250u /* "PRS1" */

/* The histograms' counts are 16-bit (36,864 neurons x 1,024 bins of GPT-2
 * small take 75 MB instead of 151, which kept `probe record` within 1.3x the
 * weights' memory). A count never wraps: before a layer's low counts could
 * pass 65,535 (32,768 tokens after the last carry), recorder_add carries
 * 32,768 out of every count that holds that many into this table. So the
 * counting loop has no test, and the carry runs single-threaded once per
 * 32,768 tokens (one pass over the layer's counts, ~1 ms for GPT-2). */
#define CARRY 32768u

typedef struct {
    uint32_t *key;  /* neuron * ACT_HIST_BINS + bin + 1; 0 = empty slot */
    uint32_t *high; /* units of CARRY carried out of that count */
    size_t n, cap;  /* cap: 0 or a power of two */
    int failed;     /* a carry was lost: out of memory growing the table */
} Spill;

typedef struct {
    int64_t count;
    double *sum, *sumsq, *npos; /* [F] */
    float *shift, *min, *max;   /* [F] */
    float *thr;                 /* [F] value to beat to enter the heap */
    int32_t *heap_n;            /* [F] */
    float *hval;                /* [F x N] min-heap per neuron, root = worst */
    int64_t *hrow;              /* [F x N] */
    uint16_t *hist;             /* [F x ACT_HIST_BINS] tokens per activation bin, low 16 bits */
    Spill spill;                /* the CARRY units of the counts */
    int64_t since_carry;        /* tokens added since the last carry (< CARRY after it) */
} LayerAgg;

struct Recorder {
    int n_layers, F, N, k;
    int slots;   /* threads that can take tokens (the team size at creation) */
    LayerAgg *layers;
    float *kv;   /* [slots x k] top-k scratch, one row per thread */
    int32_t *ki; /* [slots x k] */
    float *kth_guess; /* [n_layers x slots] top-k threshold carried between a
                         thread's tokens */
};

void recorder_free(Recorder *r) {
    if (!r) return;
    for (int i = 0; r->layers && i < r->n_layers; i++) {
        LayerAgg *a = &r->layers[i];
        free(a->sum);
        free(a->sumsq);
        free(a->npos);
        free(a->shift);
        free(a->min);
        free(a->max);
        free(a->thr);
        free(a->heap_n);
        free(a->hval);
        free(a->hrow);
        free(a->hist);
        free(a->spill.key);
        free(a->spill.high);
    }
    free(r->layers);
    free(r->kv);
    free(r->ki);
    free(r->kth_guess);
    free(r);
}

static void layer_reset(LayerAgg *a, int F) {
    a->count = 0;
    for (int j = 0; j < F; j++) {
        a->sum[j] = a->sumsq[j] = a->npos[j] = 0;
        a->shift[j] = 0;
        a->min[j] = INFINITY;
        a->max[j] = -INFINITY;
        a->thr[j] = -INFINITY;
        a->heap_n[j] = 0;
    }
    memset(a->hist, 0, sizeof(uint16_t) * (size_t)F * ACT_HIST_BINS);
    a->spill.n = 0;
    a->since_carry = 0;
    if (a->spill.cap) memset(a->spill.key, 0, sizeof(uint32_t) * a->spill.cap);
}

Recorder *recorder_new(int n_layers, int F, int n_examples, int top_k, char *err) {
    if (n_layers < 1 || F < 1 || F > 65535 || n_examples < 1 || top_k < 1 || top_k > F) {
        err_set(err, "recorder: bad sizes (layers %d, neurons %d, examples %d, top-k %d)", n_layers,
                F, n_examples, top_k);
        return NULL;
    }
    Recorder *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->n_layers = n_layers;
    r->F = F;
    r->N = n_examples;
    r->k = top_k;
    r->slots = parallel_threads();
    r->layers = calloc((size_t)n_layers, sizeof *r->layers);
    r->kv = malloc(sizeof *r->kv * (size_t)top_k * r->slots);
    r->ki = malloc(sizeof *r->ki * (size_t)top_k * r->slots);
    r->kth_guess = malloc(sizeof *r->kth_guess * (size_t)n_layers * r->slots);
    if (!r->layers || !r->kv || !r->ki || !r->kth_guess) goto oom;
    for (int i = 0; i < n_layers * r->slots; i++) r->kth_guess[i] = -INFINITY;
    size_t f = (size_t)F, fn = f * (size_t)n_examples;
    for (int i = 0; i < n_layers; i++) {
        LayerAgg *a = &r->layers[i];
        a->sum = malloc(sizeof(double) * f);
        a->sumsq = malloc(sizeof(double) * f);
        a->npos = malloc(sizeof(double) * f);
        a->shift = malloc(sizeof(float) * f);
        a->min = malloc(sizeof(float) * f);
        a->max = malloc(sizeof(float) * f);
        a->thr = malloc(sizeof(float) * f);
        a->heap_n = malloc(sizeof(int32_t) * f);
        a->hval = malloc(sizeof(float) * fn);
        a->hrow = malloc(sizeof(int64_t) * fn);
        a->hist = malloc(sizeof(uint16_t) * f * ACT_HIST_BINS);
        if (!a->sum || !a->sumsq || !a->npos || !a->shift || !a->min || !a->max || !a->thr ||
            !a->heap_n || !a->hval || !a->hrow || !a->hist)
            goto oom;
        layer_reset(a, F);
    }
    return r;
oom:
    recorder_free(r);
    err_set(err, "out of memory for the recorder (%d layers x %d neurons x %d examples)", n_layers, F,
            n_examples);
    return NULL;
}

/* ---- histogram counts ------------------------------------------------------ */

/* The slot of key k: its own, or the empty one where it would go. */
static size_t spill_slot(const Spill *sp, uint32_t k) {
    size_t i = (k * 2654435761u) & (sp->cap - 1);
    while (sp->key[i] && sp->key[i] != k) i = (i + 1) & (sp->cap - 1);
    return i;
}

/* Adds `units` CARRYs to count k (neuron * ACT_HIST_BINS + bin); -1 when
 * the table cannot grow. */
static int spill_add(Spill *sp, uint32_t k, uint32_t units) {
    k += 1;
    if (2 * (sp->n + 1) > sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 1024;
        uint32_t *key = calloc(cap, sizeof *key);
        uint32_t *high = malloc(cap * sizeof *high);
        if (!key || !high) {
            free(key);
            free(high);
            return -1;
        }
        Spill grown = {.key = key, .high = high, .cap = cap};
        for (size_t i = 0; i < sp->cap; i++)
            if (sp->key[i]) {
                size_t d = spill_slot(&grown, sp->key[i]);
                grown.key[d] = sp->key[i];
                grown.high[d] = sp->high[i];
            }
        free(sp->key);
        free(sp->high);
        sp->key = key;
        sp->high = high;
        sp->cap = cap;
    }
    size_t i = spill_slot(sp, k);
    if (!sp->key[i]) {
        sp->key[i] = k;
        sp->high[i] = 0;
        sp->n++;
    }
    sp->high[i] += units;
    return 0;
}

/* The CARRY units of count k. */
static uint32_t spill_get(const Spill *sp, uint32_t k) {
    if (!sp->cap) return 0;
    size_t i = spill_slot(sp, k + 1);
    return sp->key[i] ? sp->high[i] : 0;
}

/* Moves CARRY out of every count of the layer that holds that many, so
 * that all are below CARRY and CARRY more tokens cannot overflow them. */
static void carry_counts(LayerAgg *a, int F) {
    for (int j = 0; j < F; j++) {
        uint16_t *h = a->hist + (size_t)j * ACT_HIST_BINS;
        for (int b = 0; b < ACT_HIST_BINS; b++)
            if (h[b] >= CARRY) {
                h[b] -= CARRY;
                if (spill_add(&a->spill, (uint32_t)j * ACT_HIST_BINS + (uint32_t)b, 1)) a->spill.failed = 1;
            }
    }
    a->since_carry = 0;
}

/* ---- heaps ---------------------------------------------------------------- */

/* a is worse than b: lower value, or equal value and a later token. */
static inline int worse(float av, int64_t ar, float bv, int64_t br) {
    return av < bv || (av == bv && ar > br);
}

static void heap_push(float *v, int64_t *row, int32_t *n, int N, float x, int64_t tr, float *thr) {
    if (*n < N) { /* append, sift up */
        int i = (*n)++;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!worse(x, tr, v[p], row[p])) break;
            v[i] = v[p];
            row[i] = row[p];
            i = p;
        }
        v[i] = x;
        row[i] = tr;
        if (*n == N) *thr = v[0];
        return;
    }
    /* replace the root (the worst), sift down */
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= N) break;
        if (c + 1 < N && worse(v[c + 1], row[c + 1], v[c], row[c])) c++;
        if (!worse(v[c], row[c], x, tr)) break;
        v[i] = v[c];
        row[i] = row[c];
        i = c;
    }
    v[i] = x;
    row[i] = tr;
    *thr = v[0];
}

/* ---- adding tokens -------------------------------------------------------- */

/* The lanes i of x[0..16) with x[i] > th[i] (false for NaN), as bits. */
static inline unsigned lanes_above(const float *restrict x, const float *restrict th) {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(x), _mm512_loadu_ps(th), _CMP_GT_OQ);
#elif defined(__AVX__)
    unsigned lo = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(th), _CMP_GT_OQ));
    unsigned hi = (unsigned)_mm256_movemask_ps(
        _mm256_cmp_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(th + 8), _CMP_GT_OQ));
    return lo | hi << 8;
#else
    unsigned m = 0;
    for (int i = 0; i < 16; i++) m |= (unsigned)(x[i] > th[i]) << i;
    return m;
#endif
}

/* The contribution of n tokens (act [n x F], rows token_rows) to neurons
 * j0..j0+16: statistics (the accumulators stay in registers while the
 * tokens stream by; the inner loops vectorize), then top examples (one
 * vector compare against the 16 thresholds; most tokens beat none of them).
 * Each neuron sees its tokens in order, so the result does not depend on
 * how neurons are split over threads. */
static void neurons_block(LayerAgg *a, int N, const float *restrict act, const int64_t *token_rows,
                          int n, int F, int j0) {
    double s[16], q[16], p[16], c[16];
    float lo[16], hi[16], th[16];
    for (int i = 0; i < 16; i++) {
        s[i] = a->sum[j0 + i];
        q[i] = a->sumsq[j0 + i];
        p[i] = a->npos[j0 + i];
        c[i] = a->shift[j0 + i];
        lo[i] = a->min[j0 + i];
        hi[i] = a->max[j0 + i];
        th[i] = a->thr[j0 + i];
    }
    /* statistics: no calls in this loop, so the accumulators stay in registers */
    for (int t = 0; t < n; t++) {
        const float *x = act + (size_t)t * F + j0;
        for (int i = 0; i < 16; i++) {
            double d = (double)x[i] - c[i];
            s[i] += d;
            q[i] += d * d;
            p[i] += x[i] > 0.0f ? 1.0 : 0.0;
            lo[i] = x[i] < lo[i] ? x[i] : lo[i];
            hi[i] = x[i] > hi[i] ? x[i] : hi[i];
        }
    }
    for (int i = 0; i < 16; i++) {
        a->sum[j0 + i] = s[i];
        a->sumsq[j0 + i] = q[i];
        a->npos[j0 + i] = p[i];
        a->min[j0 + i] = lo[i];
        a->max[j0 + i] = hi[i];
    }
    /* histograms: the bins of 64 tokens first, then their counts (binning
     * and counting interleaved token by token left each count waiting on
     * its bin: 3-5% slower `probe record`) */
    uint16_t *h = a->hist + (size_t)j0 * ACT_HIST_BINS;
    for (int t0 = 0; t0 < n; t0 += 64) {
        int32_t bin[64 * 16];
        int m = n - t0 < 64 ? n - t0 : 64;
        for (int t = 0; t < m; t++) act_hist_bins(act + (size_t)(t0 + t) * F + j0, 16, bin + t * 16);
        for (int t = 0; t < m; t++)
            for (int i = 0; i < 16; i++) h[i * ACT_HIST_BINS + bin[t * 16 + i]]++;
    }
    /* top examples: the same rows again, now in cache; one vector compare
     * per token finds the lanes that beat their thresholds (GCC compiled the
     * 16 scalar compares as such: 15% of the recorder's time) */
    for (int t = 0; t < n; t++) {
        const float *x = act + (size_t)t * F + j0;
        for (unsigned m = lanes_above(x, th); m; m &= m - 1) {
            int i = __builtin_ctz(m), j = j0 + i;
            /* only lane i's threshold moves: the other lanes' bits stay true */
            heap_push(a->hval + (size_t)j * N, a->hrow + (size_t)j * N, &a->heap_n[j], N, x[i],
                      token_rows[t], &a->thr[j]);
            th[i] = a->thr[j];
        }
    }
}

/* The same for one neuron (the tail when F is not a multiple of 16). */
static void neurons_one(LayerAgg *a, int N, const float *act, const int64_t *token_rows, int n, int F,
                        int j) {
    for (int t = 0; t < n; t++) {
        float x = act[(size_t)t * F + j];
        double d = (double)x - (double)a->shift[j];
        a->sum[j] += d;
        a->sumsq[j] += d * d;
        a->npos[j] += x > 0.0f ? 1.0 : 0.0;
        a->min[j] = x < a->min[j] ? x : a->min[j];
        a->max[j] = x > a->max[j] ? x : a->max[j];
        int b = act_hist_bin(x);
        a->hist[(size_t)j * ACT_HIST_BINS + b]++;
        if (x > a->thr[j])
            heap_push(a->hval + (size_t)j * N, a->hrow + (size_t)j * N, &a->heap_n[j], N, x,
                      token_rows[t], &a->thr[j]);
    }
}

/* Whether any of x[0..16) exceeds g: one vector compare where the target
 * has one (GCC does not vectorize this 16-value early-out itself). */
static inline int any_above_value(const float *restrict x, float g) {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(x), _mm512_set1_ps(g), _CMP_GT_OQ) != 0;
#elif defined(__AVX__)
    __m256 gv = _mm256_set1_ps(g);
    return _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x), gv, _CMP_GT_OQ),
                                           _mm256_cmp_ps(_mm256_loadu_ps(x + 8), gv, _CMP_GT_OQ))) != 0;
#else
    int any = 0;
    for (int i = 0; i < 16; i++) any |= x[i] > g;
    return any;
#endif
}


/* The insertion scan of topk_row for values above g; returns how many
 * entries it filled (at most k). */
static int topk_scan(const float *x, int F, int k, float *kv, int32_t *ki, float g) {
    int filled = 0;
    for (int j0 = 0; j0 < F; j0 += 16) {
        int j1 = j0 + 16 < F ? j0 + 16 : F;
        if (j1 - j0 == 16 && !any_above_value(x + j0, g)) continue; /* one vector compare */
        for (int j = j0; j < j1; j++) {
            float xv = x[j];
            if (!(xv > g)) continue;
            filled = topk_insert(kv, ki, filled, k, xv, j);
            if (filled == k && kv[k - 1] > g) g = kv[k - 1];
        }
    }
    return filled;
}

/* Top-k of x[0..F) into kv/ki, highest first, ties to the lower index.
 * *guess is a threshold carried from token to token (the previous token's
 * k-th value): when at least k values exceed it, the k-th largest exceeds
 * it too, so the scan that skips everything else is exact; when fewer do,
 * the scan runs again over every value. */
static void topk_row(const float *x, int F, int k, float *kv, int32_t *ki, float *guess) {
    int filled = topk_scan(x, F, k, kv, ki, *guess);
    if (filled < k) filled = topk_scan(x, F, k, kv, ki, -INFINITY);
    for (; filled < k; filled++) { /* only NaNs left: they rank last */
        kv[filled] = NAN;
        ki[filled] = 0;
    }
    *guess = kv[k - 1];
}

typedef struct {
    Recorder *r;
    LayerAgg *a;
    int li, n;
    const float *act;
    const int64_t *token_rows;
    uint8_t *topk_out;
    uint16_t *full_out;
} AddJob;

/* Statistics and top examples of neurons j0..j1 (whole blocks of 16 except
 * at the end): each neuron's accumulators and heap belong to one thread. */
static void add_neurons(const AddJob *job, int j0, int j1) {
    LayerAgg *a = job->a;
    const int F = job->r->F, N = job->r->N;
    /* Tiles of TILE tokens: a neuron block's column is a stride-F walk
     * through memory, one cache line per token, that the prefetchers do not
     * follow across pages; within a tile every row of the slice stays in L2
     * for the next block. Tokens still reach each neuron in order. */
    enum { TILE = 32 };
    for (int t0 = 0; t0 < job->n; t0 += TILE) {
        int nt = job->n - t0 < TILE ? job->n - t0 : TILE;
        const float *act = job->act + (size_t)t0 * F;
        const int64_t *rows = job->token_rows + t0;
        int j = j0;
        for (; j + 16 <= j1; j += 16) neurons_block(a, N, act, rows, nt, F, j);
        for (; j < j1; j++) neurons_one(a, N, act, rows, nt, F, j);
    }
}

/* Per-token outputs (top-k record, fp16 vector) of tokens t0..t1, with this
 * thread's own top-k scratch `slot`. */
static void add_tokens(const AddJob *job, int t0, int t1, int slot) {
    Recorder *r = job->r;
    const int F = r->F, k = r->k;
    float *kv = r->kv + (size_t)slot * k, *guess = &r->kth_guess[job->li * r->slots + slot];
    int32_t *ki = r->ki + (size_t)slot * k;
    for (int t = t0; t < t1; t++) {
        const float *x = job->act + (size_t)t * F;
        if (job->topk_out) {
            topk_row(x, F, k, kv, ki, guess);
            uint8_t *o = job->topk_out + (size_t)t * k * RECORDER_TOPK_BYTES;
            for (int i = 0; i < k; i++) {
                uint16_t nn = (uint16_t)ki[i];
                memcpy(o + i * RECORDER_TOPK_BYTES, &nn, 2);
                memcpy(o + i * RECORDER_TOPK_BYTES + 2, &kv[i], 4);
            }
        }
        if (job->full_out) {
            uint16_t *o = job->full_out + (size_t)t * F;
            for (int j = 0; j < F; j++) o[j] = f32_to_f16(x[j]);
        }
    }
}

/* Each thread takes a slice of the neurons and a slice of the tokens: the
 * two parts write disjoint state, so they need no barrier between them. */
static void add_task(void *ctx, int tid, int nt) {
    const AddJob *job = ctx;
    int j0, j1;
    parallel_slice(job->r->F, 16, tid, nt, &j0, &j1);
    if (j0 < j1) add_neurons(job, j0, j1);
    int users = nt < job->r->slots ? nt : job->r->slots;
    if (tid < users && (job->topk_out || job->full_out)) {
        int t0, t1;
        parallel_slice(job->n, 1, tid, users, &t0, &t1);
        add_tokens(job, t0, t1, tid);
    }
}

void recorder_add(Recorder *r, int li, const float *act, int n, const int64_t *token_rows,
                  uint8_t *topk_out, uint16_t *full_out) {
    LayerAgg *a = &r->layers[li];
    if (n <= 0) return;
    if (a->count == 0) { /* the shift: the first tokens' mean, near the neuron's mean, so that
                            sumsq/n - mean^2 loses few digits (a single token's value can lie far
                            from the mean and cost ~1e-12 of the variance's relative precision) */
        double *m = a->sum; /* unused until tokens are added: scratch, summed row by row */
        memset(m, 0, sizeof *m * (size_t)r->F);
        for (int t = 0; t < n; t++)
            for (int j = 0; j < r->F; j++) m[j] += act[(size_t)t * r->F + j];
        for (int j = 0; j < r->F; j++) {
            a->shift[j] = (float)(m[j] / n);
            m[j] = 0;
        }
    }
    for (int t0 = 0; t0 < n; t0 += (int)CARRY) {
        int m = n - t0 < (int)CARRY ? n - t0 : (int)CARRY;
        if (a->since_carry + m > (int64_t)CARRY) carry_counts(a, r->F);
        AddJob job = {r,
                      a,
                      li,
                      m,
                      act + (size_t)t0 * r->F,
                      token_rows + t0,
                      topk_out ? topk_out + (size_t)t0 * r->k * RECORDER_TOPK_BYTES : NULL,
                      full_out ? full_out + (size_t)t0 * r->F : NULL};
        parallel_run(add_task, &job);
        a->since_carry += m;
    }
    a->count += n;
}

/* ---- results -------------------------------------------------------------- */

int64_t recorder_count(const Recorder *r, int li) { return r->layers[li].count; }

void recorder_hist(const Recorder *r, int li, int neuron, uint32_t *out) {
    const LayerAgg *a = &r->layers[li];
    const uint16_t *h = a->hist + (size_t)neuron * ACT_HIST_BINS;
    for (int b = 0; b < ACT_HIST_BINS; b++) out[b] = h[b];
    if (a->spill.n == 0) return;
    for (int b = 0; b < ACT_HIST_BINS; b++)
        out[b] += spill_get(&a->spill, (uint32_t)neuron * ACT_HIST_BINS + (uint32_t)b) * CARRY;
}

int recorder_failed(const Recorder *r) {
    for (int l = 0; l < r->n_layers; l++)
        if (r->layers[l].spill.failed) return 1;
    return 0;
}

int recorder_first_nonfinite(const Recorder *r, int *li, int *neuron) {
    for (int l = 0; l < r->n_layers; l++) {
        const LayerAgg *a = &r->layers[l];
        for (int j = 0; j < r->F; j++)
            if (!isfinite(a->sum[j]) || !isfinite(a->sumsq[j])) {
                *li = l;
                *neuron = j;
                return 1;
            }
    }
    return 0;
}

void recorder_stats(const Recorder *r, int li, int j, NeuronStats *out) {
    const LayerAgg *a = &r->layers[li];
    double n = (double)a->count;
    memset(out, 0, sizeof *out);
    out->count = a->count;
    if (a->count == 0) return;
    double m = a->sum[j] / n;
    double var = a->sumsq[j] / n - m * m;
    out->mean = (double)a->shift[j] + m;
    out->variance = var > 0 ? var : 0;
    out->min = a->min[j];
    out->max = a->max[j];
    out->frac_pos = a->npos[j] / n;
}

static int example_cmp(const void *pa, const void *pb) {
    const Example *a = pa, *b = pb;
    if (a->value != b->value) return a->value > b->value ? -1 : 1;
    return a->token_row < b->token_row ? -1 : a->token_row > b->token_row;
}

void recorder_examples(const Recorder *r, int li, int j, Example *out, int *n) {
    const LayerAgg *a = &r->layers[li];
    int m = a->heap_n[j];
    for (int i = 0; i < m; i++) {
        out[i].value = a->hval[(size_t)j * r->N + i];
        out[i].token_row = a->hrow[(size_t)j * r->N + i];
    }
    qsort(out, (size_t)m, sizeof *out, example_cmp);
    *n = m;
}

/* ---- state ---------------------------------------------------------------- */

/* The fixed-size part of a state blob. */
static size_t state_fixed_size(const Recorder *r) {
    size_t f = (size_t)r->F, fn = f * (size_t)r->N;
    return 24 + f * (3 * sizeof(double) + 3 * sizeof(float) + sizeof(int32_t)) +
           fn * (sizeof(float) + sizeof(int64_t));
}

size_t recorder_state_size(const Recorder *r) {
    /* worst case of the packed histograms: every bin used, a 2-byte gap
     * (bins < 16384) and a 5-byte count each */
    return state_fixed_size(r) + (size_t)r->F * (3 + (size_t)ACT_HIST_BINS * (2 + 5));
}

#define PUT(p, src, bytes) (memcpy(p, src, bytes), (p) += (bytes))
#define GET(dst, p, bytes) (memcpy(dst, p, bytes), (p) += (bytes))

size_t recorder_state_save(const Recorder *r, int li, void *buf) {
    const LayerAgg *a = &r->layers[li];
    size_t f = (size_t)r->F, fn = f * (size_t)r->N;
    uint32_t head[4] = {STATE_MAGIC, (uint32_t)r->F, (uint32_t)r->N, 0};
    uint8_t *p = buf;
    PUT(p, head, sizeof head);
    PUT(p, &a->count, 8);
    PUT(p, a->sum, f * 8);
    PUT(p, a->sumsq, f * 8);
    PUT(p, a->npos, f * 8);
    PUT(p, a->shift, f * 4);
    PUT(p, a->min, f * 4);
    PUT(p, a->max, f * 4);
    PUT(p, a->heap_n, f * 4);
    PUT(p, a->hval, fn * 4);
    PUT(p, a->hrow, fn * 8);
    for (size_t j = 0; j < f; j++) {
        uint32_t h[ACT_HIST_BINS];
        recorder_hist(r, li, (int)j, h);
        p += hist_pack(h, ACT_HIST_BINS, p);
    }
    return (size_t)(p - (uint8_t *)buf);
}

int recorder_state_load(Recorder *r, int li, const void *buf, size_t len, char *err) {
    LayerAgg *a = &r->layers[li];
    size_t f = (size_t)r->F, fn = f * (size_t)r->N;
    uint32_t head[4];
    const uint8_t *p = buf;
    if (len >= 4 && memcmp(p, &(uint32_t){STATE_MAGIC_V1}, 4) == 0)
        return err_set(err, "saved recorder state is from an older probe (without histograms): record the corpus again");
    if (len < state_fixed_size(r) || len > recorder_state_size(r))
        return err_set(err, "saved recorder state has the wrong size");
    const uint8_t *end = p + len;
    GET(head, p, sizeof head);
    if (head[0] != STATE_MAGIC || head[1] != (uint32_t)r->F || head[2] != (uint32_t)r->N)
        return err_set(err, "saved recorder state does not match the run");
    GET(&a->count, p, 8);
    GET(a->sum, p, f * 8);
    GET(a->sumsq, p, f * 8);
    GET(a->npos, p, f * 8);
    GET(a->shift, p, f * 4);
    GET(a->min, p, f * 4);
    GET(a->max, p, f * 4);
    GET(a->heap_n, p, f * 4);
    GET(a->hval, p, fn * 4);
    GET(a->hrow, p, fn * 8);
    memset(a->hist, 0, f * ACT_HIST_BINS * sizeof *a->hist);
    a->spill.n = 0;
    a->since_carry = 0;
    if (a->spill.cap) memset(a->spill.key, 0, sizeof(uint32_t) * a->spill.cap);
    for (size_t j = 0; j < f; j++) {
        uint32_t h[ACT_HIST_BINS];
        if (hist_unpack(&p, end, h, ACT_HIST_BINS)) return err_set(err, "saved recorder state is corrupt");
        for (int b = 0; b < ACT_HIST_BINS; b++) {
            uint32_t c = h[b];
            a->hist[j * ACT_HIST_BINS + (size_t)b] = (uint16_t)(c % CARRY);
            if (c >= CARRY && spill_add(&a->spill, (uint32_t)(j * ACT_HIST_BINS + (size_t)b), c / CARRY))
                return err_set(err, "out of memory for the activation histograms");
        }
    }
    if (p != end) return err_set(err, "saved recorder state has the wrong size");
    /* a count is untrusted like everything read back: negative, beyond any
     * corpus (2^48 tokens), or below a heap's fill, it would overflow later */
    if (a->count < 0 || a->count > ((int64_t)1 << 48)) return err_set(err, "saved recorder state is corrupt");
    for (size_t j = 0; j < f; j++) {
        if (a->heap_n[j] < 0 || a->heap_n[j] > r->N || a->heap_n[j] > a->count)
            return err_set(err, "saved recorder state is corrupt");
        a->thr[j] = a->heap_n[j] == r->N ? a->hval[j * (size_t)r->N] : -INFINITY;
        uint64_t total = 0; /* every token is in exactly one bin */
        uint32_t h[ACT_HIST_BINS];
        recorder_hist(r, li, (int)j, h);
        for (int k = 0; k < ACT_HIST_BINS; k++) total += h[k];
        if (total != (uint64_t)a->count) return err_set(err, "saved recorder state is corrupt");
    }
    return 0;
}

