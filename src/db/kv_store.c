/* kv_store.c — see kv_store.h. */
#include "kv_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

int kv_next_tokens(Store *s, int64_t run, int layer, int F, int N, int32_t *next, char *err) {
    for (size_t i = 0; i < (size_t)F * N; i++) next[i] = -1;
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT e.neuron, e.rank, n.token_id FROM neuron_examples e"
                                 " JOIN tokens t ON t.id = e.token_row"
                                 " LEFT JOIN tokens n ON n.doc_id = t.doc_id AND n.pos = t.pos + 1"
                                 " WHERE e.run_id = ?1 AND e.layer = ?2 AND e.rank <= ?3",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    sqlite3_bind_int(q, 3, N);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0), r = sqlite3_column_int(q, 1);
        if (j < 0 || j >= F || r < 1 || r > N || sqlite3_column_type(q, 2) == SQLITE_NULL) continue;
        next[(size_t)j * N + r - 1] = sqlite3_column_int(q, 2);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

struct KvWriter {
    Store *s;
    int64_t id;
    Utf8Buf text;
};

void kv_writer_abort(KvWriter *w) {
    if (!w) return;
    store_rollback(w->s);
    utf8_buf_free(&w->text);
    free(w);
}

KvWriter *kv_writer_begin(Store *s, const KvRunRow *h, char *err) {
    KvWriter *w = calloc(1, sizeof *w);
    if (!w) {
        err_set(err, "out of memory");
        return NULL;
    }
    w->s = s;
    if (store_begin(s, err)) {
        free(w);
        return NULL;
    }
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO kv_runs (run_id, model_checksum, layers, triggers, seed, distinct_rows,"
                                  " seconds) VALUES (?,?,?,?,?,?,?)",
                                  err);
    if (!st) goto fail;
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(h->model_checksum, ck);
    sqlite3_bind_int64(st, 1, h->run_id);
    sqlite3_bind_text(st, 2, ck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, h->layers_json, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, h->triggers);
    sqlite3_bind_int64(st, 5, h->seed);
    sqlite3_bind_int(st, 6, h->distinct_rows);
    sqlite3_bind_double(st, 7, h->seconds);
    if (store_step_done(s, st, err)) goto fail;
    w->id = sqlite3_last_insert_rowid(s->db);
    return w;
fail:
    kv_writer_abort(w);
    return NULL;
}

static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

int kv_writer_layer(KvWriter *w, int layer, const char *variant, const KvLayer *l, const KvNeuron *n, int F,
                    char *err) {
    sqlite3_stmt *st = store_stmt(w->s, "INSERT INTO kv_layers VALUES (?,?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, w->id);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_text(st, 3, variant, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, l->neurons);
    bind_real(st, 5, l->agreement);
    bind_real(st, 6, l->mean_rank);
    bind_real(st, 7, l->median_rank);
    bind_real(st, 8, l->shuffled_agreement);
    bind_real(st, 9, l->shuffled_mean_rank);
    bind_real(st, 10, l->shuffled_median_rank);
    sqlite3_bind_double(st, 11, l->chance);
    if (store_step_done(w->s, st, err)) return -1;
    st = store_stmt(w->s, "INSERT INTO kv_neurons VALUES (?,?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) return -1;
    for (int j = 0; j < F; j++) {
        const KvNeuron *k = &n[j];
        sqlite3_bind_int64(st, 1, w->id);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, j);
        sqlite3_bind_text(st, 4, variant, -1, SQLITE_STATIC);
        if (k->next_id >= 0) sqlite3_bind_int(st, 5, k->next_id);
        sqlite3_bind_int(st, 6, k->value_top);
        if (k->agree >= 0) sqlite3_bind_int(st, 7, k->agree);
        sqlite3_bind_int(st, 8, k->n_triggers);
        bind_real(st, 9, k->mean_rank);
        bind_real(st, 10, k->median_rank);
        if (k->best_rank > 0) sqlite3_bind_int(st, 11, k->best_rank);
        if (store_step_done(w->s, st, err)) return -1;
    }
    return 0;
}

int kv_writer_values(KvWriter *w, uint64_t model_checksum, int layer, const char *variant, const ValueToken *top,
                     const ValueToken *bottom, int F, int k, const Tokenizer *tok, char *err) {
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(model_checksum, ck);
    sqlite3_stmt *del = store_stmt(w->s, "DELETE FROM value_tokens WHERE model_checksum = ?1 AND layer = ?2"
                                         " AND variant = ?3", err);
    if (!del) return -1;
    sqlite3_bind_text(del, 1, ck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(del, 2, layer);
    sqlite3_bind_text(del, 3, variant, -1, SQLITE_STATIC);
    if (store_step_done(w->s, del, err)) return -1;
    sqlite3_stmt *st = store_stmt(w->s, "INSERT INTO value_tokens VALUES (?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) return -1;
    for (int dir = 0; dir < 2; dir++) {
        const ValueToken *v = dir ? bottom : top;
        if (!v) continue;
        for (int j = 0; j < F; j++)
            for (int i = 0; i < k; i++) {
                const ValueToken *t = &v[(size_t)j * k + i];
                if (t->id < 0) continue;
                size_t len = 0;
                const char *bytes = tok_token_bytes(tok, t->id, &len);
                const char *text = utf8_text_in(&w->text, bytes ? bytes : "", bytes ? len : 0, &len);
                if (!text) return err_set(err, "out of memory");
                sqlite3_bind_text(st, 1, ck, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(st, 2, layer);
                sqlite3_bind_int(st, 3, j);
                sqlite3_bind_text(st, 4, variant, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 5, dir ? "suppressed" : "promoted", -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 6, i + 1);
                sqlite3_bind_int(st, 7, t->id);
                sqlite3_bind_int(st, 8, t->count);
                sqlite3_bind_text(st, 9, text, (int)len, SQLITE_STATIC);
                sqlite3_bind_double(st, 10, t->logit);
                if (store_step_done(w->s, st, err)) return -1;
            }
    }
    return 0;
}

int kv_writer_commit(KvWriter *w, int64_t *id, char *err) {
    if (store_commit(w->s, err)) {
        kv_writer_abort(w);
        return -1;
    }
    *id = w->id;
    utf8_buf_free(&w->text);
    free(w);
    return 0;
}

int value_tokens_load(Store *s, uint64_t model_checksum, int layer, int neuron, const char *variant,
                      const char *direction, ValueToken *out, char **text, int cap, int *n, char *err) {
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(model_checksum, ck);
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT token_id, ids_sharing, logit, token FROM value_tokens"
                                 " WHERE model_checksum = ?1 AND layer = ?2 AND neuron = ?3 AND variant = ?4"
                                 " AND direction = ?5 ORDER BY rank LIMIT ?6",
                                 err);
    if (!q) return -1;
    sqlite3_bind_text(q, 1, ck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 2, layer);
    sqlite3_bind_int(q, 3, neuron);
    sqlite3_bind_text(q, 4, variant, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, direction, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, cap);
    int rc, m = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && m < cap) {
        out[m] = (ValueToken){sqlite3_column_int(q, 0), sqlite3_column_int(q, 1), (float)sqlite3_column_double(q, 2)};
        if (text) {
            const char *t = (const char *)sqlite3_column_text(q, 3);
            text[m] = strdup(t ? t : "");
        }
        m++;
    }
    sqlite3_reset(q);
    *n = m;
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail(s, rc, err);
}
