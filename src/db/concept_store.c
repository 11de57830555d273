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
    return store_end(s, 0, err);
fail:
    return store_end(s, -1, err);
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
    return store_end(s, 0, err);
fail:
    return store_end(s, -1, err);
}
