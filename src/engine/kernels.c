/* kernels.c — see kernels.h. The matmuls are cblas_sgemm; everything else
 * is a plain loop written so that the compiler can vectorise it. Each
 * kernel splits its work over the compute team (parallel.h): rows for layer
 * norm, fixed blocks for the matmuls, heads for attention, equal ranges for
 * the activations. No element's order of summation depends on the team size
 * or on timing: the same bits for any number of threads. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastexp.h"
#include "parallel.h"

/* ---- reductions ------------------------------------------------------------ */

/* Sums and maxima over LANES independent partial results: a plain
 * `sum += x[i]` is one dependent chain the compiler may not reorder (no
 * -ffast-math), so it runs scalar; LANES accumulators vectorize. The order
 * of summation is fixed, so results are deterministic. */
#define LANES 16

static inline float reduce_sum(const float *acc) {
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

static float sum_lanes(const float *x, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
    float s = reduce_sum(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

static float sum_sq_dev_lanes(const float *x, int n, float mean) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[i + l] - mean;
            acc[l] += d * d;
        }
    float s = reduce_sum(acc);
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return s;
}

float row_max(const float *x, int n) {
    if (n < LANES) {
        float m = x[0];
        for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
        return m;
    }
    float acc[LANES];
    for (int l = 0; l < LANES; l++) acc[l] = x[l];
    int i = LANES;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    for (; i < n; i++) acc[0] = x[i] > acc[0] ? x[i] : acc[0];
    float m = acc[0];
    for (int l = 1; l < LANES; l++) m = acc[l] > m ? acc[l] : m;
    return m;
}

/* x[i] = exp(x[i] - shift) for i < n; returns their sum. */
static float exp_shift_sum(float *x, int n, float shift) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float e = exp_f32(x[i + l] - shift);
            x[i + l] = e;
            acc[l] += e;
        }
    float s = reduce_sum(acc);
    for (; i < n; i++) {
        x[i] = exp_f32(x[i] - shift);
        s += x[i];
    }
    return s;
}

/* ---- layer norm ------------------------------------------------------------ */

typedef struct {
    float *out;
    const float *x, *w, *b;
    float eps;
    int T, C;
} LayerNormJob;

static void layernorm_task(void *ctx, int tid, int nt) {
    const LayerNormJob *j = ctx;
    const int C = j->C;
    int t0, t1;
    parallel_slice(j->T, 1, tid, nt, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        const float *xt = j->x + (size_t)t * C;
        float *ot = j->out + (size_t)t * C;
        float mean = sum_lanes(xt, C) / (float)C;
        float var = sum_sq_dev_lanes(xt, C, mean) / (float)C;
        float rstd = 1.0f / sqrtf(var + j->eps);
        for (int i = 0; i < C; i++) ot[i] = (xt[i] - mean) * rstd * j->w[i] + j->b[i];
    }
}

void layernorm_forward(float *out, const float *x, const float *w, const float *b, float eps, int T,
                       int C) {
    LayerNormJob j = {out, x, w, b, eps, T, C};
    parallel_run(layernorm_task, &j);
}

/* ---- matmuls --------------------------------------------------------------- */

/* C[M x N] = A[M x K] op(B) (+ bias rows) (+ C), op(B) = B [K x N] or, with
 * trans_b, B^T for B [N x K]. */
typedef struct {
    float *c;
    const float *a, *b, *bias;
    int M, N, K, trans_b, accumulate;
    GemmGrid g;
    int n_blocks; /* blocks computed: the first n_blocks of the grid, row-major */
} GemmJob;

/* Why the grid depends on the shape alone. OpenBLAS's kernels compute a tile
 * at the edge of a call (rows or columns left over from the kernel's unroll)
 * in a different order of summation from an interior tile, so the same
 * element of C gets other bits when the matmul is cut into calls of other
 * shapes (measured with OpenBLAS 0.3.21: Haswell kernels, [150 x 32] x
 * [32 x 64] cut at row 75: 623 of 9,600 elements differ; SkylakeX kernels,
 * [150 x 64] x [64 x 200] cut at row 72: the 8 edge columns differ; this is
 * why a split by team size held on one CPU and failed on another). So the
 * blocks are fixed by (M, N, K); every block is one sgemm call of the same
 * shape at the same place whoever computes it, and threads only take
 * blocks. One thread makes the same calls in the same order: the same bits
 * for any team size.
 *
 * How many blocks: each call packs its own slice of the operands, so every
 * extra row block re-packs B (the weights) and every extra column block
 * re-packs A; too few blocks leave threads idle. GEMM_BLOCKS = 4 lets up to
 * 4 threads share a matmul. Measured on GPT-2-small windows (M = 1024, 12
 * layers, 2 threads, AVX-512 kernels): the forward pass with 2 row blocks
 * ran at 1,565 tokens/s, with 4 at 1,500 (-4%), with 8 at 1,450 (-7%);
 * 2 x 2 blocks instead of 4 x 1 gained nothing. Rows are cut first (blocks
 * of at least GEMM_MIN_ROWS), then columns until there are GEMM_BLOCKS
 * blocks (at least GEMM_MIN_COLS wide): a window of 1,024 tokens gets 4 x 1
 * blocks of 256 rows, one token 1 x 4 column blocks. Sizes are multiples
 * of 16, the last block takes the remainder. */
static int clamp_blocks(int want, int size, int min_size) {
    int most = size / min_size;
    if (want > most) want = most;
    return want < 1 ? 1 : want;
}

GemmGrid gemm_grid(int M, int N, int K) {
    (void)K; /* K is the same for every block; kept so that a rule may use it */
    int gm = clamp_blocks(GEMM_BLOCKS, M, GEMM_MIN_ROWS);
    int gn = clamp_blocks(GEMM_BLOCKS / gm, N, GEMM_MIN_COLS);
    GemmGrid g;
    g.rows = ((M + gm - 1) / gm + 15) / 16 * 16;
    g.cols = ((N + gn - 1) / gn + 15) / 16 * 16;
    g.gm = (M + g.rows - 1) / g.rows;
    g.gn = (N + g.cols - 1) / g.cols;
    return g;
}

static void gemm_block(const GemmJob *j, int bi) {
    int m0 = (bi / j->g.gn) * j->g.rows, n0 = (bi % j->g.gn) * j->g.cols;
    int m1 = m0 + j->g.rows < j->M ? m0 + j->g.rows : j->M;
    int n1 = n0 + j->g.cols < j->N ? n0 + j->g.cols : j->N;
    float *c = j->c + (size_t)m0 * j->N + n0;
    float beta = j->accumulate ? 1.0f : 0.0f;
    if (j->bias && !j->accumulate) {
        /* start from the bias rows and let sgemm accumulate (beta = 1): one
         * pass over the output instead of sgemm's zeroing pass plus a bias pass */
        for (int t = m0; t < m1; t++)
            memcpy(c + (size_t)(t - m0) * j->N, j->bias + n0, sizeof(float) * (size_t)(n1 - n0));
        beta = 1.0f;
    }
    const float *b = j->trans_b ? j->b + (size_t)n0 * j->K : j->b + n0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, j->trans_b ? CblasTrans : CblasNoTrans, m1 - m0, n1 - n0,
                j->K, 1.0f, j->a + (size_t)m0 * j->K, j->K, b, j->trans_b ? j->K : j->N, beta, c, j->N);
    if (j->bias && j->accumulate)
        for (int t = m0; t < m1; t++) {
            float *ct = c + (size_t)(t - m0) * j->N;
            const float *bt = j->bias + n0;
            for (int i = 0; i < n1 - n0; i++) ct[i] += bt[i];
        }
}

/* Thread tid takes a contiguous run of blocks (row-major: a thread's column
 * blocks share its rows of A). */
static void gemm_task(void *ctx, int tid, int nt) {
    const GemmJob *j = ctx;
    int b0, b1;
    parallel_slice(j->n_blocks, 1, tid, nt, &b0, &b1);
    for (int bi = b0; bi < b1; bi++) gemm_block(j, bi);
}

void matmul_forward_rows(float *out, const float *x, const float *W, const float *bias, int T, int R, int K,
                         int N, int accumulate) {
    if (T <= 0 || N <= 0 || R <= 0) return;
    GemmGrid g = gemm_grid(T, N, K);
    int gm = R >= T ? g.gm : (R + g.rows - 1) / g.rows;
    GemmJob j = {out, x, W, bias, T, N, K, 0, accumulate, g, gm * g.gn};
    parallel_run(gemm_task, &j);
}

void matmul_forward(float *out, const float *x, const float *W, const float *bias, int T, int K,
                    int N, int accumulate) {
    matmul_forward_rows(out, x, W, bias, T, T, K, N, accumulate);
}

void matmul_nt_forward(float *out, const float *x, const float *W, int T, int K, int N) {
    if (T <= 0 || N <= 0) return;
    GemmGrid g = gemm_grid(T, N, K);
    GemmJob j = {out, x, W, NULL, T, N, K, 1, 0, g, g.gm * g.gn};
    parallel_run(gemm_task, &j);
}

/* Rows of a T-row pass are cut by the matmuls into blocks of
 * gemm_grid(T, ...).rows (a function of T alone) and by attention into
 * query blocks of PROBE_ATT_BLOCK; a prefix that ends where both end is
 * computed by the same sgemm calls as in the whole pass. */
int prefix_rows(int T, int need) {
    if (need <= 0 || need >= T) return T;
    int a = gemm_grid(T, 1, 1).rows, b = PROBE_ATT_BLOCK, x = a, y = b;
    while (y) {
        int r = x % y;
        x = y;
        y = r;
    }
    long step = (long)a / x * b; /* lcm */
    long cut = (need + step - 1) / step * step;
    return cut < T ? (int)cut : T;
}

/* ---- attention ------------------------------------------------------------- */

typedef struct {
    float *out, *att;
    const float *qkv;
    int T, C, NH, slots;
    float scale;
} AttentionJob;

/* Heads h0..h1 of the window; att is this thread's own block of scores. */
static void attention_heads(const AttentionJob *j, float *att, int h0, int h1) {
    const int T = j->T, C = j->C, HS = C / j->NH, C3 = 3 * C;
    const float scale = j->scale;
    for (int h = h0; h < h1; h++) {
        const float *q = j->qkv + h * HS;
        const float *k = j->qkv + C + h * HS;
        const float *v = j->qkv + 2 * C + h * HS;
        /* Query rows in blocks: block [r0, r1) only needs keys [0, r1), so
         * the causal upper triangle is mostly never computed. */
        for (int r0 = 0; r0 < T; r0 += PROBE_ATT_BLOCK) {
            int r1 = r0 + PROBE_ATT_BLOCK < T ? r0 + PROBE_ATT_BLOCK : T;
            int M = r1 - r0, N = r1;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, HS, scale, q + (size_t)r0 * C3,
                        C3, k, C3, 0.0f, att, N);
            /* unnormalised softmax; the 1/sum goes onto the HS outputs of the
             * row instead of its `valid` weights */
            float inv[PROBE_ATT_BLOCK];
            for (int i = 0; i < M; i++) {
                float *row = att + (size_t)i * N;
                int valid = r0 + i + 1; /* keys 0..r0+i */
                float mx = row_max(row, valid);
                inv[i] = 1.0f / exp_shift_sum(row, valid, mx);
                for (int c = valid; c < N; c++) row[c] = 0.0f;
            }
            float *o = j->out + (size_t)r0 * C + h * HS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, HS, N, 1.0f, att, N, v, C3, 0.0f,
                        o, C);
            for (int i = 0; i < M; i++)
                for (int c = 0; c < HS; c++) o[(size_t)i * C + c] *= inv[i];
        }
    }
}

static void attention_task(void *ctx, int tid, int nt) {
    const AttentionJob *j = ctx;
    int users = nt < j->slots ? nt : j->slots; /* one score block per thread */
    if (tid >= users) return;
    int h0, h1;
    parallel_slice(j->NH, 1, tid, users, &h0, &h1);
    size_t block = (size_t)(PROBE_ATT_BLOCK < j->T ? PROBE_ATT_BLOCK : j->T) * j->T;
    attention_heads(j, j->att + (size_t)tid * block, h0, h1);
}

void attention_forward(float *out, float *att, int att_slots, const float *qkv, int T, int C,
                       int NH, float scale) {
    AttentionJob j = {out, att, qkv, T, C, NH, att_slots < 1 ? 1 : att_slots, scale};
    parallel_run(attention_task, &j);
}

/* ---- activations ----------------------------------------------------------- */

typedef struct {
    float *x;
    size_t n;
    void (*fn)(float *x, size_t n);
} MapJob;

static void map_task(void *ctx, int tid, int nt) {
    const MapJob *j = ctx;
    size_t lo = j->n * (size_t)tid / (size_t)nt, hi = j->n * (size_t)(tid + 1) / (size_t)nt;
    lo &= ~(size_t)15; /* whole vectors, except at the very end */
    hi = tid == nt - 1 ? j->n : hi & ~(size_t)15;
    if (hi > lo) j->fn(j->x + lo, hi - lo);
}

static void map_parallel(void (*fn)(float *, size_t), float *x, size_t n) {
    MapJob j = {x, n, fn};
    parallel_run(map_task, &j);
}

/* gelu_new(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 * 0.5 (1 + tanh(u)) == 1 / (1 + exp(-2u)), one exp and one division. */
static void gelu_new_range(float *x, size_t n) {
    const float s2 = 2.0f * 0.7978845608028654f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u2 = s2 * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + exp_f32(-u2));
    }
}

static void gelu_erf_range(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

static void relu_range(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void gelu_new_forward(float *x, size_t n) { map_parallel(gelu_new_range, x, n); }
void gelu_erf_forward(float *x, size_t n) { map_parallel(gelu_erf_range, x, n); }
void relu_forward(float *x, size_t n) { map_parallel(relu_range, x, n); }
