/* layer_stats.h — one recorded layer's per-neuron results read back from a
 * finished run (schema/030 neuron_stats, 080 neuron_histograms): what
 * concept ranking and `probe merge` read, one layer at a time.
 *
 *   LayerStats st = {count, mean, var};          // min, max, frac: NULL when not wanted
 *   layer_stats_read(s, run, layer, F, &st, err);
 *   layer_hists_read(s, run, layer, F, n_bins, hist, &has_hist, err);
 *
 * Arrays are the caller's, F (the layer's width) long, hist F x n_bins. A
 * value read from a database is untrusted: rows of neurons outside 0..F-1
 * are skipped, a neuron without statistics and a histogram of another size
 * are errors. */
#ifndef PROBE_LAYER_STATS_H
#define PROBE_LAYER_STATS_H

#include <stdint.h>

#include "store.h"

typedef struct {
    int64_t *count;
    double *mean, *var;      /* var: the population variance */
    double *min, *max, *frac; /* frac_pos; each may be NULL */
} LayerStats;

/* Every neuron's statistics; -1 with err when one is missing (the run is not
 * finished) or on a database error. */
int layer_stats_read(Store *s, int64_t run, int layer, int F, LayerStats *st, char *err);

/* Every neuron's histogram into hist[j * n_bins + b] and *has_hist = 1, or
 * *has_hist = 0 (hist zeroed) when the run has none (recorded before schema
 * 8); -1 with err when only some neurons have one or one has another size. */
int layer_hists_read(Store *s, int64_t run, int layer, int F, int n_bins, uint32_t *hist, int *has_hist,
                     char *err);

#endif
