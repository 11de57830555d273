/* ablations.c — see ablations.h. */
#include "ablations.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

/* ---- neuron means --------------------------------------------------------- */

/* The run whose means are used: `want`, or the latest complete run of the
 * model; checks that it was recorded with that model. */
static int means_run(Store *s, const char *hex, int64_t want, int64_t *run, char *err) {
    sqlite3_stmt *q = store_prepare(s,
                                    want ? "SELECT id, model_checksum FROM runs WHERE id = ?2"
                                         : "SELECT id, model_checksum FROM runs WHERE model_checksum = ?1"
                                           " AND status = 'complete' ORDER BY id DESC LIMIT 1",
                                    err);
    if (!q) return -1;
    sqlite3_bind_text(q, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, want);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE) return store_fail(s, rc, err);
        if (want) return err_set(err, "no run %" PRId64 " in '%s'", want, s->path);
        return err_set(err,
                       "--mode mean: no neuron statistics for this model (checksum %s) in '%s'; "
                       "record a corpus first: probe record CORPUS --db %s",
                       hex, s->path, s->path);
    }
    *run = sqlite3_column_int64(q, 0);
    int same = !strcmp((const char *)sqlite3_column_text(q, 1), hex);
    sqlite3_finalize(q);
    if (!same)
        return err_set(err, "--mode mean: run %" PRId64 " in '%s' was recorded with another model", *run, s->path);
    return 0;
}

int ablation_means_load(Store *s, uint64_t model_checksum, int64_t want, int n_layer, int n_inner,
                        const uint8_t *need, float *means, int64_t *run_out, char *err) {
    char hex[PROBE_CHECKSUM_HEX];
    int64_t run = 0;
    int rc, F = n_inner;
    checksum_hex(model_checksum, hex);
    if (means_run(s, hex, want, &run, err)) return -1;
    sqlite3_stmt *q = store_prepare(s, "SELECT neuron, mean FROM neuron_stats WHERE run_id = ?1 AND layer = ?2", err);
    if (!q) return -1;
    for (int l = 0; l < n_layer; l++) {
        if (!need[l]) continue;
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, run);
        sqlite3_bind_int(q, 2, l);
        int got = 0;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            int n = sqlite3_column_int(q, 0);
            if (n >= 0 && n < F) means[(size_t)l * F + n] = (float)sqlite3_column_double(q, 1), got++;
        }
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(q);
            return store_fail(s, rc, err);
        }
        if (got != F) {
            sqlite3_finalize(q);
            return err_set(err,
                           "--mode mean: run %" PRId64 " in '%s' has statistics for %d of the %d neurons of "
                           "layer %d (record it with that layer)",
                           run, s->path, got, F, l);
        }
    }
    sqlite3_finalize(q);
    *run_out = run;
    return 0;
}

/* ---- results --------------------------------------------------------------- */

struct AblationWriter {
    Store *s;
    sqlite3_stmt *cond, *tok;
    sqlite3_stmt *est; /* a sweep's estimates, prepared at its first layer */
    int64_t id;        /* the ablations row */
    int64_t condition; /* the current ablation_conditions row */
    int n_conditions;
    Utf8Buf text;      /* the text form of a token */
};

static void writer_free(AblationWriter *w) {
    sqlite3_finalize(w->cond);
    sqlite3_finalize(w->tok);
    sqlite3_finalize(w->est);
    utf8_buf_free(&w->text);
    free(w);
}

void ablation_writer_abort(AblationWriter *w) {
    if (!w) return;
    store_rollback(w->s);
    writer_free(w);
}

static int oom(Store *s, char *err) { return err_set(err, "out of memory storing the results in '%s'", s->path); }

/* Binds the text form of a NUL-terminated string (paths and specs come from
 * the command line and may be any bytes). */
static int bind_text_form(sqlite3_stmt *st, int i, const char *s) {
    char *text = utf8_text_dup(s, strlen(s), NULL);
    if (!text) return -1;
    sqlite3_bind_text(st, i, text, -1, free);
    return 0;
}

/* Inserts the ablations row; sets w->id. */
static int insert_ablation(AblationWriter *w, const AblationRecord *r, char *err) {
    char hex[2][PROBE_CHECKSUM_HEX];
    sqlite3_stmt *st = store_prepare(w->s,
                                     "INSERT INTO ablations (model_dir, model_checksum, source, source_checksum,"
                                     " source_run_id, stats_run_id, kind, spec, mode, ctx, bos, documents, tokens,"
                                     " seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                                     err);
    if (!st) return -1;
    checksum_hex(r->model_checksum, hex[0]);
    checksum_hex(r->source_checksum, hex[1]);
    int rc = -1;
    if (bind_text_form(st, 1, r->model_dir) || bind_text_form(st, 3, r->source) ||
        (r->spec && bind_text_form(st, 8, r->spec))) {
        oom(w->s, err);
        goto done;
    }
    sqlite3_bind_text(st, 2, hex[0], -1, SQLITE_STATIC);
    if (r->source_run_id)
        sqlite3_bind_int64(st, 5, r->source_run_id);
    else
        sqlite3_bind_text(st, 4, hex[1], -1, SQLITE_STATIC);
    if (r->stats_run_id) sqlite3_bind_int64(st, 6, r->stats_run_id);
    sqlite3_bind_text(st, 7, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, r->mean_mode ? "mean" : "zero", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, r->ctx);
    sqlite3_bind_int(st, 11, r->bos);
    sqlite3_bind_int(st, 12, r->documents);
    sqlite3_bind_int64(st, 13, r->tokens);
    sqlite3_bind_double(st, 14, r->seconds);
    if (store_step_done(w->s, st, err)) goto done;
    w->id = sqlite3_last_insert_rowid(w->s->db);
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

AblationWriter *ablation_writer_begin(Store *s, const AblationRecord *rec, char *err) {
    AblationWriter *w = calloc(1, sizeof *w);
    if (!w) {
        oom(s, err);
        return NULL;
    }
    w->s = s;
    if (store_begin(s, err)) {
        writer_free(w);
        return NULL;
    }
    if (!(w->cond = store_prepare(s,
                                  "INSERT INTO ablation_conditions (ablation_id, idx, label, layer, layers,"
                                  " neurons_edited, tokens, baseline_ce, ablated_ce, baseline_ppl, ablated_ppl,"
                                  " delta_loss, kl, top1_agreement, delta_loss_se)"
                                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                                  err)) ||
        !(w->tok = store_prepare(s,
                                 "INSERT INTO ablation_tokens (condition_id, doc, pos, token_id, token,"
                                 " baseline_loss, ablated_loss, kl, top1_agree)"
                                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                 err)) ||
        insert_ablation(w, rec, err)) {
        ablation_writer_abort(w);
        return NULL;
    }
    return w;
}

/* The layers column: a JSON array of the layers set in mask. */
static void layers_json(const uint8_t *mask, int n_layer, char *out, size_t cap) {
    size_t k = 0;
    out[k++] = '[';
    for (int l = 0; l < n_layer; l++)
        if (mask[l] && k < cap - 16) k += (size_t)snprintf(out + k, 16, k > 1 ? ",%d" : "%d", l);
    out[k++] = ']';
    out[k] = '\0';
}

int ablation_writer_condition(AblationWriter *w, const AblationConditionRecord *c, char *err) {
    char layers[4096];
    const AblateFigures *f = c->fig;
    sqlite3_stmt *st = w->cond;
    layers_json(c->layers, c->n_layer, layers, sizeof layers);
    sqlite3_bind_int64(st, 1, w->id);
    sqlite3_bind_int(st, 2, w->n_conditions);
    if (bind_text_form(st, 3, c->label)) return oom(w->s, err);
    if (c->layer >= 0) sqlite3_bind_int(st, 4, c->layer);
    sqlite3_bind_text(st, 5, layers, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, c->neurons_edited);
    sqlite3_bind_int64(st, 7, f->n);
    double v[] = {f->base_ce, f->abl_ce, f->base_ppl, f->abl_ppl, f->dloss, f->kl, f->agreement, f->dloss_se};
    for (int j = 0; j < 8; j++) sqlite3_bind_double(st, 8 + j, v[j]);
    if (store_step_done(w->s, st, err)) return -1;
    w->condition = sqlite3_last_insert_rowid(w->s->db);
    w->n_conditions++;
    return 0;
}

int ablation_writer_token(AblationWriter *w, int doc, const TokenEffect *e, const char *bytes, size_t len,
                          char *err) {
    sqlite3_stmt *st = w->tok;
    const char *text = utf8_text_in(&w->text, bytes ? bytes : "", bytes ? len : 0, &len);
    if (!text) return oom(w->s, err);
    sqlite3_bind_int64(st, 1, w->condition);
    sqlite3_bind_int(st, 2, doc);
    sqlite3_bind_int(st, 3, e->pos);
    sqlite3_bind_int(st, 4, e->token);
    sqlite3_bind_text(st, 5, text, (int)len, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, e->base_loss);
    sqlite3_bind_double(st, 7, e->abl_loss);
    sqlite3_bind_double(st, 8, e->kl);
    sqlite3_bind_int(st, 9, e->base_top == e->abl_top);
    return store_step_done(w->s, st, err);
}

/* Neurons by estimate, largest first, ties by index. */
typedef struct {
    double estimate;
    int neuron;
} Ranked;

static int by_estimate(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->estimate != y->estimate) return x->estimate > y->estimate ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

int ablation_writer_estimates(AblationWriter *w, int layer, int n, const double *estimate, const double *act_mean,
                              const int *idx, char *err) {
    Ranked *order = malloc(sizeof *order * (size_t)n);
    if (!order) return oom(w->s, err);
    for (int j = 0; j < n; j++) order[j] = (Ranked){estimate[j], j};
    qsort(order, (size_t)n, sizeof *order, by_estimate);
    if (!w->est)
        w->est = store_prepare(w->s,
                               "INSERT INTO ablation_neuron_estimates (ablation_id, layer, neuron, rank,"
                               " estimate, act_mean, idx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               err);
    sqlite3_stmt *st = w->est;
    int rc = st ? 0 : -1;
    for (int r = 0; r < n && !rc; r++) {
        int j = order[r].neuron;
        sqlite3_bind_int64(st, 1, w->id);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, j);
        sqlite3_bind_int(st, 4, r + 1);
        sqlite3_bind_double(st, 5, estimate[j]);
        sqlite3_bind_double(st, 6, act_mean[j]);
        if (idx[j] >= 0)
            sqlite3_bind_int(st, 7, idx[j]);
        else
            sqlite3_bind_null(st, 7);
        rc = store_step_done(w->s, st, err);
    }
    free(order);
    return rc;
}

int64_t ablation_writer_id(const AblationWriter *w) { return w->id; }

int ablation_writer_commit(AblationWriter *w, int64_t *id, char *err) {
    if (store_commit(w->s, err)) {
        ablation_writer_abort(w);
        return -1;
    }
    *id = w->id;
    writer_free(w);
    return 0;
}

/* Reads (layer, neuron, estimate, delta_loss or NULL, ablation_id) rows of
 * a prepared query, at most limit, into a new array. */
static int ranks_read(Store *s, sqlite3_stmt *st, int limit, AblationNeuronRank **out, int *n, char *err) {
    AblationNeuronRank *v = malloc(sizeof *v * (size_t)(limit > 0 ? limit : 1));
    int rc = SQLITE_DONE, k = 0;
    if (!v) {
        sqlite3_finalize(st);
        return oom(s, err);
    }
    while (k < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        v[k++] = (AblationNeuronRank){sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
                                      sqlite3_column_double(st, 2),
                                      sqlite3_column_type(st, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 3),
                                      sqlite3_column_int64(st, 4)};
    if (k < limit && rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        free(v);
        return store_fail(s, rc, err);
    }
    sqlite3_finalize(st);
    *out = v;
    *n = k;
    return 0;
}

int ablation_neuron_ranking(Store *s, int64_t run_id, int layer, int limit, AblationNeuronRank **out, int *n,
                            char *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st =
        store_prepare(s,
                      "WITH latest AS (SELECT e.layer, max(e.ablation_id) AS id FROM ablation_neuron_estimates e"
                      " JOIN ablations a ON a.id = e.ablation_id"
                      " WHERE a.model_checksum = (SELECT model_checksum FROM runs WHERE id = ?1)"
                      " AND (?2 IS NULL OR e.layer = ?2) GROUP BY e.layer)"
                      " SELECT e.layer, e.neuron, e.estimate, c.delta_loss, e.ablation_id"
                      " FROM latest JOIN ablation_neuron_estimates e ON e.ablation_id = latest.id AND e.layer = latest.layer"
                      " LEFT JOIN ablation_conditions c ON c.ablation_id = e.ablation_id AND c.idx = e.idx"
                      " ORDER BY e.estimate DESC, e.layer, e.neuron LIMIT ?3",
                      err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    if (layer >= 0) sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int(st, 3, limit);
    return ranks_read(s, st, limit, out, n, err);
}

int ablation_estimates_top(Store *s, int64_t ablation_id, int limit, AblationNeuronRank **out, int *n, char *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT e.layer, e.neuron, e.estimate, c.delta_loss, e.ablation_id"
                                     " FROM ablation_neuron_estimates e LEFT JOIN ablation_conditions c"
                                     " ON c.ablation_id = e.ablation_id AND c.idx = e.idx WHERE e.ablation_id = ?1"
                                     " ORDER BY e.estimate DESC, e.layer, e.neuron LIMIT ?2",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, ablation_id);
    sqlite3_bind_int(st, 2, limit);
    return ranks_read(s, st, limit, out, n, err);
}
