/* kernels.c — see kernels.h. The matmuls are cblas_sgemm; everything else
 * is a plain loop written so that the compiler can vectorise it. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x in about [-87, 88], written without calls or branches so
 * that loops over it vectorise: x = n*ln2 + r, exp(r) by a degree-6
 * polynomial on |r| <= ln2/2, 2^n built in the exponent bits. Relative
 * error about 2e-7 (a few ulp), well inside the 1e-4 agreement target. */
static inline float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest by the 1.5 * 2^23 trick (vectorises, unlike roundf) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* Cody-Waite ln2 split */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; int32_t i; } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

void layernorm_forward(float *out, const float *x, const float *w, const float *b, float eps, int T,
                       int C) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        float sum = 0.0f;
        for (int i = 0; i < C; i++) sum += xt[i];
        float mean = sum / (float)C;
        float var = 0.0f;
        for (int i = 0; i < C; i++) {
            float d = xt[i] - mean;
            var += d * d;
        }
        var /= (float)C;
        float rstd = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < C; i++) ot[i] = (xt[i] - mean) * rstd * w[i] + b[i];
    }
}

void matmul_forward(float *out, const float *x, const float *W, const float *bias, int T, int K,
                    int N, int accumulate) {
    if (!accumulate && bias) {
        /* start from the bias rows and let sgemm accumulate (beta = 1): one
         * pass over out instead of sgemm's zeroing pass plus a bias pass */
        for (int t = 0; t < T; t++) memcpy(out + (size_t)t * N, bias, sizeof(float) * (size_t)N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1.0f, x, K, W, N, 1.0f, out, N);
        return;
    }
    float beta = accumulate ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, K, 1.0f, x, K, W, N, beta, out, N);
    if (bias)
        for (int t = 0; t < T; t++) {
            float *ot = out + (size_t)t * N;
            for (int j = 0; j < N; j++) ot[j] += bias[j];
        }
}

void attention_forward(float *out, float *att, const float *qkv, int T, int C, int NH) {
    int HS = C / NH;
    int C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    for (int h = 0; h < NH; h++) {
        const float *q = qkv + h * HS;
        const float *k = qkv + C + h * HS;
        const float *v = qkv + 2 * C + h * HS;
        /* Query rows in blocks: block [r0, r1) only needs keys [0, r1), so
         * the causal upper triangle is mostly never computed. */
        for (int r0 = 0; r0 < T; r0 += PROBE_ATT_BLOCK) {
            int r1 = r0 + PROBE_ATT_BLOCK < T ? r0 + PROBE_ATT_BLOCK : T;
            int M = r1 - r0, N = r1;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, HS, scale, q + (size_t)r0 * C3,
                        C3, k, C3, 0.0f, att, N);
            for (int i = 0; i < M; i++) {
                float *row = att + (size_t)i * N;
                int valid = r0 + i + 1; /* keys 0..r0+i */
                float mx = row[0];
                for (int j = 1; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
                for (int j = 0; j < valid; j++) {
                    row[j] = exp_poly(row[j] - mx);
                    sum += row[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j < valid; j++) row[j] *= inv;
                for (int j = valid; j < N; j++) row[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, HS, N, 1.0f, att, N, v, C3, 0.0f,
                        out + (size_t)r0 * C + h * HS, C);
        }
    }
}

/* gelu_new(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 * 0.5 (1 + tanh(u)) == 1 / (1 + exp(-2u)), one exp and one division. */
void gelu_new_forward(float *x, size_t n) {
    const float s2 = 2.0f * 0.7978845608028654f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u2 = s2 * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + exp_poly(-u2));
    }
}

void gelu_erf_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void relu_forward(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

double logsumexp(const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)(x[i] - mx));
    return (double)mx + log(sum);
}
