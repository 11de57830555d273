/* neuron_sweep.h — what removing each neuron of one layer alone would cost,
 * for every neuron at once, by attribution patching: the first-order
 * (gradient) estimate of each single-neuron ablation.
 *
 *   NeuronSweep s;
 *   neuron_sweep_estimate(m, src, ctx, layer, means_or_NULL, progress, ud, &s, err);
 *   s.estimate[j]     // estimated delta loss (nats/token) of ablating neuron j
 *   neuron_sweep_free(&s);
 *
 * Ablating neuron j sets its post-activation a_j(t) to v_j (0, or its mean)
 * at every position t of a window. To first order the window's summed loss
 * changes by sum_t (v_j - a_j(t)) dLoss/da_j(t); one forward and one
 * backward pass per window (backward.h) give that for every neuron of the
 * layer. estimate[j] is its sum over windows divided by the predicted
 * tokens: the estimate of the condition's delta loss (ablate.h), which
 * `probe ablate --sweep neurons` then measures exactly for the neurons it
 * ranks first. The estimate is exact for a change that enters the loss
 * linearly and drifts from the measured effect where the later layers'
 * nonlinearities (layer norms, softmaxes, GELUs) bend; KL has no first-order
 * term (its gradient at the baseline is 0), so none is estimated.
 *
 * Ownership: NeuronSweep owns its arrays; neuron_sweep_free releases them. */
#ifndef PROBE_NEURON_SWEEP_H
#define PROBE_NEURON_SWEEP_H

#include <stdint.h>

#include "conditions.h"
#include "doc_source.h"
#include "model.h"

typedef struct {
    int layer, n;      /* the layer; n = n_inner */
    double *estimate;  /* [n] estimated delta loss per predicted token */
    double *act_mean;  /* [n] mean post-activation over the positions run */
    double base_ce;    /* the baseline's mean next-token cross-entropy */
    AblateCount count; /* documents, predicted tokens, seconds */
} NeuronSweep;

/* Over every window (ctx tokens, as conditions_measure) of src. means: NULL
 * (zero ablation) or the value each neuron of the layer is set to ([n]). */
int neuron_sweep_estimate(Model *m, DocSource *src, int ctx, int layer, const float *means,
                          AblateProgressFn progress, void *user, NeuronSweep *out, char *err);
void neuron_sweep_free(NeuronSweep *s); /* accepts a zeroed struct */

/* The k neurons with the largest estimates, largest first, into top[0..k)
 * (k <= s->n); ties by neuron index. */
void neuron_sweep_top(const NeuronSweep *s, int k, int *top);

#endif
