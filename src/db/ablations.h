/* ablations.h — what `probe ablate` reads from and writes to the database:
 * the neuron means of a recorded run (mean ablation), and its results
 * (tables ablations, ablation_conditions, ablation_tokens of
 * schema/050_ablation.sql).
 *
 *   ablation_means_load(s, m->checksum, 0, L, F, need, means, &stats_run, err);
 *
 *   AblationWriter *w = ablation_writer_begin(s, &record, err);  // BEGIN + the ablations row
 *   for each condition:
 *       ablation_writer_condition(w, &cond, err);
 *       for each of its tokens: ablation_writer_token(w, doc, &effect, bytes, len, err);
 *   ablation_writer_commit(w, &ablation_id, err);                 // COMMIT, or ROLLBACK on failure
 *
 * All rows of one ablation are written in one transaction, so an
 * interrupted or failed run stores nothing. Every TEXT value is the text
 * form (utf8.h) of what it is given: valid UTF-8 (schema 060) whatever bytes
 * a path, a spec or a token holds. The figures stored are the analysis's
 * own (ablate.h), unconverted. */
#ifndef PROBE_ABLATIONS_H
#define PROBE_ABLATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "ablate.h"
#include "store.h"

/* The neuron means for mean ablation: from run `want` (when > 0), which
 * must have been recorded with the model of this checksum, or else from the
 * latest complete run of that model. Fills means [n_layer x n_inner] for the
 * layers with need[l] set (others are left as they are) and *run. -1 with
 * err when there is no such run, or it lacks a needed layer's statistics
 * (the error says which `probe record` to run). */
int ablation_means_load(Store *s, uint64_t model_checksum, int64_t want, int n_layer, int n_inner,
                        const uint8_t *need, float *means, int64_t *run, char *err);

/* The row of `ablations`: one invocation. */
typedef struct {
    const char *model_dir;
    uint64_t model_checksum;
    const char *source;       /* the corpus path, or "run:ID" */
    uint64_t source_checksum; /* the corpus file's (stored when source_run_id is 0) */
    int64_t source_run_id;    /* the recorded run measured, or 0 for a corpus file */
    int64_t stats_run_id;     /* mean mode: the run whose means were used, else 0 */
    const char *kind;         /* "no-ffn", "layers", "neurons" or "sweep-layers" */
    const char *spec;         /* the --layers / --neurons list as given, or NULL */
    int mean_mode;            /* 1: mode 'mean', 0: 'zero' */
    int ctx, bos, documents;
    int64_t tokens;           /* predicted tokens per condition */
    double seconds;
} AblationRecord;

/* A row of `ablation_conditions`. */
typedef struct {
    const char *label;
    int layer;                /* the one ablated layer, or -1 (NULL) */
    const uint8_t *layers;    /* [n_layer] layers whose whole FFN is ablated */
    int n_layer;
    int neurons_edited;
    const AblateFigures *fig;
} AblationConditionRecord;

typedef struct AblationWriter AblationWriter;

/* Opens the transaction (BEGIN IMMEDIATE: a busy database fails here) and
 * writes the ablations row. NULL with err on failure (nothing written). */
AblationWriter *ablation_writer_begin(Store *s, const AblationRecord *rec, char *err);

/* Writes the next condition (idx 0, 1, ... in call order); the tokens
 * written after it belong to it. 0, or -1 with err. */
int ablation_writer_condition(AblationWriter *w, const AblationConditionRecord *c, char *err);

/* Writes one token effect of the current condition: document doc, e->pos
 * (document position as tokens.pos), e->token with its bytes[0..len) as
 * the token text. 0, or -1 with err. */
int ablation_writer_token(AblationWriter *w, int doc, const TokenEffect *e, const char *bytes, size_t len,
                          char *err);

/* A neuron sweep's estimates (schema 110): for neurons 0..n-1 of layer, the
 * estimated delta loss and mean post-activation, and the index of the
 * condition written for it (idx[j] >= 0) or -1. Ranks are by estimate,
 * largest first (ties by neuron). 0, or -1 with err. */
int ablation_writer_estimates(AblationWriter *w, int layer, int n, const double *estimate, const double *act_mean,
                              const int *idx, char *err);

/* A neuron as the latest neuron sweep of its layer ranks it. */
typedef struct {
    int layer, neuron;
    double estimate;   /* estimated delta loss, nats/token */
    double measured;   /* the exact delta loss, or NAN when not verified */
    int64_t ablation_id;
} AblationNeuronRank;

/* The `limit` neurons with the largest estimates, for the model recorded
 * by run run_id, from the latest neuron sweep (`probe ablate --sweep
 * neurons`) of that model on each layer: of one layer (>= 0) or all.
 * *out (malloc'd, *n of them; none when no sweep). 0, or -1 with err. */
int ablation_neuron_ranking(Store *s, int64_t run_id, int layer, int limit, AblationNeuronRank **out, int *n,
                            char *err);

/* The `limit` largest estimates of one neuron sweep (ablation_id), every
 * layer it swept, with the measured delta loss where verified: *out
 * (malloc'd, *n of them; none when the ablation is no sweep). 0, or -1
 * with err. */
int ablation_estimates_top(Store *s, int64_t ablation_id, int limit, AblationNeuronRank **out, int *n, char *err);

/* Commits and frees w; sets *id to the new ablations.id. On failure rolls
 * back, frees w and returns -1 with err. */
/* The ablations row being written (its id), for rows of other tables that
 * belong to it in the same transaction. */
int64_t ablation_writer_id(const AblationWriter *w);
int ablation_writer_commit(AblationWriter *w, int64_t *id, char *err);

/* Rolls back and frees w (the failure path); accepts NULL. */
void ablation_writer_abort(AblationWriter *w);

#endif
