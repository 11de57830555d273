/* act_hist.h — the fixed activation grid of the record-time histograms
 * (schema/080_concepts.sql: neuron_histograms), and the AUROC they allow.
 *
 *   int b = act_hist_bin(x);             // 0..ACT_HIST_BINS-1, monotone in x
 *   double f; b = act_hist_locate(x, &f); // and x's place inside its bin, 0..1
 *
 * Why a fixed grid: a concept defined after recording has its positive
 * tokens' activations replayed exactly, but the negatives are the whole rest
 * of the corpus; their counts below any value come from these histograms.
 * A fixed grid (not one fitted to the data) merges exactly across resumed
 * sessions and shards. The grid is monotone (a higher bin never holds a
 * lower value), so "tokens below x" is a cumulative count plus part of one
 * bin, and the uncertainty of an AUROC is bounded by the tokens sharing a
 * bin with the positives.
 *
 * Its regions (value ranges, in increasing order) are chosen for GPT-2's
 * GELU post-activations: GELU has a minimum near -0.17 where the density of
 * values is singular (many inputs give almost the same output), so that
 * region is cut uniformly in sqrt(x - lo) (uniform in the GELU input near
 * the minimum); small magnitudes get logarithmic bins; exact zero has a bin
 * of its own (ReLU ties); the positive side, where selective neurons fire,
 * has 32 bins per octave from 0.125 to 8. Values outside every region (below
 * the minimum, huge, infinite) fall in the first or last bin. The bins are
 * listed in act_hist.c. Version 1. */
#ifndef PROBE_ACT_HIST_H
#define PROBE_ACT_HIST_H

#include <stdint.h>

#define ACT_HIST_BINS 1024
#define ACT_HIST_VERSION 1
#define ACT_HIST_ZERO_BIN 642 /* holds exactly 0 (and -0) */

/* The bin of x (NaN goes to bin 0). */
int act_hist_bin(float x);

/* The bins of x[0..n), the same as act_hist_bin's, in vector instructions
 * where the build has them. */
void act_hist_bins(const float *x, int n, int32_t *out);

/* The bin of x and, in *frac, where x lies in it as a fraction of the bin's
 * coordinate range (0 = its lower edge); 0.5 for the open-ended first and
 * last bins and the point bins. */
int act_hist_locate(float x, double *frac);

/* The value range of bin b: [*lo, *hi) (lo == hi for the exact-zero bin;
 * -inf / +inf at the ends). */
void act_hist_edges(int b, double *lo, double *hi);

#endif
