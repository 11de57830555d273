/* logits.c — see logits.h. Every sum is in double, in a fixed order that
 * vectorises (so results do not depend on the machine's vector width), over
 * terms from the branch-free exp of fastexp.h. */
#include "logits.h"

#include <math.h>
#include <string.h>

#include "fastexp.h"
#include "kernels.h"

/* Sums in double, in a fixed order (so results do not depend on the
 * machine) that vectorises: 2 x 4 partial sums in vector registers (GCC /
 * Clang vector extension) plus a scalar tail. */
typedef double Vec4d __attribute__((vector_size(32)));
typedef struct {
    Vec4d a, b;
    double tail;
} Sum;

static void sum_add(Sum *s, const double *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        Vec4d x0, x1;
        memcpy(&x0, x + i, sizeof x0);
        memcpy(&x1, x + i + 4, sizeof x1);
        s->a += x0;
        s->b += x1;
    }
    for (; i < n; i++) s->tail += x[i];
}

static double sum_value(const Sum *s) {
    Vec4d v = s->a + s->b;
    return ((v[0] + v[1]) + (v[2] + v[3])) + s->tail;
}

/* Rows are processed in chunks through a buffer on the stack: one simple
 * loop computes the terms (it vectorises), sum_add adds them. */
#define CHUNK 1024

double logits_exp_sum(const float *z, int V, double mx, float *e) {
    double buf[CHUNK];
    Sum s = {0};
    for (int v0 = 0; v0 < V; v0 += CHUNK) {
        int n = V - v0 < CHUNK ? V - v0 : CHUNK;
        const float *zc = z + v0;
        for (int i = 0; i < n; i++) buf[i] = exp_f64_le0((double)zc[i] - mx);
        if (e)
            for (int i = 0; i < n; i++) e[v0 + i] = (float)buf[i];
        sum_add(&s, buf, n);
    }
    return sum_value(&s);
}

double logits_scale_sum(float *e, int V, double inv) {
    double buf[CHUNK];
    Sum s = {0};
    for (int v0 = 0; v0 < V; v0 += CHUNK) {
        int n = V - v0 < CHUNK ? V - v0 : CHUNK;
        float *ec = e + v0;
        for (int i = 0; i < n; i++) {
            ec[i] = (float)(ec[i] * inv);
            buf[i] = ec[i];
        }
        sum_add(&s, buf, n);
    }
    return sum_value(&s);
}

int logits_argmax(const float *z, int n) {
    float mx = row_max(z, n); /* vectorised; then the first index holding it */
    for (int i = 0; i < n; i++)
        if (z[i] == mx) return i;
    return 0; /* NaN maximum */
}

double logits_logsumexp(const float *z, int n) {
    double mx = z[logits_argmax(z, n)];
    return mx + log(logits_exp_sum(z, n, mx, NULL));
}

double logits_nll(const float *z, int n, int target) { return logits_logsumexp(z, n) - (double)z[target]; }

double logits_kl(const float *prob, double psum, const float *zp, double lse_p, const float *zq,
                     double lse_q, int V) {
    double buf[CHUNK];
    Sum s = {0};
    for (int v0 = 0; v0 < V; v0 += CHUNK) {
        int n = V - v0 < CHUNK ? V - v0 : CHUNK;
        for (int i = 0; i < n; i++)
            buf[i] = (double)prob[v0 + i] * ((double)zp[v0 + i] - (double)zq[v0 + i]);
        sum_add(&s, buf, n);
    }
    return sum_value(&s) / psum + (lse_q - lse_p);
}

