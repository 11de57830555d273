/* concept_store.c — see concept_store.h. */
#include "concept_store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int concept_run_info(Store *s, int64_t run, ConceptRunInfo *out, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT ctx, bos, n_layer, n_inner, n_examples, model_checksum, n_tokens, status, docs_done"
                                 " FROM runs WHERE id = ?1",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        ConceptRunInfo r = {.ctx = sqlite3_column_int(q, 0), .bos = sqlite3_column_int(q, 1),
                            .n_layer = sqlite3_column_int(q, 2), .n_inner = sqlite3_column_int(q, 3),
                            .n_examples = sqlite3_column_int(q, 4), .n_tokens = sqlite3_column_int64(q, 6),
                            .n_docs = sqlite3_column_int(q, 8)};
        const char *ck = (const char *)sqlite3_column_text(q, 5);
        const char *st = (const char *)sqlite3_column_text(q, 7);
        r.model_checksum = ck ? strtoull(ck, NULL, 16) : 0;
        snprintf(r.status, sizeof r.status, "%s", st ? st : "");
        *out = r;
    }
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) return err_set(err, "no run %" PRId64 " in '%s'", run, s->path);
    if (rc != SQLITE_ROW) return store_fail(s, rc, err);
    return 0;
}

int concept_layer_load(Store *s, int64_t run, int layer, int F, int n_bins, int64_t *count, double *mean,
                       double *var, uint32_t *hist, int *has_hist, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT neuron, count, mean, variance FROM neuron_stats"
                                 " WHERE run_id = ?1 AND layer = ?2",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int rc, seen = 0;
    for (int j = 0; j < F; j++) count[j] = -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        if (j < 0 || j >= F) continue;
        count[j] = sqlite3_column_int64(q, 1);
        mean[j] = sqlite3_column_double(q, 2);
        var[j] = sqlite3_column_double(q, 3);
        seen++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    for (int j = 0; j < F; j++)
        if (count[j] < 0)
            return err_set(err, "database '%s': run %" PRId64 " has no statistics for neuron %d:%d (is the run "
                           "stopped? probe record --resume finishes it)", s->path, run, layer, j);
    (void)seen;
    q = store_stmt(s, "SELECT neuron, counts FROM neuron_histograms WHERE run_id = ?1 AND layer = ?2", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int got = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        const void *b = sqlite3_column_blob(q, 1);
        if (j < 0 || j >= F) continue;
        if (!b || sqlite3_column_bytes(q, 1) != n_bins * 4) {
            sqlite3_reset(q);
            return err_set(err, "database '%s': run %" PRId64 ": the histogram of neuron %d:%d is not %d counts",
                           s->path, run, layer, j, n_bins);
        }
        memcpy(hist + (size_t)j * n_bins, b, (size_t)n_bins * 4);
        got++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    if (got != 0 && got != F)
        return err_set(err, "database '%s': run %" PRId64 " has histograms for %d of the %d neurons of layer %d",
                       s->path, run, got, F, layer);
    *has_hist = got == F;
    return 0;
}

/* ---- documents --------------------------------------------------------------- */

struct RunDocs {
    Store *s;
    sqlite3_stmt *docs, *toks;
    int eof;
    char *bytes;
    size_t bytes_cap;
    int32_t *ids, *byte_end;
    int64_t *rows;
    int cap;
};

RunDocs *run_docs_open(Store *s, int64_t run, char *err) {
    RunDocs *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(err, "out of memory");
        return NULL;
    }
    d->s = s;
    d->docs = store_prepare(s, "SELECT id, doc_index, text_bytes, n_tokens FROM documents WHERE run_id = ?1"
                               " ORDER BY doc_index", err);
    d->toks = d->docs ? store_prepare(s, "SELECT id, token_id, byte_end FROM tokens WHERE doc_id = ?1 ORDER BY pos",
                                      err)
                      : NULL;
    if (!d->toks) {
        run_docs_close(d);
        return NULL;
    }
    sqlite3_bind_int64(d->docs, 1, run);
    return d;
}

void run_docs_close(RunDocs *d) {
    if (!d) return;
    sqlite3_finalize(d->docs);
    sqlite3_finalize(d->toks);
    free(d->bytes);
    free(d->ids);
    free(d->byte_end);
    free(d->rows);
    free(d);
}

int run_docs_next(RunDocs *d, RunDoc *out, char *err) {
    if (d->eof) return 0;
    int rc = sqlite3_step(d->docs);
    if (rc == SQLITE_DONE) {
        d->eof = 1;
        return 0;
    }
    if (rc != SQLITE_ROW) return store_fail(d->s, rc, err);
    int64_t doc_id = sqlite3_column_int64(d->docs, 0);
    out->doc_index = sqlite3_column_int(d->docs, 1);
    const void *b = sqlite3_column_blob(d->docs, 2);
    size_t len = (size_t)sqlite3_column_bytes(d->docs, 2);
    int n_hint = sqlite3_column_int(d->docs, 3);
    if (len + 1 > d->bytes_cap) {
        char *p = realloc(d->bytes, len + 1);
        if (!p) return err_set(err, "out of memory for document %d", out->doc_index);
        d->bytes = p;
        d->bytes_cap = len + 1;
    }
    if (len) memcpy(d->bytes, b, len);
    d->bytes[len] = 0;
    sqlite3_bind_int64(d->toks, 1, doc_id);
    int n = 0;
    while ((rc = sqlite3_step(d->toks)) == SQLITE_ROW) {
        if (n == d->cap) {
            int cap = d->cap ? d->cap * 2 : (n_hint > 256 ? n_hint : 256);
            int32_t *ids = realloc(d->ids, sizeof *ids * cap);
            if (ids) d->ids = ids;
            int32_t *be = realloc(d->byte_end, sizeof *be * cap);
            if (be) d->byte_end = be;
            int64_t *rows = realloc(d->rows, sizeof *rows * cap);
            if (rows) d->rows = rows;
            if (!ids || !be || !rows) {
                sqlite3_reset(d->toks);
                return err_set(err, "out of memory for document %d", out->doc_index);
            }
            d->cap = cap;
        }
        d->rows[n] = sqlite3_column_int64(d->toks, 0);
        d->ids[n] = sqlite3_column_int(d->toks, 1);
        d->byte_end[n] = sqlite3_column_int(d->toks, 2);
        n++;
    }
    sqlite3_reset(d->toks);
    if (rc != SQLITE_DONE) return store_fail(d->s, rc, err);
    out->bytes = d->bytes;
    out->len = len;
    out->n = n;
    out->ids = d->ids;
    out->byte_end = d->byte_end;
    out->rows = d->rows;
    return 1;
}

int concept_examples_load(Store *s, int64_t run, int layer, int F, int N, int64_t *rows, int *n, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT neuron, rank, token_row FROM neuron_examples"
                                 " WHERE run_id = ?1 AND layer = ?2",
                                 err);
    if (!q) return -1;
    memset(n, 0, sizeof *n * (size_t)F);
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0), rank = sqlite3_column_int(q, 1);
        if (j < 0 || j >= F || rank < 1 || rank > N) continue;
        rows[(size_t)j * N + rank - 1] = sqlite3_column_int64(q, 2);
        if (rank > n[j]) n[j] = rank;
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

/* ---- results ------------------------------------------------------------------- */

static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int concept_ablation_add(Store *s, const ConceptAblationRow *r, char *err) {
    sqlite3_stmt *st = store_stmt(s, "INSERT INTO ablation_concept VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, r->ablation_id);
    sqlite3_bind_int(st, 2, r->idx);
    sqlite3_bind_int64(st, 3, r->concept_run_id);
    sqlite3_bind_text(st, 4, r->random ? "random" : "concept", -1, SQLITE_STATIC);
    if (r->random)
        sqlite3_bind_int64(st, 5, r->seed);
    else
        sqlite3_bind_null(st, 5);
    bind_text(st, 6, r->neurons);
    sqlite3_bind_int64(st, 7, r->tokens_in);
    bind_real(st, 8, r->dloss_in);
    bind_real(st, 9, r->kl_in);
    sqlite3_bind_int64(st, 10, r->tokens_after);
    bind_real(st, 11, r->dloss_after);
    bind_real(st, 12, r->kl_after);
    sqlite3_bind_int64(st, 13, r->tokens_out);
    bind_real(st, 14, r->dloss_out);
    bind_real(st, 15, r->kl_out);
    return store_step_done(s, st, err);
}

int concept_scores_set_auroc(Store *s, int64_t concept_run, const ConceptScore *sc, int n, char *err) {
    if (store_begin(s, err)) return -1;
    sqlite3_stmt *st = store_stmt(s,
                                  "UPDATE concept_scores SET auroc = ?1, auroc_error = ?2"
                                  " WHERE concept_run_id = ?3 AND layer = ?4 AND neuron = ?5",
                                  err);
    if (!st) goto fail;
    for (int i = 0; i < n; i++) {
        bind_real(st, 1, sc[i].auroc);
        bind_real(st, 2, sc[i].auroc_error);
        sqlite3_bind_int64(st, 3, concept_run);
        sqlite3_bind_int(st, 4, sc[i].layer);
        sqlite3_bind_int(st, 5, sc[i].neuron);
        if (store_step_done(s, st, err)) goto fail;
    }
    if (store_commit(s, err)) goto fail;
    return 0;
fail:
    store_rollback(s);
    return -1;
}

int concept_results_save(Store *s, const ConceptRunRow *h, const ConceptScore *sc, size_t n, int64_t *id,
                         char *err) {
    if (store_begin(s, err)) return -1;
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO concept_runs (run_id, name, probe_path, probe_checksum, words,"
                                  " dropped_flags, layers, concept_tokens, tokens, windows_replayed, windows, seconds)"
                                  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                  err);
    if (!st) goto fail;
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(h->probe_checksum, ck);
    sqlite3_bind_int64(st, 1, h->run_id);
    bind_text(st, 2, h->name);
    bind_text(st, 3, h->probe_path);
    sqlite3_bind_text(st, 4, ck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, h->words);
    bind_text(st, 6, h->dropped_flags);
    bind_text(st, 7, h->layers_json);
    sqlite3_bind_int64(st, 8, h->concept_tokens);
    sqlite3_bind_int64(st, 9, h->tokens);
    sqlite3_bind_int64(st, 10, h->windows_replayed);
    sqlite3_bind_int64(st, 11, h->windows);
    sqlite3_bind_double(st, 12, h->seconds);
    if (store_step_done(s, st, err)) goto fail;
    *id = sqlite3_last_insert_rowid(s->db);
    st = store_stmt(s, "INSERT INTO concept_scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) goto fail;
    for (size_t i = 0; i < n; i++) {
        const ConceptScore *c = &sc[i];
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int(st, 2, c->layer);
        sqlite3_bind_int(st, 3, c->neuron);
        bind_real(st, 4, c->mean_in);
        bind_real(st, 5, c->mean_out);
        bind_real(st, 6, c->sd_in);
        bind_real(st, 7, c->sd_out);
        bind_real(st, 8, c->cohen_d);
        bind_real(st, 9, c->auroc);
        bind_real(st, 10, c->auroc_error);
        sqlite3_bind_int(st, 11, c->examples_in);
        sqlite3_bind_int(st, 12, c->examples);
        bind_real(st, 13, c->precision);
        if (store_step_done(s, st, err)) goto fail;
    }
    if (store_commit(s, err)) goto fail;
    return 0;
fail:
    store_rollback(s);
    return -1;
}
