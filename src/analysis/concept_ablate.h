/* concept_ablate.h — the causal check of a concept ranking: ablate the
 * concept's top neurons and see whether the loss grows where the NEXT token
 * is a concept token more than elsewhere, beside random neurons of the same
 * layers (`probe ablate --concept NAME --top K`).
 *
 *   ConceptTokens ct;  concept_tokens_load(store, run, concept, &ct, err);
 *   concept_random_neurons(top_layer, top_neuron, k, n_inner, seed, out);   // one control set
 *   ... conditions_measure(..., keep = 1, ...)
 *   ConceptSplit sp;  concept_split(&cs.c[i], &ct, &sp);
 *   concept_tokens_free(&ct);
 *
 * "In" tokens are the predicted tokens that end a concept word (concept.h),
 * located as `probe record` stores them (document index, position). */
#ifndef PROBE_CONCEPT_ABLATE_H
#define PROBE_CONCEPT_ABLATE_H

#include <stdint.h>

#include "concept.h"
#include "conditions.h"
#include "store.h"

typedef struct {
    int n_docs;
    int64_t *off;  /* [n_docs + 1] where each document's flags start */
    uint8_t *flag; /* 1 = the token ends a concept word */
    int64_t n_in;  /* flags set */
} ConceptTokens;

/* Which tokens of recorded run `run` are concept tokens. 0, or -1 with err. */
int concept_tokens_load(Store *s, int64_t run, const Concept *c, ConceptTokens *out, char *err);
void concept_tokens_free(ConceptTokens *ct); /* accepts a zeroed struct */
int concept_tokens_has(const ConceptTokens *ct, int doc, int pos);

/* A control set for top neurons (layer[i], neuron[i]), i < k: for each, a
 * neuron of the same layer drawn uniformly (seeded, splitmix64) among those
 * neither in the top set nor drawn before. out[i] is the neuron drawn for
 * layer[i]. -1 when a layer has too few other neurons. */
int concept_random_neurons(const int *layer, const int *neuron, int k, int n_inner, uint64_t seed, int *out);

/* A condition's effects split by the predicted token: "in" where it is a
 * concept token (what the issue of a concept's neurons is usually asked
 * about), "after" where the token before it is (the position where the
 * concept's neurons fire writes to this prediction), "out" the rest: counts
 * and mean delta loss and KL of each part (NAN for an empty part). A token
 * both in and after counts as in. */
typedef struct {
    int64_t n_in, n_after, n_out;
    double dloss_in, dloss_after, dloss_out, kl_in, kl_after, kl_out;
} ConceptSplit;
void concept_split(const Condition *c, const ConceptTokens *ct, ConceptSplit *out);

#endif
