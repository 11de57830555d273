/* neuron_card.c — see neuron_card.h. */
#include "neuron_card.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist_codec.h"
#include "util.h"

int card_histogram(Store *s, int64_t run, int layer, int neuron, uint32_t *counts, int n_bins, char *err) {
    sqlite3_stmt *q =
        store_stmt(s, "SELECT counts FROM neuron_histograms WHERE run_id = ?1 AND layer = ?2 AND neuron = ?3", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    sqlite3_bind_int(q, 3, neuron);
    int r = sqlite3_step(q), got = 0;
    if (r == SQLITE_ROW)
        got = hist_unblob(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), counts, n_bins) == 0;
    sqlite3_reset(q);
    if (r != SQLITE_ROW && r != SQLITE_DONE) return store_fail(s, r, err);
    return got;
}

void card_rows_free(CardRow *rows, int n) {
    for (int i = 0; i < n; i++) free(rows[i].name);
}

static int rows_read(Store *s, sqlite3_stmt *q, CardRow *out, int cap, int *n, char *err) {
    int r, m = 0;
    while ((r = sqlite3_step(q)) == SQLITE_ROW && m < cap) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        CardRow *c = &out[m];
        c->name = strdup(t ? t : "");
        c->a = sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1);
        c->b = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
        c->c = sqlite3_column_type(q, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 3);
        c->rank = sqlite3_column_int64(q, 4);
        c->of = sqlite3_column_int64(q, 5);
        m++;
        if (!c->name) {
            sqlite3_reset(q);
            card_rows_free(out, m);
            return err_set(err, "out of memory");
        }
    }
    sqlite3_reset(q);
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        card_rows_free(out, m);
        return store_fail(s, r, err);
    }
    *n = m;
    return 0;
}

int card_concepts(Store *s, int64_t run, int layer, int neuron, CardRow *out, int cap, int *n, char *err) {
    sqlite3_stmt *q = store_stmt(
        s,
        "SELECT c.name, x.auroc, x.auroc_error, x.cohen_d,"
        " (SELECT count(*) + 1 FROM concept_scores y WHERE y.concept_run_id = x.concept_run_id AND y.auroc > x.auroc),"
        " (SELECT count(*) FROM concept_scores y WHERE y.concept_run_id = x.concept_run_id)"
        " FROM concept_scores x JOIN concept_runs c ON c.id = x.concept_run_id"
        " WHERE c.run_id = ?1 AND x.layer = ?2 AND x.neuron = ?3"
        " AND c.id IN (SELECT max(id) FROM concept_runs WHERE run_id = ?1 GROUP BY name, probe_checksum)"
        " ORDER BY x.auroc DESC",
        err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    sqlite3_bind_int(q, 3, neuron);
    return rows_read(s, q, out, cap, n, err);
}

int card_ablations(Store *s, int layer, int neuron, CardRow *out, int cap, int *n, char *err) {
    char many[64], one[64], lay[32];
    snprintf(many, sizeof many, "neurons %d:%d", layer, neuron);
    snprintf(one, sizeof one, "neuron %d:%d", layer, neuron);
    snprintf(lay, sizeof lay, "layer %d", layer);
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT c.label, c.delta_loss, c.kl, c.top1_agreement, a.id, c.tokens, c.idx"
                                 " FROM ablation_conditions c JOIN ablations a ON a.id = c.ablation_id"
                                 " WHERE c.label IN (?1, ?2, ?3)"
                                 " UNION ALL"
                                 " SELECT 'estimated alone, rank ' || e.rank, e.estimate, NULL, NULL, e.ablation_id,"
                                 " a.tokens, -1 FROM ablation_neuron_estimates e JOIN ablations a ON a.id = e.ablation_id"
                                 " WHERE e.layer = ?4 AND e.neuron = ?5"
                                 " ORDER BY 5 DESC, 7",
                                 err);
    if (!q) return -1;
    sqlite3_bind_text(q, 1, many, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, one, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, lay, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, layer);
    sqlite3_bind_int(q, 5, neuron);
    return rows_read(s, q, out, cap, n, err);
}

int card_kv(Store *s, int64_t run, int layer, int neuron, CardKv *out, int cap, int *n, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT variant, next_token_id, value_top_id, agree, triggers, median_rank"
                                 " FROM kv_neurons WHERE kv_run_id = (SELECT max(id) FROM kv_runs WHERE run_id = ?1)"
                                 " AND layer = ?2 AND neuron = ?3 ORDER BY variant DESC",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    sqlite3_bind_int(q, 3, neuron);
    int r, m = 0;
    while ((r = sqlite3_step(q)) == SQLITE_ROW && m < cap) {
        CardKv *k = &out[m++];
        const char *v = (const char *)sqlite3_column_text(q, 0);
        snprintf(k->variant, sizeof k->variant, "%s", v ? v : "");
        k->next_id = sqlite3_column_type(q, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 1);
        k->value_top = sqlite3_column_int(q, 2);
        k->agree = sqlite3_column_type(q, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 3);
        k->triggers = sqlite3_column_int(q, 4);
        k->median_rank = sqlite3_column_type(q, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 5);
    }
    sqlite3_reset(q);
    if (r != SQLITE_DONE && r != SQLITE_ROW) return store_fail(s, r, err);
    *n = m;
    return 0;
}
