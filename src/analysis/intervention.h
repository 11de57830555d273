/* intervention.h — parse the user's layer and neuron specs into the data
 * that model_forward applies (ForwardHooks.remove_ffn / .edits).
 *
 *   layers:  "3,5-7"          -> mask[3] = mask[5] = mask[6] = mask[7] = 1
 *   neurons: "5:123,5:456"    -> edits {5,123,value} {5,456,value}
 *   sets:    "5:7=1.5,0:3=-2" -> edits {5,7,1.5} {0,3,-2}
 * Layers are 0-based and checked against cfg; errors name the bad item,
 * e.g.  bad neuron '5:99999': neuron out of range 0..3071 */
#ifndef PROBE_INTERVENTION_H
#define PROBE_INTERVENTION_H

#include <stdint.h>

#include "model.h"

/* Sets mask[l] = 1 for each listed layer (mask has n_layer entries). */
int parse_layer_list(const char *spec, int n_layer, uint8_t *mask, char *err);

/* Appends one edit per "L:N" item with the given value. *edits is
 * realloc'd (start with NULL / 0). */
int parse_neuron_list(const char *spec, const ModelConfig *cfg, float value, NeuronEdit **edits,
                      int *n_edits, char *err);

/* Appends one edit per "L:N=VALUE" item. */
int parse_neuron_sets(const char *spec, const ModelConfig *cfg, NeuronEdit **edits, int *n_edits,
                      char *err);

#endif
