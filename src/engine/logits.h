/* logits.h — reductions over one row of logits (a vocabulary's worth), in
 * double where sums need it: the one implementation of argmax,
 * log-sum-exp, the next-token loss, the float softmax that ablation keeps
 * and KL between two rows. Used by predict, trace, ablate and the tests.
 *
 *   double nll = logits_nll(row, V, target);    // -ln p(target), nats
 */
#ifndef PROBE_LOGITS_H
#define PROBE_LOGITS_H

/* Index of the largest of z[0..n) (the first on ties). */
int logits_argmax(const float *z, int n);

/* log(sum(exp(z[0..n)))) in double (max-shifted, exact to ~1e-15). */
double logits_logsumexp(const float *z, int n);

/* The next-token loss -ln softmax(z)[target] = logsumexp(z) - z[target]. */
double logits_nll(const float *z, int n, int target);

/* Sum over v of exp(z[v] - mx) in double (mx >= every z[v]); when e is
 * not NULL also writes e[v] = exp(z[v] - mx) rounded to float. */
double logits_exp_sum(const float *z, int n, double mx, float *e);

/* Scales e[0..n) by inv (in double, rounded to float) and returns the sum
 * of the float results, in double. */
double logits_scale_sum(float *e, int n, double inv);

/* KL(p || q) in nats for one row, where p = softmax(zp) is given as floats
 * prob[] summing (in double) to psum, and lse_p, lse_q are the log-sum-exp
 * of zp and zq: KL = sum_v p_v (zp_v - zq_v) / psum + lse_q - lse_p.
 * Dividing by psum keeps the value invariant to a constant shift of the
 * logits despite the rounding of prob[] to float. */
double logits_kl(const float *prob, double psum, const float *zp, double lse_p, const float *zq,
                 double lse_q, int n);

#endif
