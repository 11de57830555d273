/* results.c — see results.h. */
#include "results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist_codec.h"
#include "util.h"

/* ---- documents and tokens ------------------------------------------------- */

int results_next_token_row(Store *s, int64_t *row, char *err) {
    sqlite3_stmt *st = store_stmt(s, "SELECT coalesce(max(id), 0) + 1 FROM tokens", err);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *row = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : store_fail(s, rc, err);
}

int results_add_document(Store *s, const DocumentRow *d, int64_t *doc_id, char *err) {
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO documents (run_id, doc_index, byte_offset, n_tokens, text, text_bytes)"
                                  " VALUES (?,?,?,?,?,?)",
                                  err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, d->run_id);
    sqlite3_bind_int(st, 2, d->doc_index);
    sqlite3_bind_int64(st, 3, d->byte_offset);
    sqlite3_bind_int(st, 4, d->n_tokens);
    sqlite3_bind_text64(st, 5, d->text, d->text_len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_blob64(st, 6, d->bytes, d->n_bytes, SQLITE_STATIC);
    if (store_step_done(s, st, err)) return -1;
    *doc_id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int results_add_token(Store *s, const TokenRow *t, char *err) {
    sqlite3_stmt *st = store_stmt(s,
                                  "INSERT INTO tokens (id, run_id, doc_id, pos, token_id, token, byte_start, byte_end,"
                                  " char_start, char_end) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                  err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, t->row);
    sqlite3_bind_int64(st, 2, t->run_id);
    sqlite3_bind_int64(st, 3, t->doc_id);
    sqlite3_bind_int(st, 4, t->pos);
    sqlite3_bind_int(st, 5, t->token_id);
    sqlite3_bind_text64(st, 6, t->text, t->text_len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int(st, 7, t->byte_start);
    sqlite3_bind_int(st, 8, t->byte_end);
    sqlite3_bind_int64(st, 9, t->char_start);
    sqlite3_bind_int64(st, 10, t->char_end);
    return store_step_done(s, st, err);
}

/* token_topk and token_full have the same three columns. */
static int add_vector(Store *s, const char *sql, int64_t token_row, int layer, const void *blob, size_t len,
                      char *err) {
    sqlite3_stmt *st = store_stmt(s, sql, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, token_row);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_blob64(st, 3, blob, len, SQLITE_STATIC);
    return store_step_done(s, st, err);
}

static const char *sql_add_topk = "INSERT INTO token_topk (token_row, layer, top) VALUES (?,?,?)";
static const char *sql_add_full = "INSERT INTO token_full (token_row, layer, vec) VALUES (?,?,?)";

int results_add_topk(Store *s, int64_t token_row, int layer, const void *top, size_t len, char *err) {
    return add_vector(s, sql_add_topk, token_row, layer, top, len, err);
}

int results_add_full(Store *s, int64_t token_row, int layer, const void *vec, size_t len, char *err) {
    return add_vector(s, sql_add_full, token_row, layer, vec, len, err);
}

/* ---- neurons ------------------------------------------------------------------ */

int results_clear_neurons(Store *s, int64_t run_id, char *err) {
    return store_run(s, "DELETE FROM neuron_stats WHERE run_id = ?1", &run_id, 1, err) ||
                   store_run(s, "DELETE FROM neuron_examples WHERE run_id = ?1", &run_id, 1, err) ||
                   store_run(s, "DELETE FROM neuron_histograms WHERE run_id = ?1", &run_id, 1, err) ||
                   store_run(s, "DELETE FROM neuron_topk_counts WHERE run_id = ?1", &run_id, 1, err)
               ? -1
               : 0;
}

struct NeuronWriter {
    Store *s;
    int64_t run_id;
    int n_examples;
    sqlite3_stmt *stats, *example, *examples; /* examples: all n_examples rows of a neuron at once */
    sqlite3_stmt *hist;
};

void results_neurons_end(NeuronWriter *w) {
    if (!w) return;
    sqlite3_finalize(w->stats);
    sqlite3_finalize(w->example);
    sqlite3_finalize(w->examples);
    sqlite3_finalize(w->hist);
    free(w);
}

/* INSERT of n_examples rows: run, layer and neuron are bound once for all
 * rows (?1, ?2, ?3), ranks are literals, each row binds its token and value
 * (?4, ?5 for rank 1, ...). About twice as fast as n single-row inserts. */
static sqlite3_stmt *prepare_examples(Store *s, int n, char *err) {
    const char *head = "INSERT INTO neuron_examples VALUES ";
    char *sql = malloc(strlen(head) + (size_t)n * 40 + 1);
    if (!sql) {
        err_set(err, "out of memory writing results");
        return NULL;
    }
    size_t o = (size_t)sprintf(sql, "%s", head);
    for (int e = 0; e < n; e++)
        o += (size_t)sprintf(sql + o, "%s(?1,?2,?3,%d,?%d,?%d)", e ? "," : "", e + 1, 4 + 2 * e, 5 + 2 * e);
    sqlite3_stmt *st = store_prepare(s, sql, err);
    free(sql);
    return st;
}

NeuronWriter *results_neurons_begin(Store *s, int64_t run_id, int n_examples, char *err) {
    if (results_clear_neurons(s, run_id, err)) return NULL;
    NeuronWriter *w = calloc(1, sizeof *w);
    if (!w) {
        err_set(err, "out of memory writing results");
        return NULL;
    }
    *w = (NeuronWriter){.s = s, .run_id = run_id, .n_examples = n_examples};
    w->stats = store_prepare(s, "INSERT INTO neuron_stats VALUES (?,?,?,?,?,?,?,?,?)", err);
    w->example = w->stats ? store_prepare(s, "INSERT INTO neuron_examples VALUES (?,?,?,?,?,?)", err) : NULL;
    w->examples = w->example ? prepare_examples(s, n_examples, err) : NULL;
    w->hist = w->examples ? store_prepare(s, "INSERT INTO neuron_histograms VALUES (?,?,?,?)", err) : NULL;
    if (!w->hist) {
        results_neurons_end(w);
        return NULL;
    }
    return w;
}

int results_neurons_add(NeuronWriter *w, int layer, int neuron, const NeuronStatsRow *ns, const ExampleRow *ex,
                        int n, const uint32_t *hist, int n_bins, char *err) {
    sqlite3_stmt *st;
    if (hist) {
        st = w->hist;
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, neuron);
        uint8_t blob[4 * 4096];
        if (n_bins > 4096) return err_set(err, "histograms of %d bins are not supported", n_bins);
        sqlite3_bind_blob(st, 4, blob, (int)hist_blob(hist, n_bins, blob), SQLITE_STATIC);
        if (store_step_done(w->s, st, err)) return -1;
    }
    st = w->stats;
    sqlite3_bind_int64(st, 1, w->run_id);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, neuron);
    sqlite3_bind_int64(st, 4, ns->count);
    sqlite3_bind_double(st, 5, ns->mean);
    sqlite3_bind_double(st, 6, ns->variance);
    sqlite3_bind_double(st, 7, ns->min);
    sqlite3_bind_double(st, 8, ns->max);
    sqlite3_bind_double(st, 9, ns->frac_pos);
    if (store_step_done(w->s, st, err)) return -1;
    if (n == w->n_examples) {
        st = w->examples;
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, neuron);
        for (int e = 0; e < n; e++) {
            sqlite3_bind_int64(st, 4 + 2 * e, ex[e].token_row);
            sqlite3_bind_double(st, 5 + 2 * e, ex[e].value);
        }
        return store_step_done(w->s, st, err);
    }
    st = w->example;
    for (int e = 0; e < n; e++) {
        sqlite3_bind_int64(st, 1, w->run_id);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, neuron);
        sqlite3_bind_int(st, 4, e + 1);
        sqlite3_bind_int64(st, 5, ex[e].token_row);
        sqlite3_bind_double(st, 6, ex[e].value);
        if (store_step_done(w->s, st, err)) return -1;
    }
    return 0;
}

/* ---- summaries ------------------------------------------------------------------- */

typedef struct {
    int64_t n_top, n_first;
    double sum, max;
} TopkCount;

/* Counts of the run's token_topk entries per (layer, neuron): counts[layer *
 * n_inner + neuron]. Entries outside the run's layers and neurons (a
 * database edited by hand) are skipped. */
static int count_topk(Store *s, int64_t run_id, int n_layer, int n_inner, TopkCount *counts, char *err) {
    sqlite3_stmt *st = store_stmt(s,
                                  /* (the IN list is sorted: token_topk is read in key order, no sort) */
                                  "SELECT layer, top FROM token_topk"
                                  " WHERE token_row IN (SELECT id FROM tokens WHERE run_id = ?1)"
                                  " ORDER BY token_row, layer",
                                  err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int layer = sqlite3_column_int(st, 0);
        const unsigned char *top = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1) / 6;
        if (layer < 0 || layer >= n_layer || !top) continue;
        for (int i = 0; i < n; i++) { /* uint16 neuron, float32 value (schema/040) */
            uint16_t neuron;
            float v;
            memcpy(&neuron, top + 6 * i, 2);
            memcpy(&v, top + 6 * i + 2, 4);
            if (neuron >= n_inner) continue;
            TopkCount *c = &counts[(size_t)layer * n_inner + neuron];
            if (c->n_top == 0 || v > c->max) c->max = v;
            c->n_top++;
            c->n_first += i == 0;
            c->sum += v;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

static int write_topk_counts(Store *s, int64_t run_id, int n_layer, int n_inner, const TopkCount *counts,
                             char *err) {
    sqlite3_stmt *st = store_stmt(s, "INSERT INTO neuron_topk_counts VALUES (?,?,?,?,?,?,?)", err);
    if (!st) return -1;
    for (int l = 0; l < n_layer; l++)
        for (int j = 0; j < n_inner; j++) {
            const TopkCount *c = &counts[(size_t)l * n_inner + j];
            if (c->n_top == 0) continue;
            sqlite3_bind_int64(st, 1, run_id);
            sqlite3_bind_int(st, 2, l);
            sqlite3_bind_int(st, 3, j);
            sqlite3_bind_int64(st, 4, c->n_top);
            sqlite3_bind_int64(st, 5, c->n_first);
            sqlite3_bind_double(st, 6, c->sum / (double)c->n_top);
            sqlite3_bind_double(st, 7, c->max);
            if (store_step_done(s, st, err)) return -1;
        }
    return 0;
}

int results_summarize(Store *s, int64_t run_id, char *err) {
    if (store_run(s, "DELETE FROM neuron_topk_counts WHERE run_id = ?1", &run_id, 1, err)) return -1;
    sqlite3_stmt *st = store_stmt(s, "SELECT n_layer, n_inner FROM runs WHERE id = ?1", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    int64_t n_layer = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int64_t n_inner = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(s, rc, err);
    if (n_layer <= 0 || n_inner <= 0) return 0; /* no such run, or nothing to count */
    if (n_layer > 4096 || n_inner > 65536)
        return err_set(err, "database '%s': run %lld has %lld layers of %lld neurons; cannot summarize it", s->path,
                       (long long)run_id, (long long)n_layer, (long long)n_inner);
    TopkCount *counts = calloc((size_t)(n_layer * n_inner), sizeof *counts);
    if (!counts) return err_set(err, "out of memory summarizing run %lld", (long long)run_id);
    rc = count_topk(s, run_id, (int)n_layer, (int)n_inner, counts, err) ||
         write_topk_counts(s, run_id, (int)n_layer, (int)n_inner, counts, err);
    free(counts);
    return rc ? -1 : 0;
}
