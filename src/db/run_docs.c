/* run_docs.c — see run_docs.h. */
#include "run_docs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct RunDocs {
    Store *s;
    sqlite3_stmt *docs, *toks;
    RunDocsDetail detail;
    int eof; /* docs returned SQLITE_DONE: stepping again would restart it */
    char *bytes;
    size_t bytes_cap;
    int cap;          /* of the per-token arrays */
    int64_t *rows;
    int32_t *ids, *byte_end;
    RunDocToken *tok; /* RUN_DOCS_FULL */
    char *text_buf;   /* RUN_DOCS_FULL: the tokens' texts, back to back */
    size_t text_cap;
    size_t *offs;     /* [cap] where each token's text starts in text_buf */
};

int run_docs_header(Store *s, int64_t run, int *bos, int *n_docs, char *err) {
    sqlite3_stmt *q = store_stmt(s, "SELECT bos, (SELECT count(*) FROM documents WHERE run_id = ?1)"
                                    " FROM runs WHERE id = ?1", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *bos = sqlite3_column_int(q, 0);
        *n_docs = sqlite3_column_int(q, 1);
    }
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) return err_set(err, "no run %" PRId64 " in '%s'", run, s->path);
    if (rc != SQLITE_ROW) return store_fail(s, rc, err);
    if (*n_docs == 0) return err_set(err, "run %" PRId64 " in '%s' has no recorded documents", run, s->path);
    return 0;
}

RunDocs *run_docs_open(Store *s, int64_t run, RunDocsDetail detail, char *err) {
    RunDocs *d = calloc(1, sizeof *d);
    if (!d) {
        err_set(err, "out of memory");
        return NULL;
    }
    d->s = s;
    d->detail = detail;
    d->docs = store_prepare(s,
                            detail == RUN_DOCS_FULL
                                ? "SELECT id, doc_index, text_bytes, n_tokens, byte_offset, text FROM documents"
                                  " WHERE run_id = ?1 ORDER BY doc_index"
                                : "SELECT id, doc_index, text_bytes, n_tokens FROM documents"
                                  " WHERE run_id = ?1 ORDER BY doc_index",
                            err);
    d->toks = !d->docs ? NULL
              : detail == RUN_DOCS_FULL
                  ? store_prepare(s,
                                  "SELECT id, token_id, byte_end, pos, byte_start, char_start, char_end, token"
                                  " FROM tokens WHERE doc_id = ?1 ORDER BY pos",
                                  err)
                  : store_prepare(s, "SELECT id, token_id, byte_end FROM tokens WHERE doc_id = ?1 ORDER BY pos", err);
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
    free(d->rows);
    free(d->ids);
    free(d->byte_end);
    free(d->tok);
    free(d->text_buf);
    free(d->offs);
    free(d);
}

/* Room for `need` tokens in every per-token array; -1 when out of memory
 * (the arrays that did grow are kept). */
static int reserve_tokens(RunDocs *d, int need) {
    if (need <= d->cap) return 0;
    int cap = d->cap ? d->cap : 256;
    while (cap < need) cap *= 2;
    int64_t *rows = realloc(d->rows, sizeof *rows * (size_t)cap);
    if (rows) d->rows = rows;
    int32_t *ids = realloc(d->ids, sizeof *ids * (size_t)cap);
    if (ids) d->ids = ids;
    int32_t *be = realloc(d->byte_end, sizeof *be * (size_t)cap);
    if (be) d->byte_end = be;
    if (!rows || !ids || !be) return -1;
    if (d->detail == RUN_DOCS_FULL) {
        RunDocToken *t = realloc(d->tok, sizeof *t * (size_t)cap);
        if (t) d->tok = t;
        size_t *o = realloc(d->offs, sizeof *o * (size_t)cap);
        if (o) d->offs = o;
        if (!t || !o) return -1;
    }
    d->cap = cap;
    return 0;
}

/* RUN_DOCS_FULL: token n's remaining columns; its text is copied into
 * text_buf at *used (the pointers are set once the buffer stops moving). */
static int read_token_detail(RunDocs *d, int n, size_t *used) {
    const char *t = (const char *)sqlite3_column_text(d->toks, 7);
    size_t tl = (size_t)sqlite3_column_bytes(d->toks, 7);
    if (*used + tl + 1 > d->text_cap) {
        size_t cap = (*used + tl + 1) * 2;
        char *b = realloc(d->text_buf, cap);
        if (!b) return -1;
        d->text_buf = b;
        d->text_cap = cap;
    }
    memcpy(d->text_buf + *used, t ? t : "", tl);
    d->text_buf[*used + tl] = '\0';
    d->offs[n] = *used;
    *used += tl + 1;
    d->tok[n] = (RunDocToken){.pos = sqlite3_column_int(d->toks, 3), .byte_start = sqlite3_column_int(d->toks, 4),
                              .char_start = sqlite3_column_int64(d->toks, 5),
                              .char_end = sqlite3_column_int64(d->toks, 6), .text_len = tl};
    return 0;
}

/* The tokens of document doc_id into the cursor's arrays; their count, or
 * -1 with err. */
static int read_tokens(RunDocs *d, int64_t doc_id, int doc_index, int n_hint, char *err) {
    sqlite3_bind_int64(d->toks, 1, doc_id);
    int rc, n = 0;
    size_t used = 0;
    /* the stored count is a hint only (a damaged row must not size the arrays) */
    if (reserve_tokens(d, n_hint > 0 && n_hint < (1 << 20) ? n_hint : 1)) goto oom;
    while ((rc = sqlite3_step(d->toks)) == SQLITE_ROW) {
        if (reserve_tokens(d, n + 1)) goto oom;
        d->rows[n] = sqlite3_column_int64(d->toks, 0);
        d->ids[n] = sqlite3_column_int(d->toks, 1);
        d->byte_end[n] = sqlite3_column_int(d->toks, 2);
        if (d->detail == RUN_DOCS_FULL && read_token_detail(d, n, &used)) goto oom;
        n++;
    }
    sqlite3_reset(d->toks);
    if (rc != SQLITE_DONE) return store_fail(d->s, rc, err);
    if (d->detail == RUN_DOCS_FULL)
        for (int i = 0; i < n; i++) d->tok[i].text = d->text_buf + d->offs[i];
    return n;
oom:
    sqlite3_reset(d->toks);
    return err_set(err, "out of memory reading document %d", doc_index);
}

int run_docs_next(RunDocs *d, RunDoc *out, char *err) {
    if (d->eof) return 0;
    int rc = sqlite3_step(d->docs);
    if (rc == SQLITE_DONE) {
        d->eof = 1;
        return 0;
    }
    if (rc != SQLITE_ROW) return store_fail(d->s, rc, err);
    RunDoc r = {.id = sqlite3_column_int64(d->docs, 0), .doc_index = sqlite3_column_int(d->docs, 1)};
    /* the bytes are copied: the tokens' query must not invalidate them */
    const void *b = sqlite3_column_blob(d->docs, 2);
    r.n_bytes = (size_t)sqlite3_column_bytes(d->docs, 2);
    if (r.n_bytes + 1 > d->bytes_cap) {
        char *p = realloc(d->bytes, r.n_bytes + 1);
        if (!p) return err_set(err, "out of memory for document %d", r.doc_index);
        d->bytes = p;
        d->bytes_cap = r.n_bytes + 1;
    }
    if (r.n_bytes) memcpy(d->bytes, b, r.n_bytes);
    d->bytes[r.n_bytes] = '\0';
    int n_hint = sqlite3_column_int(d->docs, 3);
    if (d->detail == RUN_DOCS_FULL) {
        r.n_tokens = n_hint;
        r.byte_offset = sqlite3_column_int64(d->docs, 4);
    }
    int n = read_tokens(d, r.id, r.doc_index, n_hint, err);
    if (n < 0) return -1;
    if (d->detail == RUN_DOCS_FULL) {
        /* the document row stays current: its text is read after the tokens */
        r.text = (const char *)sqlite3_column_text(d->docs, 5);
        r.text_len = (size_t)sqlite3_column_bytes(d->docs, 5);
        if (!r.text) r.text = "";
        r.tokens = d->tok;
    }
    r.bytes = d->bytes;
    r.n = n;
    r.rows = d->rows;
    r.ids = d->ids;
    r.byte_end = d->byte_end;
    *out = r;
    return 1;
}
