/* neuron_sample.h — tokens from the middle of a neuron's distribution, not
 * only its extreme: a few windows of a recorded run replayed, and the first
 * tokens whose activation falls in each band of values (quantile bands taken
 * from the run's histogram), as neuron viewers show them.
 *
 *   SampleBand b[3] = {{.lo = q50, .hi = q90}, {.lo = q90, .hi = q99}, {.lo = q99, .hi = INFINITY}};
 *   neuron_sample_bands(store, run, model, layer, neuron, 16, b, 3, 2, err);
 *   // b[i].n tokens: b[i].doc[k], b[i].pos[k] (as tokens.pos), b[i].value[k]
 *
 * The windows are spread evenly over the run's documents (the first window
 * of every d-th document) and run exactly as `probe record` ran them. */
#ifndef PROBE_NEURON_SAMPLE_H
#define PROBE_NEURON_SAMPLE_H

#include <stdint.h>

#include "model.h"
#include "store.h"

#define SAMPLE_PER_BAND_MAX 4

typedef struct {
    double lo, hi; /* the band [lo, hi) */
    int n;
    int doc[SAMPLE_PER_BAND_MAX], pos[SAMPLE_PER_BAND_MAX];
    float value[SAMPLE_PER_BAND_MAX];
} SampleBand;

int neuron_sample_bands(Store *s, int64_t run, Model *m, int ctx, int layer, int neuron, int max_windows,
                        SampleBand *bands, int n_bands, int per_band, char *err);

#endif
