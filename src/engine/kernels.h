/* kernels.h — the numeric building blocks of the forward pass.
 *
 * Outputs first, sizes last (llm.c style). Know only cblas, libc and the
 * compute team (parallel.h): every kernel splits its work over the team.
 * Shapes: T rows (tokens), C channels, F FFN width, all row-major. */
#ifndef PROBE_KERNELS_H
#define PROBE_KERNELS_H

#include <stddef.h>

/* out[t,:] = (x[t,:] - mean) / sqrt(var + eps) * w + b  for t < T. */
void layernorm_forward(float *out, const float *x, const float *w, const float *b, float eps, int T,
                       int C);

/* How a matmul C[M x N] = A[M x K] B is cut into sgemm calls: gm x gn
 * blocks of rows x cols (the last ones smaller), from the shape alone,
 * never from the team size (see kernels.c). */
#define GEMM_BLOCKS 4
#define GEMM_MIN_ROWS 64
#define GEMM_MIN_COLS 64
typedef struct {
    int rows, cols, gm, gn;
} GemmGrid;
GemmGrid gemm_grid(int M, int N, int K);

/* out[T x N] = x[T x K] @ W[K x N] + bias[N]   (bias may be NULL).
 * With accumulate != 0 it computes out += x @ W + bias instead. */
void matmul_forward(float *out, const float *x, const float *W, const float *bias, int T, int K,
                    int N, int accumulate);
/* The same for the first R rows only, cut into the blocks of T rows (R a
 * multiple of gemm_grid(T, ...).rows, or T): those rows get the bits of the
 * whole product. */
void matmul_forward_rows(float *out, const float *x, const float *W, const float *bias, int T, int R, int K,
                         int N, int accumulate);

/* The rows a forward pass over T positions must compute so that positions
 * 0..need-1 get the bits of the whole pass: need rounded up to where both the
 * matmul blocks and attention's query blocks of a T-row pass end, or T. */
int prefix_rows(int T, int need);

/* out[T x N] = x[T x K] @ W^T for W [N x K] (the unembedding with wte). */
void matmul_nt_forward(float *out, const float *x, const float *W, int T, int K, int N);

/* Causal multi-head self-attention. qkv [T x 3C] (q | k | v, head h at
 * columns h*HS of each part), out [T x C]; scores are scale * q.k
 * (config_attn_scale); att is scratch of att_slots blocks of
 * min(PROBE_ATT_BLOCK, T) * T floats, one per thread that takes heads (at
 * most att_slots threads do). */
#define PROBE_ATT_BLOCK 128
void attention_forward(float *out, float *att, int att_slots, const float *qkv, int T, int C,
                       int NH, float scale);

/* The largest of x[0..n), n >= 1, over 16 independent lanes (it vectorises
 * without -ffast-math); NaN is skipped unless it comes first in a lane. The
 * one row maximum: attention's softmax and logits_argmax use it. */
float row_max(const float *x, int n);

/* In place activations over n values. */
void gelu_new_forward(float *x, size_t n);  /* tanh approximation (GPT-2) */
void gelu_erf_forward(float *x, size_t n);  /* exact erf GELU */
void relu_forward(float *x, size_t n);


#endif
