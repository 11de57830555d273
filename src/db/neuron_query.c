/* neuron_query.c — see neuron_query.h. */
#include "neuron_query.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A malloc'd copy of a text column ("" for NULL); NULL when out of memory. */
static char *column_dup(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return strdup(s ? s : "");
}

/* ---- the run ------------------------------------------------------------ */

void neuron_run_free(NeuronRun *run) {
    if (!run) return;
    free(run->status);
    free(run->model_dir);
    free(run->corpus_path);
    free(run->layers_text);
    free(run->layers);
    free(run->blas);
    memset(run, 0, sizeof *run);
}

/* Parses runs.layers (a JSON array of layer numbers) into run->layers. */
static int parse_layers(NeuronRun *run, const char *db, char *err) {
    cJSON *arr = cJSON_Parse(run->layers_text);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1, rc = -1;
    if (n < 0) goto bad;
    run->layers = malloc(sizeof *run->layers * (size_t)(n ? n : 1));
    if (!run->layers) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(arr, i);
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (!(d >= 0 && d < run->n_layer) || d != (double)(int)d) goto bad;
        run->layers[i] = (int)d;
    }
    run->n_layers = n;
    rc = 0;
    goto done;
bad:
    err_set(err, "run %" PRId64 " in '%s' has a malformed list of recorded layers: %s", run->id, db,
            run->layers_text);
done:
    cJSON_Delete(arr);
    return rc;
}

int neuron_run_find(Store *s, int64_t want, NeuronRun *out, char *err) {
    NeuronRun run = {0};
    int rc = -1;
    const char *blas = store_runs_blas(s);
    char sql[300];
    snprintf(sql, sizeof sql,
             want > 0 ? "SELECT id, status, n_layer, layers, model_dir, corpus_path, n_tokens, %s FROM runs WHERE id = ?"
                      : "SELECT id, status, n_layer, layers, model_dir, corpus_path, n_tokens, %s FROM runs "
                        "WHERE status = 'complete' ORDER BY id DESC LIMIT 1",
             blas);
    sqlite3_stmt *st = store_prepare(s, sql, err);
    if (!st) return -1;
    if (want > 0) sqlite3_bind_int64(st, 1, want);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        if (r != SQLITE_DONE) {
            store_fail(s, r, err);
        } else if (want > 0) {
            err_set(err, "database '%s' has no run %" PRId64, s->path, want);
            rc = -2;
        } else {
            err_set(err, "database '%s' has no complete run (record one, or pick one with --run)", s->path);
        }
        goto done;
    }
    run.id = sqlite3_column_int64(st, 0);
    run.n_layer = sqlite3_column_int(st, 2);
    run.n_tokens = sqlite3_column_int64(st, 6);
    if (!(run.status = column_dup(st, 1)) || !(run.layers_text = column_dup(st, 3)) ||
        !(run.model_dir = column_dup(st, 4)) || !(run.corpus_path = column_dup(st, 5)) ||
        (sqlite3_column_type(st, 7) != SQLITE_NULL && !(run.blas = column_dup(st, 7)))) {
        err_set(err, "out of memory");
        goto done;
    }
    if (parse_layers(&run, s->path, err)) goto done;
    *out = run;
    memset(&run, 0, sizeof run);
    rc = 0;
done:
    sqlite3_finalize(st);
    neuron_run_free(&run);
    return rc;
}

int neuron_run_has_layer(const NeuronRun *run, int layer) {
    for (int i = 0; i < run->n_layers; i++)
        if (run->layers[i] == layer) return 1;
    return 0;
}

/* ---- the ranking -------------------------------------------------------- */

int neuron_order_parse(const char *s, NeuronOrder *out) {
    if (!strcmp(s, "max")) *out = NEURON_BY_MAX;
    else if (!strcmp(s, "mean")) *out = NEURON_BY_MEAN;
    else if (!strcmp(s, "frac")) *out = NEURON_BY_FRAC;
    else return -1;
    return 0;
}

const char *neuron_order_column(NeuronOrder by) {
    return by == NEURON_BY_MEAN ? "mean" : by == NEURON_BY_FRAC ? "frac_pos" : "max";
}

void neuron_rows_free(NeuronRows *rows) {
    if (!rows) return;
    for (int i = 0; i < rows->n; i++)
        for (int k = 0; k < rows->rows[i].n_examples; k++) {
            NeuronExample *e = &rows->rows[i].examples[k];
            free(e->token);
            free(e->left_context);
            free(e->right_context);
        }
    free(rows->rows);
    rows->rows = NULL;
    rows->n = 0;
}

/* Reads the top examples of row->layer:row->neuron with the prepared
 * statement ex (binds run, layer, neuron; its limit is bound once); resets
 * ex. */
static int read_examples(Store *s, sqlite3_stmt *ex, int64_t run_id, NeuronRow *row, char *err) {
    sqlite3_bind_int64(ex, 1, run_id);
    sqlite3_bind_int(ex, 2, row->layer);
    sqlite3_bind_int(ex, 3, row->neuron);
    int r;
    while ((r = sqlite3_step(ex)) == SQLITE_ROW && row->n_examples < NEURON_EXAMPLES) {
        NeuronExample *e = &row->examples[row->n_examples++];
        e->rank = sqlite3_column_int(ex, 0);
        e->value = sqlite3_column_double(ex, 1);
        e->token_id = sqlite3_column_int(ex, 3);
        e->doc = sqlite3_column_int(ex, 4);
        e->pos = sqlite3_column_int(ex, 5);
        if (!(e->token = column_dup(ex, 2)) || !(e->left_context = column_dup(ex, 6)) ||
            !(e->right_context = column_dup(ex, 7))) {
            sqlite3_reset(ex);
            return err_set(err, "out of memory");
        }
    }
    sqlite3_reset(ex);
    if (r != SQLITE_DONE && r != SQLITE_ROW) return store_fail(s, r, err);
    return 0;
}

/* Appends the current row of st (neuron_stats columns) to rows. */
static NeuronRow *row_add(NeuronRows *rows, int *cap, sqlite3_stmt *st) {
    if (rows->n == *cap) {
        int ncap = *cap ? *cap * 2 : 32;
        NeuronRow *g = realloc(rows->rows, sizeof *g * (size_t)ncap);
        if (!g) return NULL;
        rows->rows = g;
        *cap = ncap;
    }
    NeuronRow *row = &rows->rows[rows->n++];
    memset(row, 0, sizeof *row);
    row->layer = sqlite3_column_int(st, 0);
    row->neuron = sqlite3_column_int(st, 1);
    row->count = sqlite3_column_double(st, 2);
    row->mean = sqlite3_column_double(st, 3);
    row->variance = sqlite3_column_double(st, 4);
    row->min = sqlite3_column_double(st, 5);
    row->max = sqlite3_column_double(st, 6);
    row->frac_pos = sqlite3_column_double(st, 7);
    return row;
}

void neuron_examples_free(NeuronExample *ex, int n) {
    for (int i = 0; i < n; i++) {
        free(ex[i].token);
        free(ex[i].left_context);
        free(ex[i].right_context);
    }
}

int neuron_query_examples(Store *s, int64_t run_id, int layer, int neuron, NeuronExample *out, int cap, int *n,
                          char *err) {
    sqlite3_stmt *ex = store_stmt(s,
                                  "SELECT rank, value, token, token_id, doc_index, pos, left_context, "
                                  "right_context FROM neuron_top_examples "
                                  "WHERE run_id = ?1 AND layer = ?2 AND neuron = ?3 ORDER BY rank LIMIT ?4",
                                  err);
    if (!ex) return -1;
    sqlite3_bind_int64(ex, 1, run_id);
    sqlite3_bind_int(ex, 2, layer);
    sqlite3_bind_int(ex, 3, neuron);
    sqlite3_bind_int(ex, 4, cap);
    int r, m = 0;
    while ((r = sqlite3_step(ex)) == SQLITE_ROW && m < cap) {
        NeuronExample *e = &out[m];
        memset(e, 0, sizeof *e);
        e->rank = sqlite3_column_int(ex, 0);
        e->value = sqlite3_column_double(ex, 1);
        e->token_id = sqlite3_column_int(ex, 3);
        e->doc = sqlite3_column_int(ex, 4);
        e->pos = sqlite3_column_int(ex, 5);
        m++;
        if (!(e->token = column_dup(ex, 2)) || !(e->left_context = column_dup(ex, 6)) ||
            !(e->right_context = column_dup(ex, 7))) {
            sqlite3_reset(ex);
            neuron_examples_free(out, m);
            return err_set(err, "out of memory");
        }
    }
    sqlite3_reset(ex);
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        neuron_examples_free(out, m);
        return store_fail(s, r, err);
    }
    *n = m;
    return 0;
}

int neuron_query_token(Store *s, int64_t run_id, int doc, int pos, double value, NeuronExample *out, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT token, token_id, left_context, right_context FROM token_context"
                                 " WHERE run_id = ?1 AND doc_index = ?2 AND pos = ?3",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run_id);
    sqlite3_bind_int(q, 2, doc);
    sqlite3_bind_int(q, 3, pos);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->value = value;
        out->doc = doc;
        out->pos = pos;
        out->token_id = sqlite3_column_int(q, 1);
        if (!(out->token = column_dup(q, 0)) || !(out->left_context = column_dup(q, 2)) ||
            !(out->right_context = column_dup(q, 3))) {
            sqlite3_reset(q);
            neuron_examples_free(out, 1);
            return err_set(err, "out of memory");
        }
    }
    sqlite3_reset(q);
    if (r == SQLITE_DONE) return 1;
    return r == SQLITE_ROW ? 0 : store_fail(s, r, err);
}

#define STATS_SELECT "SELECT layer, neuron, count, mean, variance, min, max, frac_pos FROM neuron_stats "

/* The first NEURON_EXAMPLES examples of one neuron (read_examples binds ?1..?3). */
static sqlite3_stmt *examples_stmt(Store *s, char *err) {
    sqlite3_stmt *ex = store_prepare(s,
                                     "SELECT rank, value, token, token_id, doc_index, pos, left_context, "
                                     "right_context FROM neuron_top_examples "
                                     "WHERE run_id = ? AND layer = ? AND neuron = ? ORDER BY rank LIMIT ?4",
                                     err);
    if (ex) sqlite3_bind_int(ex, 4, NEURON_EXAMPLES);
    return ex;
}

/* A query of neuron rows: its statement (columns of STATS_SELECT), the
 * examples' statement, and the rows so far. */
typedef struct {
    Store *s;
    sqlite3_stmt *st, *ex;
    int64_t run;
    NeuronRows rows;
    int cap;
} RowQuery;

static int rq_open(RowQuery *q, Store *s, int64_t run, const char *sql, char *err) {
    *q = (RowQuery){.s = s, .run = run};
    q->st = store_prepare(s, sql, err);
    q->ex = q->st ? examples_stmt(s, err) : NULL;
    return q->ex ? 0 : -1;
}

/* Steps q->st (bound) to its end, adding each row with its examples; the
 * number added, or -1 with err. */
static int rq_add(RowQuery *q, char *err) {
    int r, added = 0;
    while ((r = sqlite3_step(q->st)) == SQLITE_ROW) {
        NeuronRow *row = row_add(&q->rows, &q->cap, q->st);
        if (!row) {
            sqlite3_reset(q->st);
            return err_set(err, "out of memory");
        }
        if (read_examples(q->s, q->ex, q->run, row, err)) {
            sqlite3_reset(q->st);
            return -1;
        }
        added++;
    }
    sqlite3_reset(q->st);
    return r == SQLITE_DONE ? added : store_fail(q->s, r, err);
}

/* Ends the query: on rc 0 the rows go to *out (written only on success). */
static int rq_close(RowQuery *q, int rc, NeuronRows *out) {
    sqlite3_finalize(q->st);
    sqlite3_finalize(q->ex);
    if (rc == 0) {
        *out = q->rows;
        memset(&q->rows, 0, sizeof q->rows);
    }
    neuron_rows_free(&q->rows);
    return rc;
}

int neuron_query_list(Store *s, const NeuronRun *run, const int *layer, const int *neuron, int n, NeuronRows *out,
                      char *err) {
    RowQuery q;
    int rc = rq_open(&q, s, run->id, STATS_SELECT "WHERE run_id = ?1 AND layer = ?2 AND neuron = ?3", err);
    for (int i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_int64(q.st, 1, run->id);
        sqlite3_bind_int(q.st, 2, layer[i]);
        sqlite3_bind_int(q.st, 3, neuron[i]);
        int added = rq_add(&q, err);
        if (added == 0)
            err_set(err, "run %" PRId64 " has no statistics for neuron %d:%d", run->id, layer[i], neuron[i]);
        if (added <= 0) rc = -1;
    }
    return rq_close(&q, rc, out);
}

int neuron_query_top(Store *s, const NeuronRun *run, int layer, NeuronOrder by, int limit, NeuronRows *out,
                     char *err) {
    char sql[512];
    /* the column name comes from the enum, never from the user */
    snprintf(sql, sizeof sql, STATS_SELECT "WHERE run_id = ?1 %s ORDER BY %s DESC, layer, neuron LIMIT ?3",
             layer >= 0 ? "AND layer = ?2" : "AND ?2 IS NULL", neuron_order_column(by));
    RowQuery q;
    int rc = rq_open(&q, s, run->id, sql, err);
    if (rc == 0) {
        sqlite3_bind_int64(q.st, 1, run->id);
        if (layer >= 0) sqlite3_bind_int(q.st, 2, layer);
        sqlite3_bind_int(q.st, 3, limit);
        rc = rq_add(&q, err) < 0 ? -1 : 0;
    }
    return rq_close(&q, rc, out);
}
