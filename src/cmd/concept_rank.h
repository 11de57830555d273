/* concept_rank.h — `probe top-neurons --concept NAME | --probe FILE | --words
 * LIST`: ranks a recorded run's neurons by how selectively they fire for a
 * concept (analysis/concept_score.h), stores the ranking
 * (concept_runs, concept_scores) and prints it with each neuron's top
 * tokens, as a table or --json.
 *
 * A NAME is probes/NAME.json, looked up in $PROBE_PROBES (a directory) when
 * set, else in the probes/ folder next to the binary's repository, else in
 * ./probes; a NAME with a '/' or ending in .json is a path. */
#ifndef PROBE_CONCEPT_RANK_H
#define PROBE_CONCEPT_RANK_H

typedef enum { CONCEPT_BY_AUROC, CONCEPT_BY_D, CONCEPT_BY_PRECISION } ConceptOrder;

typedef struct {
    const char *db, *model;
    const char *concept, *probe, *words; /* exactly one is set */
    const char *drop;                    /* --drop FLAGS, or NULL */
    long run, layer, limit;              /* run, layer: -1 = default */
    ConceptOrder by;
    int json, quiet;
    /* --max-error: a listed neuron whose AUROC bound exceeds it gets its exact
     * AUROC instead, from a replay of the whole run (CONCEPT_MAX_ERROR by
     * default; --exact is 0) */
    double max_error;
} ConceptRankOptions;

/* The default --max-error: what a listed AUROC may be off by at most. */
#define CONCEPT_MAX_ERROR 0.002

/* "auroc" / "d" / "precision": 0, else -1. */
int concept_order_parse(const char *s, ConceptOrder *out);

/* Runs the ranking; returns the exit code (errors already printed). */
int concept_rank(const ConceptRankOptions *o);

#include "concept.h"
#include "concept_store.h"

/* The concept of --concept NAME / --probe FILE / --words LIST (exactly one
 * non-NULL), with --drop FLAGS. 0 and *out; else -1 with err and *usage = 1
 * when it is the user's option that is wrong (no such concept name, a bad
 * --words list) rather than a file. */
int concept_open(const char *concept, const char *probe, const char *words, const char *drop, Concept **out,
                 int *usage, char *err);

#include "concept_score.h"
#include "neuron_query.h"

/* Scores every neuron of `layer` (or of every recorded layer when < 0) of
 * the run for concept c with model m, and stores the ranking (concept_runs,
 * concept_scores). *sc (n_layers x n_inner scores, the caller frees), *n,
 * *t and layers_json (the scored layers) are set on success; *concept_run
 * is the stored ranking's id, or 0 when storing failed (store_err says
 * why; the scores are still good). -1 with err when scoring failed. */
int concept_rank_compute(Store *s, const NeuronRun *run, Model *m, const Concept *c, long layer, const char *drop,
                         int quiet, ConceptScore **sc, size_t *n, ConceptTotals *t, ConceptKeep *keep,
                         int64_t *concept_run, char *layers_json, size_t cap, char *store_err, char *err);

/* Sorts scores best first by `by` (NaN last; ties by d, then layer, neuron). */
void concept_scores_sort(ConceptScore *sc, size_t n, ConceptOrder by);

#endif
