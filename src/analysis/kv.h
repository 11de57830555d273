/* kv.h — Geva et al. 2021's key-value reading of one FFN layer: does a
 * neuron's value (what it writes, value_proj.h) predict the token that
 * follows its key's triggers (its top activating tokens)?
 *
 *   int32_t *next;   // [F x N]: the token after each neuron's i-th trigger, -1 when none
 *   kv_shuffle(F, seed, perm);                       // the baseline's pairing
 *   kv_layer(m, vv, layer, VALUE_RAW, next, N, perm, k, neurons, &summary, top, bottom, err);
 *
 * Per neuron: the next token of its top-1 trigger, its value's top token,
 * whether they are the same vocabulary entry (identical unembedding rows are
 * one entry, value_proj.h), and the ranks of all its triggers' next tokens in
 * its value distribution. Per layer: the agreement rate over neurons whose
 * top-1 trigger has a next token, the mean and median rank over every
 * (neuron, trigger) pair, and the same with each value paired with another
 * neuron's triggers (perm: a single random cycle, so no neuron keeps its
 * own), which is what chance looks like in this layer. */
#ifndef PROBE_KV_H
#define PROBE_KV_H

#include <stdint.h>

#include "model.h"
#include "value_proj.h"

/* KvNeuron, KvLayer: kv_store.h */

/* A single random cycle over 0..n-1 (Sattolo), seeded: perm[j] != j for n > 1. */
void kv_shuffle(int n, uint64_t seed, int32_t *perm);

/* One layer, one variant. top / bottom ([F x k]) receive the value
 * projections (NULL: not wanted). N <= 128. 0, or -1 with err. */
int kv_layer(Model *m, const ValueVocab *vv, int layer, ValueVariant variant, const int32_t *next, int N,
             const int32_t *perm, int k, KvNeuron *neurons, KvLayer *out, ValueToken *top, ValueToken *bottom,
             char *err);

#endif
