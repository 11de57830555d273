/* kv_store.h — what `probe kv` and `probe neuron` read and write
 * (schema/090_kv.sql): the tokens after a neuron's triggers, value
 * projections keyed by model, and the key-value agreement of a run.
 *
 *   kv_next_tokens(s, run, layer, F, N, next, err);       // [F x N], -1 = none
 *   KvWriter *w = kv_writer_begin(s, &head, err);         // BEGIN + kv_runs row
 *   kv_writer_layer(w, layer, "raw", &summary, neurons, F, err);
 *   kv_writer_values(w, checksum, layer, "raw", top, bottom, F, k, tok, err);
 *   kv_writer_commit(w, &id, err);                        // or kv_writer_abort(w)
 *   value_tokens_load(s, checksum, layer, neuron, "raw", "promoted", out, k, &n, err);
 *
 * The types here are what the analyses (analysis/value_proj.h, kv.h)
 * compute, so that storing them needs no conversion. */
#ifndef PROBE_KV_STORE_H
#define PROBE_KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tokenizer.h"

typedef struct {
    int32_t id;    /* representative token id (the smallest sharing its row); -1 = none */
    int32_t count; /* vocabulary ids sharing that unembedding row */
    float logit;
} ValueToken;

typedef struct {
    int32_t next_id;   /* after the top-1 trigger; -1 when none */
    int32_t value_top; /* the value's top token (representative id) */
    int agree;         /* 1 / 0; -1 when next_id is -1 */
    int n_triggers;    /* triggers with a next token */
    double mean_rank, median_rank; /* NAN when n_triggers is 0 */
    int32_t best_rank;             /* 0 when n_triggers is 0 */
} KvNeuron;

typedef struct {
    int neurons; /* with a top-1 next token */
    double agreement, mean_rank, median_rank;
    double shuffled_agreement, shuffled_mean_rank, shuffled_median_rank;
    double chance; /* 1 / distinct vocabulary entries */
} KvLayer;

/* next[j * N + i] = the id of the token after neuron j's trigger of rank
 * i + 1 in run `run` (its stored top examples), -1 when it has no such
 * trigger or the trigger ends its document. */
int kv_next_tokens(Store *s, int64_t run, int layer, int F, int N, int32_t *next, char *err);

typedef struct {
    int64_t run_id;
    uint64_t model_checksum;
    const char *layers_json;
    int triggers;
    int64_t seed;
    int distinct_rows;
    double seconds;
} KvRunRow;

typedef struct KvWriter KvWriter;
KvWriter *kv_writer_begin(Store *s, const KvRunRow *head, char *err);
int kv_writer_layer(KvWriter *w, int layer, const char *variant, const KvLayer *l, const KvNeuron *n, int F,
                    char *err);
/* Replaces the model's stored value tokens of (layer, variant). */
int kv_writer_values(KvWriter *w, uint64_t model_checksum, int layer, const char *variant, const ValueToken *top,
                     const ValueToken *bottom, int F, int k, const Tokenizer *tok, char *err);
int kv_writer_commit(KvWriter *w, int64_t *id, char *err);
void kv_writer_abort(KvWriter *w); /* rolls back; accepts NULL */

/* The stored value tokens of one neuron (rank order), at most cap: *n of
 * them (0 when the model's values were never projected). text[i] gets a
 * copy of each token's text (the caller frees each). */
int value_tokens_load(Store *s, uint64_t model_checksum, int layer, int neuron, const char *variant,
                      const char *direction, ValueToken *out, char **text, int cap, int *n, char *err);

#endif
