/* report_query.c — see report_query.h. */
#include "report_query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "util.h"

/* A malloc'd copy of a text column; NULL for SQL NULL when nullable, else "". */
static char *col_text(sqlite3_stmt *st, int i, int nullable, int *oom) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (!s && nullable) return NULL;
    char *d = strdup(s ? s : "");
    if (!d) *oom = 1;
    return d;
}

static double col_real(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Grows *arr (element size sz) to hold n + 1 elements; 0 or -1. */
static int grow(void **arr, int n, int *cap, size_t sz) {
    if (n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 16;
    void *g = realloc(*arr, sz * (size_t)nc);
    if (!g) return -1;
    memset((char *)g + sz * (size_t)*cap, 0, sz * (size_t)(nc - *cap));
    *arr = g;
    *cap = nc;
    return 0;
}

/* Ends a row loop: finalizes st; 0 on SQLITE_DONE, else the error. */
static int finish(Store *s, sqlite3_stmt *st, int r, int oom, char *err) {
    sqlite3_finalize(st);
    if (oom) return err_set(err, "out of memory");
    if (r != SQLITE_DONE) return store_fail(s, r, err);
    return 0;
}

/* ---- runs and layers ------------------------------------------------------ */

void report_runs_free(ReportRun *runs, int n) {
    for (int i = 0; runs && i < n; i++) {
        ReportRun *r = &runs[i];
        free(r->status), free(r->model_dir), free(r->model_checksum), free(r->model_config);
        free(r->corpus_path), free(r->layers), free(r->full_layers), free(r->started_at), free(r->blas);
    }
    free(runs);
}

int report_runs(Store *s, ReportRun **out, int *n, char *err) {
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT id, status, model_dir, model_checksum, model_config, corpus_path, layers, full_layers,"
             " started_at, n_docs, n_tokens, seconds, n_layer, n_inner, ctx, top_k, n_examples, %s FROM runs"
             " ORDER BY id",
             store_runs_blas(s));
    sqlite3_stmt *st = store_prepare(s, sql, err);
    if (!st) return -1;
    ReportRun *runs = NULL;
    int m = 0, cap = 0, r, oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&runs, m, &cap, sizeof *runs)) {
            oom = 1;
            break;
        }
        ReportRun *x = &runs[m++];
        x->id = sqlite3_column_int64(st, 0);
        x->status = col_text(st, 1, 0, &oom);
        x->model_dir = col_text(st, 2, 0, &oom);
        x->model_checksum = col_text(st, 3, 0, &oom);
        x->model_config = col_text(st, 4, 0, &oom);
        x->corpus_path = col_text(st, 5, 0, &oom);
        x->layers = col_text(st, 6, 0, &oom);
        x->full_layers = col_text(st, 7, 0, &oom);
        x->started_at = col_text(st, 8, 0, &oom);
        x->n_docs = sqlite3_column_int64(st, 9);
        x->n_tokens = sqlite3_column_int64(st, 10);
        x->seconds = sqlite3_column_double(st, 11);
        x->n_layer = sqlite3_column_int(st, 12);
        x->n_inner = sqlite3_column_int(st, 13);
        x->ctx = sqlite3_column_int(st, 14);
        x->top_k = sqlite3_column_int(st, 15);
        x->n_examples = sqlite3_column_int(st, 16);
        x->blas = col_text(st, 17, 1, &oom);
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_runs_free(runs, m);
        return -1;
    }
    *out = runs;
    *n = m;
    return 0;
}

int report_layers(Store *s, int64_t run, ReportLayer *out, int n_layer, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT layer, count(*), sum(frac_pos = 0), avg(frac_pos), avg(mean), max(max)"
                                     " FROM neuron_stats WHERE run_id = ?1 GROUP BY layer",
                                     err);
    sqlite3_stmt *med = st ? store_prepare(s,
                                           "SELECT frac_pos FROM neuron_stats WHERE run_id = ?1 AND layer = ?2"
                                           " ORDER BY frac_pos LIMIT 1 OFFSET ?3",
                                           err)
                           : NULL;
    if (!med) {
        sqlite3_finalize(st);
        return -1;
    }
    memset(out, 0, sizeof *out * (size_t)n_layer);
    sqlite3_bind_int64(st, 1, run);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int l = sqlite3_column_int(st, 0);
        if (l < 0 || l >= n_layer) continue;
        ReportLayer *x = &out[l];
        x->neurons = sqlite3_column_int(st, 1);
        x->never_positive = sqlite3_column_int(st, 2);
        x->avg_frac_pos = sqlite3_column_double(st, 3);
        x->avg_mean = sqlite3_column_double(st, 4);
        x->max_max = sqlite3_column_double(st, 5);
        sqlite3_bind_int64(med, 1, run);
        sqlite3_bind_int(med, 2, l);
        sqlite3_bind_int(med, 3, x->neurons / 2);
        int rm = sqlite3_step(med);
        x->median_frac_pos = rm == SQLITE_ROW ? sqlite3_column_double(med, 0) : NAN;
        sqlite3_reset(med);
        if (rm != SQLITE_ROW && rm != SQLITE_DONE) {
            r = rm;
            break;
        }
    }
    sqlite3_finalize(med);
    return finish(s, st, r, 0, err);
}

/* ---- the neurons of a layer ----------------------------------------------- */

void report_neurons_free(ReportNeuron *nr, int F) {
    for (int j = 0; nr && j < F; j++)
        for (int k = 0; k < nr[j].n_tok; k++) free(nr[j].tok[k]);
}

int report_layer_neurons(Store *s, int64_t run, int layer, ReportNeuron *out, int F, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT neuron, count, mean, variance, min, max, frac_pos FROM neuron_stats"
                                     " WHERE run_id = ?1 AND layer = ?2",
                                     err);
    if (!st) return -1;
    memset(out, 0, sizeof *out * (size_t)F);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, layer);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int j = sqlite3_column_int(st, 0);
        if (j < 0 || j >= F) continue;
        ReportNeuron *x = &out[j];
        x->present = 1;
        x->count = sqlite3_column_double(st, 1);
        x->mean = sqlite3_column_double(st, 2);
        double v = sqlite3_column_double(st, 3);
        x->std = v > 0 ? sqrt(v) : 0;
        x->min = sqlite3_column_double(st, 4);
        x->max = sqlite3_column_double(st, 5);
        x->frac_pos = sqlite3_column_double(st, 6);
    }
    if (finish(s, st, r, 0, err)) return -1;
    /* top tokens: distinct tokens among each neuron's first 16 examples, by
     * how often they occur (ties: the better rank first) */
    st = store_prepare(s,
                       "SELECT e.neuron, t.token, count(*) AS n FROM neuron_examples e"
                       " JOIN tokens t ON t.id = e.token_row"
                       " WHERE e.run_id = ?1 AND e.layer = ?2 AND e.rank <= 16"
                       " GROUP BY e.neuron, t.token_id ORDER BY e.neuron, n DESC, min(e.rank)",
                       err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, layer);
    int oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        int j = sqlite3_column_int(st, 0);
        if (j < 0 || j >= F || out[j].n_tok >= REPORT_TOP_TOKENS) continue;
        ReportNeuron *x = &out[j];
        x->tok[x->n_tok] = col_text(st, 1, 0, &oom);
        x->tok_n[x->n_tok] = sqlite3_column_int(st, 2);
        if (!oom) x->n_tok++;
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_neurons_free(out, F);
        return -1;
    }
    return 0;
}

/* ---- concept rankings ----------------------------------------------------- */

void report_concepts_free(ReportConcept *c, int n) {
    for (int i = 0; c && i < n; i++) {
        free(c[i].name), free(c[i].probe_path), free(c[i].probe_checksum);
        free(c[i].dropped_flags), free(c[i].layers), free(c[i].created_at);
    }
    free(c);
}

int report_concepts(Store *s, int64_t run, ReportConcept **out, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT id, name, probe_path, probe_checksum, dropped_flags, layers, created_at,"
                                     " concept_tokens, tokens, words FROM concept_runs"
                                     " WHERE id IN (SELECT max(id) FROM concept_runs WHERE run_id = ?1"
                                     " GROUP BY name, probe_checksum) ORDER BY name, id",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run);
    ReportConcept *c = NULL;
    int m = 0, cap = 0, r, oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&c, m, &cap, sizeof *c)) {
            oom = 1;
            break;
        }
        ReportConcept *x = &c[m++];
        x->id = sqlite3_column_int64(st, 0);
        x->name = col_text(st, 1, 0, &oom);
        x->probe_path = col_text(st, 2, 1, &oom);
        x->probe_checksum = col_text(st, 3, 0, &oom);
        x->dropped_flags = col_text(st, 4, 1, &oom);
        x->layers = col_text(st, 5, 0, &oom);
        x->created_at = col_text(st, 6, 0, &oom);
        x->concept_tokens = sqlite3_column_int64(st, 7);
        x->tokens = sqlite3_column_int64(st, 8);
        x->words = sqlite3_column_int64(st, 9);
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_concepts_free(c, m);
        return -1;
    }
    *out = c;
    *n = m;
    return 0;
}

int report_concept_layer(Store *s, int64_t concept_run, int layer, double *auroc, int F, char *err) {
    sqlite3_stmt *st = store_prepare(
        s, "SELECT neuron, auroc FROM concept_scores WHERE concept_run_id = ?1 AND layer = ?2", err);
    if (!st) return -1;
    for (int j = 0; j < F; j++) auroc[j] = NAN;
    sqlite3_bind_int64(st, 1, concept_run);
    sqlite3_bind_int(st, 2, layer);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int j = sqlite3_column_int(st, 0);
        if (j >= 0 && j < F) auroc[j] = col_real(st, 1);
    }
    return finish(s, st, r, 0, err);
}

int report_concept_top(Store *s, int64_t concept_run, ReportConceptRow *out, int limit, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT layer, neuron, rank, examples_in, examples, auroc, auroc_error, cohen_d,"
                                     " mean_in, mean_out, precision FROM concept_top_neurons"
                                     " WHERE concept_run_id = ?1 ORDER BY rank, layer, neuron LIMIT ?2",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, concept_run);
    sqlite3_bind_int(st, 2, limit);
    int m = 0, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && m < limit) {
        ReportConceptRow *x = &out[m++];
        x->layer = sqlite3_column_int(st, 0);
        x->neuron = sqlite3_column_int(st, 1);
        x->rank = sqlite3_column_int64(st, 2);
        x->examples_in = sqlite3_column_int64(st, 3);
        x->examples = sqlite3_column_int64(st, 4);
        x->auroc = col_real(st, 5);
        x->auroc_error = col_real(st, 6);
        x->cohen_d = col_real(st, 7);
        x->mean_in = col_real(st, 8);
        x->mean_out = col_real(st, 9);
        x->precision = col_real(st, 10);
    }
    if (r == SQLITE_ROW) r = SQLITE_DONE;
    if (finish(s, st, r, 0, err)) return -1;
    *n = m;
    return 0;
}

/* ---- ablations ------------------------------------------------------------ */

void report_ablations_free(ReportAblation *a, int n) {
    for (int i = 0; a && i < n; i++) {
        free(a[i].created_at), free(a[i].model_dir), free(a[i].source), free(a[i].kind);
        free(a[i].spec), free(a[i].mode);
    }
    free(a);
}

int report_ablations(Store *s, const char *model_checksum, ReportAblation **out, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT id, coalesce(source_run_id, 0), documents, tokens, created_at, model_dir,"
                                     " source, kind, spec, mode, seconds FROM ablations WHERE model_checksum = ?1"
                                     " ORDER BY id",
                                     err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, model_checksum, -1, SQLITE_TRANSIENT);
    ReportAblation *a = NULL;
    int m = 0, cap = 0, r, oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&a, m, &cap, sizeof *a)) {
            oom = 1;
            break;
        }
        ReportAblation *x = &a[m++];
        x->id = sqlite3_column_int64(st, 0);
        x->source_run_id = sqlite3_column_int64(st, 1);
        x->documents = sqlite3_column_int64(st, 2);
        x->tokens = sqlite3_column_int64(st, 3);
        x->created_at = col_text(st, 4, 0, &oom);
        x->model_dir = col_text(st, 5, 0, &oom);
        x->source = col_text(st, 6, 0, &oom);
        x->kind = col_text(st, 7, 0, &oom);
        x->spec = col_text(st, 8, 1, &oom);
        x->mode = col_text(st, 9, 0, &oom);
        x->seconds = sqlite3_column_double(st, 10);
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_ablations_free(a, m);
        return -1;
    }
    *out = a;
    *n = m;
    return 0;
}

void report_conditions_free(ReportCondition *c, int n) {
    for (int i = 0; c && i < n; i++) free(c[i].label);
    free(c);
}

int report_conditions(Store *s, int64_t ablation, ReportCondition **out, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT id, tokens, neurons_edited, coalesce(layer, -1), label, baseline_ce,"
                                     " ablated_ce, delta_loss, delta_loss_se, kl, top1_agreement"
                                     " FROM ablation_conditions WHERE ablation_id = ?1 ORDER BY idx",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, ablation);
    ReportCondition *c = NULL;
    int m = 0, cap = 0, r, oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&c, m, &cap, sizeof *c)) {
            oom = 1;
            break;
        }
        ReportCondition *x = &c[m++];
        x->id = sqlite3_column_int64(st, 0);
        x->tokens = sqlite3_column_int64(st, 1);
        x->neurons_edited = sqlite3_column_int64(st, 2);
        x->layer = sqlite3_column_int(st, 3);
        x->label = col_text(st, 4, 0, &oom);
        x->baseline_ce = sqlite3_column_double(st, 5);
        x->ablated_ce = sqlite3_column_double(st, 6);
        x->delta_loss = sqlite3_column_double(st, 7);
        x->delta_loss_se = sqlite3_column_double(st, 8);
        x->kl = sqlite3_column_double(st, 9);
        x->top1 = sqlite3_column_double(st, 10);
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_conditions_free(c, m);
        return -1;
    }
    *out = c;
    *n = m;
    return 0;
}

/* ---- tokens in context ---------------------------------------------------- */

void report_tokens_free(ReportToken *t, int n) {
    for (int i = 0; t && i < n; i++) free(t[i].token);
    free(t);
}

/* Reads rows (doc, pos, row, token, byte_end, value-or-NULL) of st. */
static int read_tokens(Store *s, sqlite3_stmt *st, ReportToken **out, int *n, char *err) {
    ReportToken *t = NULL;
    int m = 0, cap = 0, r, oom = 0;
    while (!oom && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&t, m, &cap, sizeof *t)) {
            oom = 1;
            break;
        }
        ReportToken *x = &t[m++];
        x->doc = sqlite3_column_int(st, 0);
        x->pos = sqlite3_column_int(st, 1);
        x->row = sqlite3_column_int64(st, 2);
        x->token = col_text(st, 3, 0, &oom);
        x->byte_end = (size_t)sqlite3_column_int64(st, 4);
        x->has_value = sqlite3_column_type(st, 5) != SQLITE_NULL;
        x->value = x->has_value ? sqlite3_column_double(st, 5) : NAN;
    }
    if (finish(s, st, oom ? SQLITE_DONE : r, oom, err)) {
        report_tokens_free(t, m);
        return -1;
    }
    *out = t;
    *n = m;
    return 0;
}

int report_context(Store *s, int64_t run, int doc, int pos_from, int pos_to, ReportToken **out, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT doc_index, pos, id, substr(text, s + 1, char_end - s), byte_end, NULL"
                                     " FROM (SELECT d.doc_index, t.pos, t.id, d.text, t.byte_end, t.char_end,"
                                     " max(t.char_start, coalesce(lag(t.char_end) OVER (ORDER BY t.pos), 0)) AS s"
                                     " FROM documents d JOIN tokens t ON t.doc_id = d.id"
                                     " WHERE d.run_id = ?1 AND d.doc_index = ?2 AND t.pos BETWEEN ?3 AND ?4)"
                                     " ORDER BY pos",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, doc);
    sqlite3_bind_int(st, 3, pos_from);
    sqlite3_bind_int(st, 4, pos_to);
    return read_tokens(s, st, out, n, err);
}

char *report_doc_bytes(Store *s, int64_t run, int doc, size_t *len, char *err) {
    sqlite3_stmt *st = store_stmt(s, "SELECT text_bytes FROM documents WHERE run_id = ?1 AND doc_index = ?2", err);
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, doc);
    int r = sqlite3_step(st);
    char *b = NULL;
    if (r == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if ((b = malloc(n + 1))) {
            if (n) memcpy(b, sqlite3_column_blob(st, 0), n);
            b[n] = '\0';
            *len = n;
        } else {
            err_set(err, "out of memory");
        }
    } else if (r == SQLITE_DONE) {
        err_set(err, "run %lld has no document %d", (long long)run, doc);
    } else {
        store_fail(s, r, err);
    }
    sqlite3_reset(st);
    return b;
}

int report_stored_activation(Store *s, int64_t row, int layer, int neuron, double *value, char *err) {
    sqlite3_stmt *st = store_stmt(s, "SELECT vec FROM token_full WHERE token_row = ?1 AND layer = ?2", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_int(st, 2, layer);
    int r = sqlite3_step(st), got = 0;
    if (r == SQLITE_ROW && sqlite3_column_bytes(st, 0) >= 2 * (neuron + 1)) {
        const unsigned char *v = sqlite3_column_blob(st, 0);
        *value = f16_to_f32((uint16_t)(v[2 * neuron] | v[2 * neuron + 1] << 8));
        got = 1;
    }
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) return store_fail(s, r, err);
    if (got) return 1;
    st = store_stmt(s, "SELECT top FROM token_topk WHERE token_row = ?1 AND layer = ?2", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_int(st, 2, layer);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_blob(st, 0);
        int k = sqlite3_column_bytes(st, 0) / 6;
        for (int i = 0; i < k && !got; i++, p += 6)
            if ((p[0] | p[1] << 8) == neuron) {
                uint32_t u = (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 24;
                float f;
                memcpy(&f, &u, 4);
                *value = f;
                got = 1;
            }
    }
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) return store_fail(s, r, err);
    return got;
}

int report_ablation_top_tokens(Store *s, int64_t condition, int k, ReportToken **out, int *n, char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT doc, pos, 0, token, 0, ablated_loss - baseline_loss AS d"
                                     " FROM ablation_tokens WHERE condition_id = ?1 ORDER BY d DESC, doc, pos LIMIT ?2",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, condition);
    sqlite3_bind_int(st, 2, k);
    return read_tokens(s, st, out, n, err);
}

int report_ablation_context(Store *s, int64_t condition, int doc, int pos_from, int pos_to, ReportToken **out, int *n,
                            char *err) {
    sqlite3_stmt *st = store_prepare(s,
                                     "SELECT doc, pos, 0, token, 0, ablated_loss - baseline_loss"
                                     " FROM ablation_tokens WHERE condition_id = ?1 AND doc = ?2"
                                     " AND pos BETWEEN ?3 AND ?4 ORDER BY pos",
                                     err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, condition);
    sqlite3_bind_int(st, 2, doc);
    sqlite3_bind_int(st, 3, pos_from);
    sqlite3_bind_int(st, 4, pos_to);
    return read_tokens(s, st, out, n, err);
}
