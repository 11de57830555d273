/* shards.c — see shards.h. */
#include "shards.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_stats.h"
#include "util.h"

void shard_run_free(ShardRun *r) {
    if (!r) return;
    free(r->model_dir);
    free(r->model_config);
    free(r->corpus_path);
    free(r->layers);
    free(r->full_layers);
    free(r->options);
    free(r->options_core);
    free(r->blas);
    memset(r, 0, sizeof *r);
}

static char *col_dup(sqlite3_stmt *q, int i) {
    const char *t = (const char *)sqlite3_column_text(q, i);
    return strdup(t ? t : "");
}

int shard_run_find(Store *s, int64_t want, ShardRun *out, char *err) {
    char sql[500];
    snprintf(sql, sizeof sql,
             "SELECT id, status, model_dir, model_config, corpus_path, layers, full_layers, options,"
             " model_checksum, corpus_checksum, n_layer, n_inner, ctx, top_k, n_examples, bos, n_docs, n_tokens,"
             " corpus_bytes, seconds, %s FROM runs"
             " WHERE (?1 > 0 AND id = ?1) OR (?1 <= 0 AND options LIKE '%%\"shard\":%%') ORDER BY id",
             store_runs_blas(s));
    sqlite3_stmt *q = store_prepare(s, sql, err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, want);
    int rc, n = 0;
    ShardRun r = {0};
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (++n > 1) break;
        r.id = sqlite3_column_int64(q, 0);
        snprintf(r.status, sizeof r.status, "%s", (const char *)sqlite3_column_text(q, 1));
        r.model_dir = col_dup(q, 2);
        r.model_config = col_dup(q, 3);
        r.corpus_path = col_dup(q, 4);
        r.layers = col_dup(q, 5);
        r.full_layers = col_dup(q, 6);
        r.options = col_dup(q, 7);
        const char *mc = (const char *)sqlite3_column_text(q, 8), *cc = (const char *)sqlite3_column_text(q, 9);
        r.model_checksum = mc ? strtoull(mc, NULL, 16) : 0;
        r.corpus_checksum = cc ? strtoull(cc, NULL, 16) : 0;
        r.n_layer = sqlite3_column_int(q, 10);
        r.n_inner = sqlite3_column_int(q, 11);
        r.ctx = sqlite3_column_int(q, 12);
        r.top_k = sqlite3_column_int(q, 13);
        r.n_examples = sqlite3_column_int(q, 14);
        r.bos = sqlite3_column_int(q, 15);
        r.n_docs = sqlite3_column_int(q, 16);
        r.n_tokens = sqlite3_column_int64(q, 17);
        r.corpus_bytes = sqlite3_column_int64(q, 18);
        r.seconds = sqlite3_column_double(q, 19);
        r.blas = sqlite3_column_type(q, 20) == SQLITE_NULL ? NULL : col_dup(q, 20);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        shard_run_free(&r);
        return store_fail(s, rc, err);
    }
    if (n == 0) {
        shard_run_free(&r);
        return want > 0 ? err_set(err, "'%s' has no run %" PRId64, s->path, want)
                        : err_set(err, "'%s' holds no shard run (record with --shard I/N)", s->path);
    }
    if (n > 1) {
        shard_run_free(&r);
        return err_set(err, "'%s' holds several shard runs: name one with IN.db:RUN", s->path);
    }
    /* the shard, and the options without it: ,"shard":"I/N" is the last member */
    const char *p = strstr(r.options, ",\"shard\":\"");
    if (!p || sscanf(p, ",\"shard\":\"%d/%d\"}", &r.shard, &r.shards) != 2 || r.shards < 1 || r.shard < 1 ||
        r.shard > r.shards) {
        shard_run_free(&r);
        return err_set(err, "'%s': run %" PRId64 " is not a shard (record with --shard I/N)", s->path, want);
    }
    r.options_core = malloc((size_t)(p - r.options) + 2);
    if (!r.options_core) {
        shard_run_free(&r);
        return err_set(err, "out of memory");
    }
    memcpy(r.options_core, r.options, (size_t)(p - r.options));
    strcpy(r.options_core + (p - r.options), "}");
    *out = r;
    return 0;
}

int shard_token_blobs(Store *s, int64_t token_row, int full, ShardBlobFn fn, void *user, char *err) {
    sqlite3_stmt *q = full ? store_stmt(s, "SELECT layer, vec FROM token_full WHERE token_row = ?1", err)
                           : store_stmt(s, "SELECT layer, top FROM token_topk WHERE token_row = ?1", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, token_row);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (fn(user, sqlite3_column_int(q, 0), sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), err)) {
            sqlite3_reset(q);
            return -1;
        }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

/* ---- neuron results ---------------------------------------------------------------- */

int shard_layer_alloc(ShardLayer *l, int F, int N, int n_bins) {
    memset(l, 0, sizeof *l);
    l->count = malloc(sizeof *l->count * (size_t)F);
    l->mean = malloc(sizeof(double) * (size_t)F);
    l->var = malloc(sizeof(double) * (size_t)F);
    l->min = malloc(sizeof(double) * (size_t)F);
    l->max = malloc(sizeof(double) * (size_t)F);
    l->frac = malloc(sizeof(double) * (size_t)F);
    l->n_ex = malloc(sizeof(int) * (size_t)F);
    l->ex_row = malloc(sizeof(int64_t) * (size_t)F * N);
    l->ex_value = malloc(sizeof(double) * (size_t)F * N);
    l->hist = malloc(sizeof(uint32_t) * (size_t)F * n_bins);
    return l->count && l->mean && l->var && l->min && l->max && l->frac && l->n_ex && l->ex_row && l->ex_value &&
                   l->hist
               ? 0
               : -1;
}

void shard_layer_free(ShardLayer *l) {
    free(l->count);
    free(l->mean);
    free(l->var);
    free(l->min);
    free(l->max);
    free(l->frac);
    free(l->n_ex);
    free(l->ex_row);
    free(l->ex_value);
    free(l->hist);
    memset(l, 0, sizeof *l);
}

int shard_layer_read(Store *s, int64_t run, int layer, int F, int N, int n_bins, ShardLayer *l, char *err) {
    LayerStats st = {.count = l->count, .mean = l->mean, .var = l->var, .min = l->min, .max = l->max,
                     .frac = l->frac};
    if (layer_stats_read(s, run, layer, F, &st, err)) return -1;
    memset(l->n_ex, 0, sizeof *l->n_ex * (size_t)F);
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT neuron, rank, token_row, value FROM neuron_examples"
                                 " WHERE run_id = ?1 AND layer = ?2 ORDER BY neuron, rank",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0), r = sqlite3_column_int(q, 1);
        if (j < 0 || j >= F || r < 1 || r > N || r != l->n_ex[j] + 1) continue;
        l->ex_row[(size_t)j * N + r - 1] = sqlite3_column_int64(q, 2);
        l->ex_value[(size_t)j * N + r - 1] = sqlite3_column_double(q, 3);
        l->n_ex[j] = r;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    return layer_hists_read(s, run, layer, F, n_bins, l->hist, &l->has_hist, err);
}
