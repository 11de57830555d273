/* neuron_query.h — the neurons of a recorded run, ranked by their statistics,
 * each with its top activating tokens in context: the rows that
 * `probe top-neurons` prints (and that concept ranking will list).
 *
 *   NeuronRun run;
 *   if (neuron_run_find(s, 0, &run, err)) ...          // the latest complete run
 *   if (layer >= 0 && !neuron_run_has_layer(&run, layer)) ...
 *   NeuronRows rows;
 *   neuron_query_top(s, &run, layer, NEURON_BY_MAX, 20, &rows, err);
 *   for (int i = 0; i < rows.n; i++) rows.rows[i].layer, .neuron, .max, .examples[..]
 *   neuron_rows_free(&rows);
 *   neuron_run_free(&run);
 *
 * Reads runs (one row), neuron_stats (ranked through its (run_id,
 * max|mean|frac_pos) indexes, or the primary key range of one layer) and, per
 * listed neuron, the first NEURON_EXAMPLES ranks of neuron_top_examples: no
 * scan over all neurons or tokens.
 *
 * Ownership: NeuronRun and NeuronRows own their strings and arrays (freed by
 * neuron_run_free / neuron_rows_free, which accept zeroed structs); both are
 * written only on success. */
#ifndef PROBE_NEURON_QUERY_H
#define PROBE_NEURON_QUERY_H

#include <stdint.h>

#include "store.h"

#define NEURON_EXAMPLES 5 /* top examples listed per neuron */

/* The run a listing reads (columns of runs). */
typedef struct {
    int64_t id;
    char *status;      /* 'running', 'interrupted' or 'complete' */
    char *model_dir;
    char *corpus_path;
    char *layers_text; /* runs.layers as stored: a JSON array, e.g. "[0,1]" */
    int n_layer;       /* layers of the model */
    int64_t n_tokens;  /* tokens recorded and committed */
    int *layers;       /* [n_layers] the recorded layers, parsed from layers_text */
    int n_layers;
    char *blas;        /* runs.blas: the OpenBLAS kernels it was recorded with; NULL unknown */
} NeuronRun;

/* Finds run `want` (> 0), or the latest complete run when want is 0.
 * Returns 0 and fills *run; -1 with err on failure ("database 'x' has no
 * complete run ..." is one); -2 with err when the database has no run
 * `want` (the caller's usage error). A runs.layers that is not a JSON array
 * of layer numbers in 0..n_layer-1 is an error. */
int neuron_run_find(Store *s, int64_t want, NeuronRun *run, char *err);
void neuron_run_free(NeuronRun *run); /* accepts a zeroed struct */

/* 1 when the run recorded `layer`, else 0. */
int neuron_run_has_layer(const NeuronRun *run, int layer);

/* What the neurons are ranked by (descending): max activation, mean, or the
 * fraction of tokens with activation > 0. */
typedef enum { NEURON_BY_MAX, NEURON_BY_MEAN, NEURON_BY_FRAC } NeuronOrder;

/* "max" / "mean" / "frac" (the --by values) to a NeuronOrder: 0, or -1 for
 * anything else. */
int neuron_order_parse(const char *s, NeuronOrder *out);
/* The neuron_stats column of an order: "max", "mean" or "frac_pos". */
const char *neuron_order_column(NeuronOrder by);

/* One top activating token of a neuron (a row of neuron_top_examples). */
typedef struct {
    int rank;             /* 1 = the largest activation */
    double value;         /* the activation */
    char *token;          /* text of the token */
    int token_id, doc, pos;
    char *left_context;   /* text before the token (up to 60 bytes), as stored */
    char *right_context;  /* text after it (up to 30 bytes) */
} NeuronExample;

/* One neuron with its statistics (a row of neuron_stats) and examples. */
typedef struct {
    int layer, neuron;
    double count, mean, variance, min, max, frac_pos;
    NeuronExample examples[NEURON_EXAMPLES];
    int n_examples;
} NeuronRow;

typedef struct {
    NeuronRow *rows; /* [n], best first */
    int n;
} NeuronRows;

/* The `limit` (>= 1) best neurons of the run by `by`, of one layer (>= 0)
 * or of all recorded layers (layer < 0); ties in layer, neuron order.
 * Returns 0 and fills *out (n == 0 when the run recorded no tokens), or -1
 * with err. */
int neuron_query_top(Store *s, const NeuronRun *run, int layer, NeuronOrder by, int limit, NeuronRows *out,
                     char *err);
void neuron_rows_free(NeuronRows *rows); /* accepts a zeroed struct */

/* Up to cap top examples of one neuron (rank order), with context: *n of
 * them. The caller frees them with neuron_examples_free. */
int neuron_query_examples(Store *s, int64_t run_id, int layer, int neuron, NeuronExample *out, int cap, int *n,
                          char *err);
/* One token of a run by document and position, as a NeuronExample (rank 0,
 * value as given). 0, 1 when there is no such token, -1 with err. */
int neuron_query_token(Store *s, int64_t run_id, int doc, int pos, double value, NeuronExample *out, char *err);
void neuron_examples_free(NeuronExample *ex, int n);

/* The given neurons (layer[i]:neuron[i], i < n) of the run with their
 * statistics and examples, in that order (concept rankings list them). */
int neuron_query_list(Store *s, const NeuronRun *run, const int *layer, const int *neuron, int n, NeuronRows *out,
                      char *err);

#endif
