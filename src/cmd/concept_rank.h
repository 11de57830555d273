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
} ConceptRankOptions;

/* "auroc" / "d" / "precision": 0, else -1. */
int concept_order_parse(const char *s, ConceptOrder *out);

/* Runs the ranking; returns the exit code (errors already printed). */
int concept_rank(const ConceptRankOptions *o);

#endif
