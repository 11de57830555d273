/* layer_stats.c — see layer_stats.h. */
#include "layer_stats.h"

#include <inttypes.h>
#include <string.h>

#include "hist_codec.h"
#include "util.h"

int layer_stats_read(Store *s, int64_t run, int layer, int F, LayerStats *st, char *err) {
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT neuron, count, mean, variance, min, max, frac_pos FROM neuron_stats"
                                 " WHERE run_id = ?1 AND layer = ?2",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    for (int j = 0; j < F; j++) st->count[j] = -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        if (j < 0 || j >= F) continue;
        st->count[j] = sqlite3_column_int64(q, 1);
        st->mean[j] = sqlite3_column_double(q, 2);
        st->var[j] = sqlite3_column_double(q, 3);
        if (st->min) st->min[j] = sqlite3_column_double(q, 4);
        if (st->max) st->max[j] = sqlite3_column_double(q, 5);
        if (st->frac) st->frac[j] = sqlite3_column_double(q, 6);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    for (int j = 0; j < F; j++)
        if (st->count[j] < 0)
            return err_set(err, "database '%s': run %" PRId64 " has no statistics for neuron %d:%d (is the run "
                           "stopped? probe record --resume finishes it)", s->path, run, layer, j);
    return 0;
}

int layer_hists_read(Store *s, int64_t run, int layer, int F, int n_bins, uint32_t *hist, int *has_hist,
                     char *err) {
    sqlite3_stmt *q = store_stmt(s, "SELECT neuron, counts FROM neuron_histograms WHERE run_id = ?1 AND layer = ?2",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    memset(hist, 0, sizeof *hist * (size_t)F * (size_t)n_bins);
    int rc, got = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        const void *b = sqlite3_column_blob(q, 1);
        if (j < 0 || j >= F) continue;
        if (hist_unblob(b, (size_t)sqlite3_column_bytes(q, 1), hist + (size_t)j * n_bins, n_bins)) {
            sqlite3_reset(q);
            return err_set(err, "database '%s': run %" PRId64 ": the histogram of neuron %d:%d is not %d counts",
                           s->path, run, layer, j, n_bins);
        }
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
