/* neuron_sweep.h — what removing each neuron alone would cost, for every
 * neuron of one layer or of all layers at once, by attribution patching:
 * the first-order (gradient) estimate of each single-neuron ablation.
 *
 *   NeuronSweep s;
 *   neuron_sweep_estimate(m, src, ctx, layer_or_-1, means_or_NULL, progress, ud, &s, err);
 *   s.estimate[l * s.n + j]   // estimated delta loss (nats/token) of ablating l:j
 *   neuron_sweep_free(&s);
 *
 * Ablating neuron j of layer l sets its post-activation a(t) to v (0, or
 * its mean) at every position t of a window. To first order the window's
 * summed loss changes by sum_t (v - a(t)) dLoss/da(t); one forward and one
 * backward pass per window (backward.h) give that for every neuron of every
 * layer from the lowest swept one up. estimate is its sum over windows
 * divided by the predicted tokens: the estimate of the condition's delta
 * loss (ablate.h), which `probe ablate --sweep neurons` then measures
 * exactly for the neurons it ranks first. The estimate is exact for a
 * change that enters the loss linearly and drifts from the measured effect
 * where the later layers' nonlinearities (layer norms, softmaxes, GELUs)
 * bend; KL has no first-order term (its gradient at the baseline is 0), so
 * none is estimated.
 *
 * Ownership: NeuronSweep owns its arrays; neuron_sweep_free releases them. */
#ifndef PROBE_NEURON_SWEEP_H
#define PROBE_NEURON_SWEEP_H

#include <stdint.h>

#include "conditions.h"
#include "doc_source.h"
#include "model.h"

typedef struct {
    int n_layer, n;      /* the model's layers; n = n_inner */
    int first, last;     /* the layers swept: first..last */
    double *estimate;    /* [n_layer x n] estimated delta loss per predicted token (swept layers) */
    double *act_mean;    /* [n_layer x n] mean post-activation over the positions run */
    double base_ce;      /* the baseline's mean next-token cross-entropy */
    AblateCount count;   /* documents, predicted tokens, seconds */
} NeuronSweep;

/* Over every window (ctx tokens, as conditions_measure) of src, the
 * neurons of `layer`, or of every layer when layer < 0. means: NULL (zero
 * ablation) or the value each neuron is set to, [n_layer x n_inner]. */
int neuron_sweep_estimate(Model *m, DocSource *src, int ctx, int layer, const float *means,
                          AblateProgressFn progress, void *user, NeuronSweep *out, char *err);
void neuron_sweep_free(NeuronSweep *s); /* accepts a zeroed struct */

/* The k neurons with the largest estimates over the swept layers, largest
 * first (ties: lower layer, then lower neuron), into layer[0..k),
 * neuron[0..k); k is capped at the neurons swept, *k_out says how many (0
 * when out of memory). */
void neuron_sweep_top(const NeuronSweep *s, int k, int *layer, int *neuron, int *k_out);

#endif
