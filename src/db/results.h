/* results.h — what `probe record` writes for a run (schema/020-040):
 * documents and tokens, each token's packed top-k neurons and full vectors
 * per layer, and, when the run stops, each neuron's statistics and top
 * examples.
 *
 *   int64_t row;  results_next_token_row(s, &row, err);     // in a batch's transaction
 *   results_add_document(s, &doc, &doc_id, err);
 *   results_add_token(s, &tok, err);  results_add_topk(s, row, layer, top, len, err);
 *   ...
 *   NeuronWriter *w = results_neurons_begin(s, run_id, n_examples, err);
 *   results_neurons_add(w, layer, neuron, &stats, examples, n, err);   // every neuron
 *   results_neurons_end(w);
 *   results_summarize(s, run_id, err);                           // summaries (070)
 *
 * Every function writes into the caller's open transaction (store_begin)
 * with statements prepared once per Store (store_stmt) and bound values;
 * text is bound as given (the caller passes valid UTF-8, utf8.h), blobs as
 * given. Nothing here knows how a top-k record or a vector is computed:
 * they are byte strings in the formats schema/040_token_neurons.sql states. */
#ifndef PROBE_RESULTS_H
#define PROBE_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- documents and tokens (per batch) ------------------------------------ */

/* The row id the next token will get: one past the largest in the
 * database. Tokens get explicit ids so that a window's tokens are known
 * before they are written. */
int results_next_token_row(Store *s, int64_t *row, char *err);

typedef struct {
    int64_t run_id;
    int doc_index;        /* 0-based index in the corpus */
    int64_t byte_offset;  /* where it starts in the corpus file */
    int n_tokens;
    const char *text;     /* its text form (valid UTF-8), text_len bytes */
    size_t text_len;
    const void *bytes;    /* its exact bytes, n_bytes */
    size_t n_bytes;
} DocumentRow;

/* Inserts a document; *doc_id is its row id. */
int results_add_document(Store *s, const DocumentRow *d, int64_t *doc_id, char *err);

typedef struct {
    int64_t row, run_id, doc_id;
    int pos, token_id;
    const char *text;    /* the text form of its bytes, text_len bytes */
    size_t text_len;
    int byte_start, byte_end;
    int64_t char_start, char_end;
} TokenRow;

int results_add_token(Store *s, const TokenRow *t, char *err);
/* One token's packed top-k of one layer (k x 6 bytes). */
int results_add_topk(Store *s, int64_t token_row, int layer, const void *top, size_t len, char *err);
/* One token's full fp16 vector of one layer (n_inner x 2 bytes). */
int results_add_full(Store *s, int64_t token_row, int layer, const void *vec, size_t len, char *err);

/* ---- neurons (when a run stops) --------------------------------------------- */

typedef struct {
    int64_t count;
    double mean, variance, min, max, frac_pos; /* variance: population */
} NeuronStatsRow;

typedef struct {
    int64_t token_row;
    double value;
} ExampleRow;

/* Deletes the run's neuron statistics, examples, histograms and summaries. */
int results_clear_neurons(Store *s, int64_t run_id, char *err);

/* Writes the neuron results of run_id after deleting the old ones (the
 * writer owns the statements it needs; end frees it and accepts NULL). */
typedef struct NeuronWriter NeuronWriter;
NeuronWriter *results_neurons_begin(Store *s, int64_t run_id, int n_examples, char *err);
/* One neuron: its statistics, its top examples, best first (n <=
 * n_examples; they get ranks 1..n), and its histogram (n_bins uint32 counts,
 * stored as little-endian bytes: neuron_histograms) unless hist is NULL. */
int results_neurons_add(NeuronWriter *w, int layer, int neuron, const NeuronStatsRow *st, const ExampleRow *ex,
                        int n, const uint32_t *hist, int n_bins, char *err);
void results_neurons_end(NeuronWriter *w);

/* ---- summaries (schema/070_query_speed.sql) ------------------------------------ */

/* Rebuilds the run's summary rows (neuron_topk_counts) from its token_topk
 * rows, replacing old ones: called when a run stops, in its final
 * transaction, after the last tokens. A run that does not exist, or has no
 * tokens, gets none. */
int results_summarize(Store *s, int64_t run_id, char *err);

#endif
