/* runs.c — see runs.h. */
#include "runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results.h"
#include "utf8.h"
#include "util.h"

const char *run_status_name(RunStatus st) {
    return st == RUN_COMPLETE ? "complete" : st == RUN_INTERRUPTED ? "interrupted" : "running";
}

/* A status read back (untrusted): anything but the two final states counts
 * as running. */
static RunStatus status_parse(const unsigned char *s) {
    if (s && !strcmp((const char *)s, "complete")) return RUN_COMPLETE;
    if (s && !strcmp((const char *)s, "interrupted")) return RUN_INTERRUPTED;
    return RUN_RUNNING;
}

static const char *sql_find =
    "SELECT id, status, docs_done, n_tokens, seconds, pid, options,"
    " coalesce(CAST(strftime('%s', updated_at) AS INTEGER), CAST(strftime('%s', started_at) AS INTEGER), 0),"
    " blas FROM runs"
    " WHERE model_checksum = ?1 AND corpus_checksum = ?2 AND options = ?3"
    " ORDER BY status = 'complete' DESC, id DESC LIMIT 1";
static const char *sql_find_other =
    "SELECT id, status, docs_done, n_tokens, seconds, pid, options,"
    " coalesce(CAST(strftime('%s', updated_at) AS INTEGER), CAST(strftime('%s', started_at) AS INTEGER), 0),"
    " blas FROM runs"
    " WHERE model_checksum = ?1 AND corpus_checksum = ?2 AND options <> ?3 AND status <> 'complete'"
    " ORDER BY id DESC LIMIT 1";

static int find(Store *s, const char *sql, const RunKey *key, RunInfo *out, char *err) {
    sqlite3_stmt *st = store_stmt(s, sql, err);
    if (!st) return -1;
    char mck[PROBE_CHECKSUM_HEX], cck[PROBE_CHECKSUM_HEX];
    checksum_hex(key->model_checksum, mck);
    checksum_hex(key->corpus_checksum, cck);
    sqlite3_bind_text(st, 1, mck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, cck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, key->options, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *opts = sqlite3_column_text(st, 6);
        *out = (RunInfo){
            .id = sqlite3_column_int64(st, 0),
            .status = status_parse(sqlite3_column_text(st, 1)),
            .docs_done = sqlite3_column_int(st, 2),
            .n_tokens = sqlite3_column_int64(st, 3),
            .seconds = sqlite3_column_double(st, 4),
            .pid = sqlite3_column_int64(st, 5),
            .updated = sqlite3_column_int64(st, 7),
        };
        snprintf(out->options, sizeof out->options, "%s", opts ? (const char *)opts : "");
        const unsigned char *blas = sqlite3_column_text(st, 8);
        snprintf(out->blas, sizeof out->blas, "%s", blas ? (const char *)blas : "");
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = store_fail(s, rc, err);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int runs_find(Store *s, const RunKey *key, RunInfo *out, char *err) { return find(s, sql_find, key, out, err); }

int runs_find_other_options(Store *s, const RunKey *key, RunInfo *out, char *err) {
    return find(s, sql_find_other, key, out, err);
}

int runs_create(Store *s, const RunSpec *spec, long long pid, int64_t *id, char *err) {
    sqlite3_stmt *st = store_stmt(
        s,
        "INSERT INTO runs (status, model_dir, model_checksum, model_config, n_layer, n_inner,"
        " corpus_path, corpus_checksum, corpus_bytes, options, layers, full_layers, ctx, top_k,"
        " n_examples, bos, n_docs, pid, blas) VALUES ('running',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        err);
    if (!st) return -1;
    /* paths are file names, any bytes: stored as their text form */
    char *dir = utf8_text_dup(spec->model_dir, strlen(spec->model_dir), NULL);
    char *path = utf8_text_dup(spec->corpus_path, strlen(spec->corpus_path), NULL);
    if (!dir || !path) {
        free(dir);
        free(path);
        return err_set(err, "out of memory");
    }
    char mck[PROBE_CHECKSUM_HEX], cck[PROBE_CHECKSUM_HEX];
    checksum_hex(spec->key.model_checksum, mck);
    checksum_hex(spec->key.corpus_checksum, cck);
    int i = 1;
    sqlite3_bind_text(st, i++, dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, mck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, spec->model_config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, spec->n_layer);
    sqlite3_bind_int(st, i++, spec->n_inner);
    sqlite3_bind_text(st, i++, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, cck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, i++, spec->corpus_bytes);
    sqlite3_bind_text(st, i++, spec->key.options, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, spec->layers, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, spec->full_layers, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, spec->ctx);
    sqlite3_bind_int(st, i++, spec->top_k);
    sqlite3_bind_int(st, i++, spec->n_examples);
    sqlite3_bind_int(st, i++, spec->bos);
    sqlite3_bind_int(st, i++, spec->n_docs);
    sqlite3_bind_int64(st, i++, pid);
    if (spec->blas) sqlite3_bind_text(st, i, spec->blas, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
    int rc = store_step_done(s, st, err);
    free(dir);
    free(path);
    if (rc) return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int runs_add_blas(Store *s, int64_t id, const char *core, int *added, char *err) {
    *added = 0;
    sqlite3_stmt *st = store_stmt(s,
                                  "UPDATE runs SET blas = blas || ',' || ?2 WHERE id = ?1 AND blas IS NOT NULL"
                                  " AND instr(',' || blas || ',', ',' || ?2 || ',') = 0",
                                  err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, core, -1, SQLITE_TRANSIENT);
    if (store_step_done(s, st, err)) return -1;
    *added = sqlite3_changes(s->db) > 0;
    return 0;
}

int runs_reopen(Store *s, int64_t id, int docs_done, long long pid, char *err) {
    /* ?1 run, ?2 first document to drop, ?3 pid */
    static const char *steps[] = {
        "UPDATE runs SET status = 'running', pid = ?3 WHERE id = ?1",
        "DELETE FROM token_topk WHERE token_row IN (SELECT t.id FROM tokens t JOIN documents d"
        " ON d.id = t.doc_id WHERE d.run_id = ?1 AND d.doc_index >= ?2)",
        "DELETE FROM token_full WHERE token_row IN (SELECT t.id FROM tokens t JOIN documents d"
        " ON d.id = t.doc_id WHERE d.run_id = ?1 AND d.doc_index >= ?2)",
        "DELETE FROM tokens WHERE doc_id IN (SELECT id FROM documents WHERE run_id = ?1 AND doc_index >= ?2)",
        "DELETE FROM documents WHERE run_id = ?1 AND doc_index >= ?2",
    };
    const int64_t args[3] = {id, docs_done, pid};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (store_run(s, steps[i], args, 3, err)) return -1;
    return results_clear_neurons(s, id, err);
}

int runs_progress(Store *s, int64_t id, const RunProgress *p, char *err) {
    sqlite3_stmt *st = store_stmt(
        s,
        "UPDATE runs SET status = ?1, docs_done = ?2, n_tokens = ?3, seconds = ?4, tokens_per_sec = ?5,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),"
        " finished_at = CASE WHEN ?1 = 'complete' THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') END"
        " WHERE id = ?6",
        err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, run_status_name(p->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, p->docs_done);
    sqlite3_bind_int64(st, 3, p->n_tokens);
    sqlite3_bind_double(st, 4, p->seconds);
    if (p->seconds > 0) sqlite3_bind_double(st, 5, (double)p->n_tokens / p->seconds);
    sqlite3_bind_int64(st, 6, id);
    return store_step_done(s, st, err);
}

int runs_state_save(Store *s, int64_t id, int layer, const void *state, size_t len, char *err) {
    sqlite3_stmt *st = store_stmt(s, "INSERT OR REPLACE INTO run_state (run_id, layer, state) VALUES (?,?,?)", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_blob64(st, 3, state, len, SQLITE_STATIC);
    return store_step_done(s, st, err);
}

int runs_state_load(Store *s, int64_t id, RunStateFn fn, void *user, char *err) {
    sqlite3_stmt *st = store_stmt(s, "SELECT layer, state FROM run_state WHERE run_id = ?", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc, failed = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (fn(user, sqlite3_column_int(st, 0), blob, len, err)) {
            failed = 1;
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (failed) return -1;
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

int runs_state_clear(Store *s, int64_t id, char *err) {
    return store_run(s, "DELETE FROM run_state WHERE run_id = ?1", &id, 1, err);
}
