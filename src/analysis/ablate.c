/* ablate.c — see ablate.h. The baseline of a window is one plain forward;
 * each condition is one forward with its hooks, compared row by row with
 * the kept baseline. Per row: loss = lse - z[target], argmax, and
 * KL(base || ablated) from the kept baseline probabilities. */
#include "ablate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct Ablator {
    Model *m;
    int ctx, V;
    /* baseline of the current window, rows 0..T-2 (row t predicts ids[t+1]) */
    float *base_logits; /* [ctx x V] */
    float *base_prob;   /* [ctx x V] softmax of base_logits, float */
    double *base_lse;   /* [ctx] log-sum-exp of each row */
    double *base_psum;  /* [ctx] sum of base_prob's row in double */
    int32_t *base_top;  /* [ctx] argmax of each row */
    float *logits;      /* [ctx x V] the ablated forward */
    const int32_t *ids; /* the current window (borrowed) */
    int T, from;
};

Ablator *ablator_new(Model *m, int ctx, char *err) {
    if (ctx < 1 || ctx > m->cfg.n_positions) {
        err_set(err, "context %d out of range 1..%d", ctx, m->cfg.n_positions);
        return NULL;
    }
    Ablator *a = calloc(1, sizeof *a);
    if (!a) goto oom;
    a->m = m;
    a->ctx = ctx;
    a->V = m->cfg.vocab_size;
    size_t rows = (size_t)ctx * (size_t)a->V;
    a->base_logits = malloc(sizeof(float) * rows);
    a->base_prob = malloc(sizeof(float) * rows);
    a->logits = malloc(sizeof(float) * rows);
    a->base_lse = malloc(sizeof(double) * (size_t)ctx);
    a->base_psum = malloc(sizeof(double) * (size_t)ctx);
    a->base_top = malloc(sizeof(int32_t) * (size_t)ctx);
    if (!a->base_logits || !a->base_prob || !a->logits || !a->base_lse || !a->base_psum || !a->base_top)
        goto oom;
    return a;
oom:
    ablator_free(a);
    err_set(err, "out of memory for ablation buffers (3 x %d x %d floats)", ctx, m->cfg.vocab_size);
    return NULL;
}

void ablator_free(Ablator *a) {
    if (!a) return;
    free(a->base_logits);
    free(a->base_prob);
    free(a->logits);
    free(a->base_lse);
    free(a->base_psum);
    free(a->base_top);
    free(a);
}

/* exp(x) for x <= 0, in double, without calls or branches so that loops
 * over it vectorise: x = k*ln2 + r with |r| <= ln2/2, exp(r) by its Taylor
 * series to degree 13 (truncation < 2e-16 relative), 2^k built in the
 * exponent bits (k is rounded by the 1.5 * 2^52 trick: t's low mantissa
 * bits hold k, in two's complement). Arguments below -700 are clamped (exp(-700) ~ 1e-304, far
 * below anything a sum of probabilities can see). libm's exp is correct
 * but not vectorised, and it dominated the run time here. */
static inline double exp_le0(double x) {
    x = x < -700.0 ? -700.0 : x;
    double t = x * 1.4426950408889634 + 0x1.8p52;
    double k = t - 0x1.8p52;
    double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023) << 52; /* 2^k: (k + 1023) in the exponent field (unsigned: wraps) */
    double two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return p * two_k;
}

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

/* Sum of exp(z[v] - mx) over v; when e is not NULL also writes
 * e[v] = exp(z[v] - mx) as float. */
static double sum_exp(const float *z, int V, double mx, float *e) {
    double buf[CHUNK];
    Sum s = {0};
    for (int v0 = 0; v0 < V; v0 += CHUNK) {
        int n = V - v0 < CHUNK ? V - v0 : CHUNK;
        const float *zc = z + v0;
        for (int i = 0; i < n; i++) buf[i] = exp_le0((double)zc[i] - mx);
        if (e)
            for (int i = 0; i < n; i++) e[v0 + i] = (float)buf[i];
        sum_add(&s, buf, n);
    }
    return sum_value(&s);
}

/* Scales e[0..V) by inv (in double, rounded to float) and returns the sum
 * of the float results. */
static double scale_sum(float *e, int V, double inv) {
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

static float row_max(const float *z, int V) {
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    return mx;
}

double ablate_logsumexp(const float *z, int V) {
    double mx = row_max(z, V);
    return mx + log(sum_exp(z, V, mx, NULL));
}

int ablate_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

double ablate_kl_row(const float *prob, double psum, const float *zp, double lse_p, const float *zq,
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

int ablator_baseline(Ablator *a, const int32_t *ids, int T, int from, char *err) {
    if (T < 1 || T > a->ctx) return err_set(err, "window of %d tokens exceeds the context %d", T, a->ctx);
    if (from < 1 || from > T) return err_set(err, "first predicted token %d out of range 1..%d", from, T);
    a->ids = ids;
    a->T = T;
    a->from = from;
    if (model_forward(a->m, ids, T, NULL, a->base_logits, err)) return -1;
    int V = a->V;
    for (int t = from - 1; t < T - 1; t++) {
        const float *z = a->base_logits + (size_t)t * V;
        float *p = a->base_prob + (size_t)t * V;
        int top = ablate_argmax(z, V); /* also the row's max */
        double mx = z[top], sum = sum_exp(z, V, mx, p);
        double psum = scale_sum(p, V, 1.0 / sum), lse = mx + log(sum);
        a->base_lse[t] = lse;
        a->base_psum[t] = psum;
        a->base_top[t] = top;
    }
    return 0;
}

int ablator_count(const Ablator *a) { return a->T - a->from; }

int ablator_measure(Ablator *a, const ForwardHooks *hooks, TokenEffect *effects, AblateTotals *tot,
                    char *err) {
    if (!a->ids) return err_set(err, "no baseline computed");
    if (model_forward(a->m, a->ids, a->T, hooks, a->logits, err)) return -1;
    int V = a->V;
    for (int j = a->from; j < a->T; j++) {
        int t = j - 1, target = a->ids[j];
        const float *zb = a->base_logits + (size_t)t * V, *za = a->logits + (size_t)t * V;
        int top = ablate_argmax(za, V);
        double lse_a = (double)za[top] + log(sum_exp(za, V, za[top], NULL));
        TokenEffect e = {
            .pos = j,
            .token = target,
            .base_loss = a->base_lse[t] - (double)zb[target],
            .abl_loss = lse_a - (double)za[target],
            .kl = ablate_kl_row(a->base_prob + (size_t)t * V, a->base_psum[t], zb, a->base_lse[t], za,
                                lse_a, V),
            .base_top = a->base_top[t],
            .abl_top = top,
        };
        if (effects) effects[j - a->from] = e;
        tot->n++;
        tot->base_nll += e.base_loss;
        tot->abl_nll += e.abl_loss;
        tot->kl += e.kl;
        tot->dloss_sq += (e.abl_loss - e.base_loss) * (e.abl_loss - e.base_loss);
        tot->agree += e.base_top == e.abl_top;
    }
    return 0;
}

void ablate_figures(const AblateTotals *t, AblateFigures *f) {
    memset(f, 0, sizeof *f);
    f->n = t->n;
    if (t->n == 0) return;
    double n = (double)t->n;
    f->base_ce = t->base_nll / n;
    f->abl_ce = t->abl_nll / n;
    f->base_ppl = exp(f->base_ce);
    f->abl_ppl = exp(f->abl_ce);
    f->dloss = f->abl_ce - f->base_ce;
    if (t->n > 1) {
        double var = (t->dloss_sq - n * f->dloss * f->dloss) / (n - 1.0);
        f->dloss_se = sqrt((var > 0 ? var : 0) / n);
    }
    f->kl = t->kl / n;
    f->agreement = (double)t->agree / n;
}
