/* shards.h — what `probe merge` reads from the databases of a sharded
 * recording (`probe record --shard I/N`), one shard run per database.
 *
 *   ShardRun r;  shard_run_find(store, 0, &r, err);      // the shard run it holds
 *   (its documents and tokens: run_docs_open(store, r.id, RUN_DOCS_FULL, err))
 *   shard_layer_read(store, r.id, layer, F, N, n_bins, &layer_data, err);
 *
 * Ownership: a ShardRun owns its strings (shard_run_free). */
#ifndef PROBE_SHARDS_H
#define PROBE_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct {
    int64_t id;
    char status[16];
    char *model_dir, *model_config, *corpus_path, *layers, *full_layers;
    char *options;      /* as stored, with its "shard" */
    char *options_core; /* the same without ,"shard":"I/N": the whole corpus's options */
    int shard, shards;  /* I and N */
    uint64_t model_checksum, corpus_checksum;
    int n_layer, n_inner, ctx, top_k, n_examples, bos, n_docs;
    int64_t n_tokens, corpus_bytes;
    double seconds;
    char *blas;         /* runs.blas: OpenBLAS's kernels, NULL when unknown (or before schema 13) */
} ShardRun;

/* The shard run of the database (run `want` when > 0): 0 and *out; -1 with
 * err when there is none, more than one (pass --run), or it is not a shard. */
int shard_run_find(Store *s, int64_t want, ShardRun *out, char *err);
void shard_run_free(ShardRun *r); /* accepts a zeroed struct */

/* Per-token blobs of one token: calls fn for each (layer, blob) of
 * token_topk (full = 0) or token_full (full = 1). */
typedef int (*ShardBlobFn)(void *user, int layer, const void *blob, size_t len, char *err);
int shard_token_blobs(Store *s, int64_t token_row, int full, ShardBlobFn fn, void *user, char *err);

/* One layer's neuron results of a shard: per neuron count, mean, variance,
 * min, max, frac_pos; its examples (rank order, up to N: token row and
 * value); its histogram (n_bins, zeros when the run has none). */
typedef struct {
    int64_t *count;
    double *mean, *var, *min, *max, *frac;
    int *n_ex;          /* [F] */
    int64_t *ex_row;    /* [F x N] */
    double *ex_value;   /* [F x N] */
    uint32_t *hist;     /* [F x n_bins] */
    int has_hist;
} ShardLayer;

int shard_layer_alloc(ShardLayer *l, int F, int N, int n_bins);
void shard_layer_free(ShardLayer *l);
int shard_layer_read(Store *s, int64_t run, int layer, int F, int N, int n_bins, ShardLayer *l, char *err);

#endif
