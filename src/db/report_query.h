/* report_query.h — what `probe report` reads from a probe database that the
 * neuron card's loaders (neuron_card.h, neuron_query.h, kv_store.h) do not:
 * every run, per-layer summaries, every neuron of a layer with its top
 * tokens, concept rankings, ablations and their per-token effects, and the
 * tokens around a recorded token with what the database stores of their
 * activations.
 *
 *   ReportRun *runs; int n;
 *   report_runs(s, &runs, &n, err);  ...  report_runs_free(runs, n);
 *   ReportLayer lay[L];  report_layers(s, run, lay, L, err);
 *   ReportNeuron *nr = calloc(F, sizeof *nr);  report_layer_neurons(s, run, layer, nr, F, err);
 *   ReportToken *ctx; int n;  report_context(s, run, doc, from, to, &ctx, &n, err);
 *
 * Every statement is read-only and bound to one run, layer or condition;
 * none scans a table of the whole database except ablations and
 * concept_runs (a handful of rows). Strings are malloc'd copies, freed by
 * the matching *_free (each accepts NULL / zero counts). Out-parameters are
 * written only on success. */
#ifndef PROBE_REPORT_QUERY_H
#define PROBE_REPORT_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- runs and layers ------------------------------------------------------ */

typedef struct {
    int64_t id, n_tokens, n_docs;
    char *status, *model_dir, *model_checksum, *model_config, *corpus_path, *layers, *full_layers, *started_at;
    char *blas; /* runs.blas: the OpenBLAS kernels it was recorded with; NULL unknown */
    double seconds;
    int n_layer, n_inner, ctx, top_k, n_examples;
} ReportRun;

/* Every run, by id. */
int report_runs(Store *s, ReportRun **out, int *n, char *err);
void report_runs_free(ReportRun *runs, int n);

/* Per recorded layer of a run (out[layer], layers 0..n_layer-1; .neurons 0
 * for a layer without statistics). */
typedef struct {
    int neurons, never_positive;
    double avg_frac_pos, avg_mean, max_max, median_frac_pos;
} ReportLayer;

int report_layers(Store *s, int64_t run, ReportLayer *out, int n_layer, char *err);

/* ---- the neurons of a layer ----------------------------------------------- */

#define REPORT_TOP_TOKENS 4 /* distinct tokens listed per neuron in a layer table */

typedef struct {
    int present; /* has statistics */
    double count, mean, std, min, max, frac_pos;
    char *tok[REPORT_TOP_TOKENS]; /* distinct tokens among its first 16 examples, most frequent first */
    int tok_n[REPORT_TOP_TOKENS];
    int n_tok;
} ReportNeuron;

/* Statistics and top tokens of the F neurons of one layer, out[neuron]. */
int report_layer_neurons(Store *s, int64_t run, int layer, ReportNeuron *out, int F, char *err);
void report_neurons_free(ReportNeuron *nr, int F);

/* ---- concept rankings ----------------------------------------------------- */

typedef struct {
    int64_t id, concept_tokens, tokens, words;
    char *name, *probe_path, *probe_checksum, *dropped_flags, *layers, *created_at; /* probe_path, dropped_flags may be NULL */
} ReportConcept;

/* The latest ranking of each concept (name and probe checksum) over the
 * run, by name. */
int report_concepts(Store *s, int64_t run, ReportConcept **out, int *n, char *err);
void report_concepts_free(ReportConcept *c, int n);

/* AUROC (NAN when NULL or not scored) of the F neurons of one layer in one
 * ranking: auroc[neuron]. */
int report_concept_layer(Store *s, int64_t concept_run, int layer, double *auroc, int F, char *err);

typedef struct {
    int layer, neuron;
    int64_t rank, examples_in, examples;
    double auroc, auroc_error, cohen_d, mean_in, mean_out, precision; /* NAN for NULL */
} ReportConceptRow;

/* The `limit` best neurons of a ranking (concept_top_neurons, rank order). */
int report_concept_top(Store *s, int64_t concept_run, ReportConceptRow *out, int limit, int *n, char *err);

/* ---- ablations ------------------------------------------------------------ */

typedef struct {
    int64_t id, source_run_id, documents, tokens; /* source_run_id 0 for a corpus */
    char *created_at, *model_dir, *source, *kind, *spec, *mode;
    double seconds;
} ReportAblation;

/* The ablations of one model (runs.model_checksum), by id. */
int report_ablations(Store *s, const char *model_checksum, ReportAblation **out, int *n, char *err);
void report_ablations_free(ReportAblation *a, int n);

typedef struct {
    int64_t id, tokens, neurons_edited;
    int layer; /* -1 when the condition is not one layer */
    char *label;
    double baseline_ce, ablated_ce, delta_loss, delta_loss_se, kl, top1;
} ReportCondition;

int report_conditions(Store *s, int64_t ablation, ReportCondition **out, int *n, char *err);
void report_conditions_free(ReportCondition *c, int n);

/* ---- tokens in context ---------------------------------------------------- */

typedef struct {
    int doc, pos;
    int64_t row;          /* tokens.id (0 for ablation tokens) */
    char *token;          /* text form */
    size_t byte_end;      /* in documents.text_bytes (run tokens) */
    double value;         /* the activation, or the delta loss (ablation tokens) */
    int has_value;
} ReportToken;

/* Tokens pos_from..pos_to of document doc (doc_index) of a run, in order.
 * .token is what a reader should see of each: the whole characters it
 * touches in documents.text, less those the token before it already shows
 * (the two tokens of a character that BPE cuts, such as ’, show it once, on
 * the first; the second shows ""), so that the context reads as the text. */
int report_context(Store *s, int64_t run, int doc, int pos_from, int pos_to, ReportToken **out, int *n, char *err);
void report_tokens_free(ReportToken *t, int n);

/* The exact bytes of a recorded document (documents.text_bytes): malloc'd,
 * *len bytes; NULL with err (also when there is no such document). */
char *report_doc_bytes(Store *s, int64_t run, int doc, size_t *len, char *err);

/* What the database stores of neuron `neuron`'s activation at token `row`
 * of `layer`: its full fp16 vector (token_full) when the layer was recorded
 * with --full, else the token's top-k (token_topk). 1 and *value when
 * stored; 0 when not (the neuron is not among the token's top-k); -1. */
int report_stored_activation(Store *s, int64_t row, int layer, int neuron, double *value, char *err);

/* The k tokens of a condition whose loss rose most (ablated - baseline), by
 * that; .value = the rise. */
int report_ablation_top_tokens(Store *s, int64_t condition, int k, ReportToken **out, int *n, char *err);
/* Tokens pos_from..pos_to of document doc as the condition measured them,
 * .value = their loss rise. */
int report_ablation_context(Store *s, int64_t condition, int doc, int pos_from, int pos_to, ReportToken **out, int *n,
                            char *err);

#endif
