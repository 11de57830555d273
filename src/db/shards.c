/* shards.c — see shards.h. */
#include "shards.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    memset(r, 0, sizeof *r);
}

static char *col_dup(sqlite3_stmt *q, int i) {
    const char *t = (const char *)sqlite3_column_text(q, i);
    return strdup(t ? t : "");
}

int shard_run_find(Store *s, int64_t want, ShardRun *out, char *err) {
    sqlite3_stmt *q = store_prepare(s,
                                    "SELECT id, status, model_dir, model_config, corpus_path, layers, full_layers,"
                                    " options, model_checksum, corpus_checksum, n_layer, n_inner, ctx, top_k,"
                                    " n_examples, bos, n_docs, n_tokens, corpus_bytes, seconds FROM runs"
                                    " WHERE (?1 > 0 AND id = ?1) OR (?1 <= 0 AND options LIKE '%\"shard\":%')"
                                    " ORDER BY id",
                                    err);
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

/* ---- documents ------------------------------------------------------------------ */

struct ShardDocs {
    Store *s;
    sqlite3_stmt *docs, *toks;
    ShardToken *tok;
    char *text_buf;  /* the tokens' texts, back to back */
    size_t text_cap;
    size_t *offs;    /* [cap] where each token's text starts in text_buf */
    int cap, eof;
};

ShardDocs *shard_docs_open(Store *s, int64_t run, char *err) {
    ShardDocs *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(err, "out of memory");
        return NULL;
    }
    d->s = s;
    d->docs = store_prepare(s,
                            "SELECT id, doc_index, byte_offset, n_tokens, text, text_bytes FROM documents"
                            " WHERE run_id = ?1 ORDER BY doc_index",
                            err);
    d->toks = d->docs ? store_prepare(s,
                                      "SELECT id, pos, token_id, token, byte_start, byte_end, char_start, char_end"
                                      " FROM tokens WHERE doc_id = ?1 ORDER BY pos",
                                      err)
                      : NULL;
    if (!d->toks) {
        shard_docs_close(d);
        return NULL;
    }
    sqlite3_bind_int64(d->docs, 1, run);
    return d;
}

void shard_docs_close(ShardDocs *d) {
    if (!d) return;
    sqlite3_finalize(d->docs);
    sqlite3_finalize(d->toks);
    free(d->tok);
    free(d->text_buf);
    free(d->offs);
    free(d);
}

int shard_docs_next(ShardDocs *d, ShardDoc *out, char *err) {
    if (d->eof) return 0;
    int rc = sqlite3_step(d->docs);
    if (rc == SQLITE_DONE) {
        d->eof = 1;
        return 0;
    }
    if (rc != SQLITE_ROW) return store_fail(d->s, rc, err);
    int64_t doc_id = sqlite3_column_int64(d->docs, 0);
    out->doc_index = sqlite3_column_int(d->docs, 1);
    out->byte_offset = sqlite3_column_int64(d->docs, 2);
    out->n_tokens = sqlite3_column_int(d->docs, 3);
    out->text = (const char *)sqlite3_column_text(d->docs, 4);
    out->text_len = (size_t)sqlite3_column_bytes(d->docs, 4);
    out->bytes = (const char *)sqlite3_column_blob(d->docs, 5);
    out->n_bytes = (size_t)sqlite3_column_bytes(d->docs, 5);
    if (!out->text) out->text = "";
    if (!out->bytes) out->bytes = "";
    /* tokens: their texts are copied (the document row stays current) */
    sqlite3_bind_int64(d->toks, 1, doc_id);
    int n = 0;
    size_t used = 0;
    while ((rc = sqlite3_step(d->toks)) == SQLITE_ROW) {
        if (n == d->cap) {
            int cap = d->cap ? d->cap * 2 : 1024;
            ShardToken *t = realloc(d->tok, sizeof *t * (size_t)cap);
            if (!t) goto oom;
            d->tok = t;
            size_t *o = realloc(d->offs, sizeof *o * (size_t)cap);
            if (!o) goto oom;
            d->offs = o;
            d->cap = cap;
        }
        const char *t = (const char *)sqlite3_column_text(d->toks, 3);
        size_t tl = (size_t)sqlite3_column_bytes(d->toks, 3);
        if (used + tl + 1 > d->text_cap) {
            size_t cap = (used + tl + 1) * 2;
            char *b = realloc(d->text_buf, cap);
            if (!b) goto oom;
            d->text_buf = b;
            d->text_cap = cap;
        }
        memcpy(d->text_buf + used, t ? t : "", tl);
        d->text_buf[used + tl] = '\0';
        d->offs[n] = used;
        used += tl + 1;
        ShardToken *k = &d->tok[n++];
        k->id = sqlite3_column_int64(d->toks, 0);
        k->pos = sqlite3_column_int(d->toks, 1);
        k->token_id = sqlite3_column_int(d->toks, 2);
        k->text_len = tl;
        k->byte_start = sqlite3_column_int(d->toks, 4);
        k->byte_end = sqlite3_column_int(d->toks, 5);
        k->char_start = sqlite3_column_int64(d->toks, 6);
        k->char_end = sqlite3_column_int64(d->toks, 7);
    }
    sqlite3_reset(d->toks);
    if (rc != SQLITE_DONE) return store_fail(d->s, rc, err);
    /* text pointers last: text_buf may have moved while it grew */
    for (int i = 0; i < n; i++) d->tok[i].text = d->text_buf + d->offs[i];
    out->tokens = d->tok;
    out->n = n;
    return 1;
oom:
    sqlite3_reset(d->toks);
    return err_set(err, "out of memory reading document %d", out->doc_index);
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
    for (int j = 0; j < F; j++) {
        l->count[j] = -1;
        l->n_ex[j] = 0;
    }
    memset(l->hist, 0, sizeof(uint32_t) * (size_t)F * n_bins);
    sqlite3_stmt *q = store_stmt(s,
                                 "SELECT neuron, count, mean, variance, min, max, frac_pos FROM neuron_stats"
                                 " WHERE run_id = ?1 AND layer = ?2",
                                 err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        if (j < 0 || j >= F) continue;
        l->count[j] = sqlite3_column_int64(q, 1);
        l->mean[j] = sqlite3_column_double(q, 2);
        l->var[j] = sqlite3_column_double(q, 3);
        l->min[j] = sqlite3_column_double(q, 4);
        l->max[j] = sqlite3_column_double(q, 5);
        l->frac[j] = sqlite3_column_double(q, 6);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    for (int j = 0; j < F; j++)
        if (l->count[j] < 0)
            return err_set(err, "'%s': run %" PRId64 " has no statistics for neuron %d:%d", s->path, run, layer, j);
    q = store_stmt(s,
                   "SELECT neuron, rank, token_row, value FROM neuron_examples WHERE run_id = ?1 AND layer = ?2"
                   " ORDER BY neuron, rank",
                   err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0), r = sqlite3_column_int(q, 1);
        if (j < 0 || j >= F || r < 1 || r > N || r != l->n_ex[j] + 1) continue;
        l->ex_row[(size_t)j * N + r - 1] = sqlite3_column_int64(q, 2);
        l->ex_value[(size_t)j * N + r - 1] = sqlite3_column_double(q, 3);
        l->n_ex[j] = r;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    q = store_stmt(s, "SELECT neuron, counts FROM neuron_histograms WHERE run_id = ?1 AND layer = ?2", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, layer);
    int got = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int j = sqlite3_column_int(q, 0);
        if (j < 0 || j >= F || sqlite3_column_bytes(q, 1) != n_bins * 4) continue;
        memcpy(l->hist + (size_t)j * n_bins, sqlite3_column_blob(q, 1), (size_t)n_bins * 4);
        got++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) return store_fail(s, rc, err);
    l->has_hist = got == F;
    return 0;
}
