/* concept_store.h — what concept ranking reads from a recorded run and what
 * it writes (schema/080_concepts.sql).
 *
 *   ConceptRunInfo info;  concept_run_info(s, run, &info, err);
 *   (the layer's statistics and histograms: layer_stats.h)
 *   concept_examples_load(s, run, layer, F, N, rows, n, err);
 *   concept_results_save(s, &head, scores, n_scores, &id, err);   // one transaction
 *
 * The run's documents and tokens are read through run_docs.h. Arrays are the
 * caller's. */
#ifndef PROBE_CONCEPT_STORE_H
#define PROBE_CONCEPT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct {
    int ctx, bos, n_layer, n_inner, n_examples, n_docs;
    uint64_t model_checksum;
    int64_t n_tokens;
    char status[16];
} ConceptRunInfo;

/* Columns of run `run`; -1 with err when it does not exist. */
int concept_run_info(Store *s, int64_t run, ConceptRunInfo *out, char *err);

/* The token rows of each neuron's recorded top examples in one layer:
 * rows[j * N + i] for i < n[j]. */
int concept_examples_load(Store *s, int64_t run, int layer, int F, int N, int64_t *rows, int *n, char *err);

/* ---- results ----------------------------------------------------------------- */

typedef struct {
    int64_t run_id;
    const char *name, *probe_path, *dropped_flags; /* path, flags: NULL when none */
    uint64_t probe_checksum;
    int64_t words;
    const char *layers_json;
    int64_t concept_tokens, tokens;
    int64_t windows_replayed, windows;
    double seconds;
} ConceptRunRow;

typedef struct {
    int layer, neuron;
    double mean_in, mean_out, sd_in, sd_out, cohen_d; /* NAN: undefined (stored NULL) */
    double auroc, auroc_error;                        /* NAN: no histograms */
    int examples_in, examples;
    double precision;                                 /* NAN when no examples */
} ConceptScore;

/* A row of ablation_concept (the causal check of `probe ablate --concept`). */
typedef struct {
    int64_t ablation_id, concept_run_id;
    int idx;
    int random;    /* 0: the concept's top neurons, 1: a random set */
    int64_t seed;  /* random sets */
    const char *neurons;
    int64_t tokens_in, tokens_after, tokens_out;
    double dloss_in, kl_in, dloss_after, kl_after, dloss_out, kl_out; /* NAN: stored NULL */
} ConceptAblationRow;

/* Inserts one row into the caller's open transaction. */
int concept_ablation_add(Store *s, const ConceptAblationRow *r, char *err);

/* Replaces the stored AUROC of the given scores of a ranking with theirs
 * (an exact one: auroc_error 0), in one transaction. */
int concept_scores_set_auroc(Store *s, int64_t concept_run, const ConceptScore *sc, int n, char *err);

/* Inserts the concept_runs row and its scores in one transaction; *id is the
 * new concept_runs.id. */
int concept_results_save(Store *s, const ConceptRunRow *head, const ConceptScore *scores, size_t n, int64_t *id,
                         char *err);

#endif
