/* kernels.c — see kernels.h. The matmuls are cblas_sgemm; everything else
 * is a plain loop written so that the compiler can vectorise it. */
#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

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
                    row[j] = expf(row[j] - mx);
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

void gelu_new_forward(float *x, size_t n) {
    const float s = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(s * (v + 0.044715f * v * v * v)));
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
