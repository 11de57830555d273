/* value_proj.h — what each FFN neuron writes, read through the unembedding
 * (Geva et al. 2021/2022: a neuron's value vector, its row of
 * mlp.c_proj.weight, as a distribution over next tokens).
 *
 *   ValueVocab *vv = value_vocab_new(m, err);          // the distinct unembedding rows
 *   ValueLayer out = {.k = 10, .top = ..., .bottom = ..., .n_queries = 0};
 *   value_project_layer(m, vv, layer, VALUE_RAW, &out, err);
 *   // out.top[j * k + i]: neuron j's i-th most promoted token (id, ids sharing its row, logit)
 *   value_vocab_free(vv);
 *
 * Two variants, since published tools differ: VALUE_RAW projects W_U · v,
 * VALUE_LNF projects W_U · (γ ⊙ v) with γ = ln_f's gain (the direction a
 * neuron's write takes through the final layer norm, its scale aside).
 *
 * Identical unembedding rows (a model trained with a trimmed softmax gives
 * every vocabulary id it never saw the same row: 30,451 ids in the demo
 * model) get identical logits for every neuron and would fill every top-k;
 * they are collapsed into one entry, named by their smallest id, with the
 * count of ids that share it. Ranks count every id: the rank of a token is
 * 1 + the number of vocabulary ids whose logit is strictly larger.
 *
 * A card needs one neuron: ValueLayer.first / .count limit the work to a
 * range. Cost: one sgemm per block of neurons against the distinct rows
 * ([block x C] x [C x distinct]), on the compute team; memory is one block
 * of logits, never neurons x vocabulary. */
#ifndef PROBE_VALUE_PROJ_H
#define PROBE_VALUE_PROJ_H

#include <stdint.h>

#include "kv_store.h" /* ValueToken */
#include "model.h"

typedef enum { VALUE_RAW = 0, VALUE_LNF = 1 } ValueVariant;

typedef struct ValueVocab ValueVocab;

/* The distinct rows of m's unembedding (lm_head). NULL with err when out of
 * memory. */
ValueVocab *value_vocab_new(const Model *m, char *err);
void value_vocab_free(ValueVocab *vv); /* accepts NULL */
int value_vocab_distinct(const ValueVocab *vv);
/* The distinct row of token id, its representative (smallest) id and the
 * number of ids that share it. */
int value_vocab_row(const ValueVocab *vv, int32_t id);
int32_t value_vocab_rep(const ValueVocab *vv, int row);
int32_t value_vocab_count(const ValueVocab *vv, int row);


/* Inputs and outputs of one layer's projection. */
typedef struct {
    int first, count;  /* the neurons first..first+count-1 (count 0: every neuron of the
                          layer); outputs are indexed from first (row 0 = neuron first) */
    int k;             /* tokens kept each side, 1..ValueVocab distinct */
    ValueToken *top;   /* [F x k] most promoted first (NULL: not wanted) */
    ValueToken *bottom;/* [F x k] most suppressed first (NULL: not wanted) */
    int n_queries;     /* per neuron */
    const int32_t *queries; /* [F x n_queries] token ids whose rank is wanted (-1: none) */
    int32_t *ranks;    /* [F x n_queries] their ranks, 1 = the top (0 for -1) */
} ValueLayer;

/* Projects every neuron's value vector of `layer`. 0, or -1 with err. */
int value_project_layer(Model *m, const ValueVocab *vv, int layer, ValueVariant variant, ValueLayer *out, char *err);

#endif
