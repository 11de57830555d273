/* run_tokens.c — see run_tokens.h. */
#include "run_tokens.h"

#include <inttypes.h>
#include <stdlib.h>

#include "util.h"

struct RunTokens {
    Store *store;
    sqlite3_stmt *q;
    int eof; /* q returned SQLITE_DONE: stepping again would restart it */
};

/* Reads runs.bos and the run's document count; -1 with err when missing. */
static int run_header(Store *s, int64_t run, int *bos, int *n_docs, char *err) {
    sqlite3_stmt *q = store_prepare(s, "SELECT bos, (SELECT count(*) FROM documents WHERE run_id = ?1)"
                                       " FROM runs WHERE id = ?1", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *bos = sqlite3_column_int(q, 0);
        *n_docs = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return err_set(err, "no run %" PRId64 " in '%s'", run, s->path);
    if (rc != SQLITE_ROW) return store_fail(s, rc, err);
    if (*n_docs == 0) return err_set(err, "run %" PRId64 " in '%s' has no recorded documents", run, s->path);
    return 0;
}

RunTokens *run_tokens_open(Store *s, int64_t run, int *bos, int *n_docs, char *err) {
    int b = 0, n = 0;
    if (run_header(s, run, &b, &n, err)) return NULL;
    RunTokens *rt = calloc(1, sizeof *rt);
    if (!rt) {
        err_set(err, "out of memory");
        return NULL;
    }
    rt->store = s;
    rt->q = store_prepare(s, "SELECT d.doc_index, t.token_id FROM documents d JOIN tokens t ON t.doc_id = d.id"
                             " WHERE d.run_id = ?1 ORDER BY d.doc_index, t.pos", err);
    if (!rt->q) {
        free(rt);
        return NULL;
    }
    sqlite3_bind_int64(rt->q, 1, run);
    *bos = b;
    *n_docs = n;
    return rt;
}

int run_tokens_next(RunTokens *rt, int *doc, int32_t *id, char *err) {
    if (rt->eof) return 0;
    int rc = sqlite3_step(rt->q);
    if (rc == SQLITE_DONE) {
        rt->eof = 1;
        return 0;
    }
    if (rc != SQLITE_ROW) return store_fail(rt->store, rc, err);
    *doc = sqlite3_column_int(rt->q, 0);
    *id = sqlite3_column_int(rt->q, 1);
    return 1;
}

void run_tokens_close(RunTokens *rt) {
    if (!rt) return;
    sqlite3_finalize(rt->q);
    free(rt);
}
