/* store.c — see store.h. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "results.h"
#include "schema_sql.h"
#include "utf8.h"
#include "util.h"

int store_fail(Store *s, int rc, char *err) {
    const char *path = s->path;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return err_set(err, "database '%s' is locked by another process: waited %.0f s for its lock (a recording "
                       "holds it up to 10 s between commits; PROBE_BUSY_TIMEOUT_MS sets the wait)", path,
                       (double)s->busy_ms / 1000.0);
    case SQLITE_READONLY:
        return err_set(err, "cannot write database '%s': read-only (file or directory permissions)",
                       path);
    case SQLITE_FULL:
        return err_set(err, "cannot write database '%s': disk full", path);
    case SQLITE_IOERR: {
        /* SQLite keeps the OS error only for some calls; errno still holds
         * the failed write's (EFBIG past a file-size limit: main() ignores
         * SIGXFSZ so that the write fails instead of killing probe) */
        int e = s->db ? sqlite3_system_errno(s->db) : 0;
        if (!e) e = errno;
        if (e == EFBIG) return err_set(err, "cannot write database '%s': file size limit reached (ulimit -f)", path);
        if (e == ENOSPC) return err_set(err, "cannot write database '%s': disk full", path);
        return err_set(err, "database '%s': %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    }
    case SQLITE_NOTADB:
        return err_set(err, "'%s' is not a probe database (not an SQLite file)", path);
    case SQLITE_CORRUPT:
        return err_set(err, "database '%s' is corrupt", path);
    default:
        return err_set(err, "database '%s': %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    }
}

int store_exec(Store *s, const char *sql, char *err) {
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_fail(s, rc, err);
}

int store_begin(Store *s, char *err) { return store_exec(s, "BEGIN IMMEDIATE", err); }

int store_commit(Store *s, char *err) { return store_exec(s, "COMMIT", err); }

void store_rollback(Store *s) {
    if (s && s->db && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_end(Store *s, int rc, char *err) {
    if (rc == 0 && store_commit(s, err) == 0) return 0;
    store_rollback(s);
    return -1;
}

const char *store_runs_blas(const Store *s) { return s->version >= 13 ? "blas" : "NULL"; }

sqlite3_stmt *store_prepare(Store *s, const char *sql, char *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc == SQLITE_ERROR) {
        /* probe's own SQL against a database opened for reading at an older
         * schema version (readers do not migrate), or against one that
         * claims this version: a table or column was changed by hand */
        if (s->version < schema_file_count)
            err_set(err, "database '%s' has schema version %d, older than this probe's %d, and lacks what this "
                    "command reads (%s): open it once with a command that writes to it (e.g. probe kv --db FILE) "
                    "to upgrade it", s->path, s->version, schema_file_count, sqlite3_errmsg(s->db));
        else
            err_set(err, "database '%s' does not have the tables and columns of probe's schema (%s): edited by hand "
                    "or damaged", s->path, sqlite3_errmsg(s->db));
        return NULL;
    }
    if (rc != SQLITE_OK) {
        store_fail(s, rc, err);
        return NULL;
    }
    return st;
}

sqlite3_stmt *store_stmt(Store *s, const char *sql, char *err) {
    for (int i = 0; i < s->n_cached; i++)
        if (s->cache[i].sql == sql) return s->cache[i].st;
    if (s->n_cached == STORE_STMT_CACHE) {
        err_set(err, "database '%s': more than %d cached statements", s->path, STORE_STMT_CACHE);
        return NULL;
    }
    sqlite3_stmt *st = store_prepare(s, sql, err);
    if (!st) return NULL;
    s->cache[s->n_cached].sql = sql;
    s->cache[s->n_cached++].st = st;
    return st;
}

int store_run(Store *s, const char *sql, const int64_t *args, int n_args, char *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, err);
    for (int i = 0; i < n_args; i++) sqlite3_bind_int64(st, i + 1, args[i]);
    rc = store_step_done(s, st, err);
    sqlite3_finalize(st);
    return rc;
}

int store_step_done(Store *s, sqlite3_stmt *st, char *err) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : store_fail(s, rc, err);
}

/* One integer from a PRAGMA or SELECT; -1 with err set on failure. */
static int query_int(Store *s, const char *sql, long long *out, char *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) store_fail(s, rc, err);
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

/* An existing non-empty file must start with SQLite's header; checked before
 * sqlite3 opens it so that the message is about the file, not a query. */
static int check_header(const char *path, int *exists, char *err) {
    struct stat sb;
    *exists = stat(path, &sb) == 0;
    if (!*exists) return 0;
    if (S_ISDIR(sb.st_mode)) return err_set(err, "database '%s' is a directory", path);
    if (sb.st_size == 0) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open database '%s': %s", path, strerror(errno));
    char head[16] = {0};
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n < 16 || memcmp(head, "SQLite format 3", 16) != 0)
        return err_set(err, "'%s' is not a probe database (not an SQLite file)", path);
    return 0;
}

/* ---- data steps of migrations ------------------------------------------------ */

/* probe_text(X): the text form (utf8.h) of a TEXT value; any other value as
 * it is. Registered only while a migration runs (views must not need it:
 * they are read by every SQLite client). */
static void sql_probe_text(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    const char *bytes = sqlite3_value_blob(argv[0]); /* the stored bytes, unconverted */
    size_t len;
    char *text = utf8_text_dup(bytes ? bytes : "", (size_t)sqlite3_value_bytes(argv[0]), &len);
    if (!text) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text64(ctx, text, len, free, SQLITE_UTF8);
}

/* Character spans of the tokens of every document, from its exact bytes. */
static int migrate_char_spans(Store *s, char *err) {
    sqlite3_stmt *docs = store_prepare(s, "SELECT id, text_bytes FROM documents ORDER BY id", err);
    sqlite3_stmt *toks = docs ? store_prepare(s, "SELECT id, byte_start, byte_end FROM tokens WHERE doc_id = ?"
                                                 " ORDER BY pos", err) : NULL;
    sqlite3_stmt *upd = toks ? store_prepare(s, "UPDATE tokens SET char_start = ?, char_end = ? WHERE id = ?",
                                             err) : NULL;
    int64_t *tok = NULL; /* [cap] id, byte_start, byte_end of the document's tokens */
    size_t cap = 0;
    int rc = -1, r;
    if (!upd) goto done;
    while ((r = sqlite3_step(docs)) == SQLITE_ROW) {
        const char *bytes = sqlite3_column_blob(docs, 1);
        size_t n = (size_t)sqlite3_column_bytes(docs, 1), nt = 0;
        sqlite3_bind_int64(toks, 1, sqlite3_column_int64(docs, 0));
        /* read the tokens first: no update while a scan of tokens is open */
        while ((r = sqlite3_step(toks)) == SQLITE_ROW) {
            if (nt + 3 > cap) {
                size_t ncap = cap ? cap * 2 : 3 * 1024;
                int64_t *g = realloc(tok, sizeof *tok * ncap);
                if (!g) {
                    err_set(err, "out of memory migrating database '%s'", s->path);
                    goto done;
                }
                tok = g;
                cap = ncap;
            }
            for (int c = 0; c < 3; c++) tok[nt++] = sqlite3_column_int64(toks, c);
        }
        sqlite3_reset(toks);
        if (r != SQLITE_DONE) {
            store_fail(s, r, err);
            goto done;
        }
        Utf8Cursor cur;
        utf8_cursor_init(&cur, bytes ? bytes : "", bytes ? n : 0);
        for (size_t i = 0; i < nt; i += 3) {
            /* spans are untrusted: clamped to the document by the cursor */
            int64_t b0 = tok[i + 1] < 0 ? 0 : tok[i + 1], b1 = tok[i + 2] < 0 ? 0 : tok[i + 2], c0, c1;
            utf8_cursor_span(&cur, (size_t)b0, (size_t)b1, &c0, &c1);
            sqlite3_bind_int64(upd, 1, c0);
            sqlite3_bind_int64(upd, 2, c1);
            sqlite3_bind_int64(upd, 3, tok[i]);
            if (store_step_done(s, upd, err)) goto done;
        }
    }
    if (r != SQLITE_DONE) {
        store_fail(s, r, err);
        goto done;
    }
    rc = 0;
done:
    free(tok);
    sqlite3_finalize(docs);
    sqlite3_finalize(toks);
    sqlite3_finalize(upd);
    return rc;
}

/* Every value of every column declared TEXT, in every table, replaced by its
 * text form where it differs. */
static int migrate_text_columns(Store *s, char *err) {
    sqlite3_stmt *cols = store_prepare(s,
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p"
        " WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " AND upper(p.type) LIKE '%TEXT%' ORDER BY m.name, p.cid", err);
    if (!cols) return -1;
    char **sql = NULL; /* one UPDATE per column, built before any runs */
    int n = 0, cap = 0, rc = -1, r;
    while ((r = sqlite3_step(cols)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **g = realloc(sql, sizeof *g * (size_t)cap);
            if (!g) goto oom;
            sql = g;
        }
        const char *t = (const char *)sqlite3_column_text(cols, 0), *c = (const char *)sqlite3_column_text(cols, 1);
        sql[n] = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = probe_text(\"%w\")"
                                 " WHERE typeof(\"%w\") = 'text' AND \"%w\" <> probe_text(\"%w\")",
                                 t, c, c, c, c, c);
        if (!sql[n]) goto oom;
        n++;
    }
    if (r != SQLITE_DONE) {
        store_fail(s, r, err);
        goto done;
    }
    sqlite3_finalize(cols);
    cols = NULL;
    for (int i = 0; i < n; i++)
        if (store_exec(s, sql[i], err)) goto done;
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory migrating database '%s'", s->path);
done:
    sqlite3_finalize(cols);
    for (int i = 0; i < n; i++) sqlite3_free(sql[i]);
    free(sql);
    return rc;
}

/* 060_text_utf8.sql: documents.text_bytes and the character spans from the
 * bytes an older probe stored as TEXT, then every TEXT value as its text form
 * (exact: nothing is lost, the bytes stay in text_bytes). */
static int migrate_text_utf8(Store *s, char *err) {
    int rc = sqlite3_create_function_v2(s->db, "probe_text", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                        sql_probe_text, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return store_fail(s, rc, err);
    rc = store_exec(s, "UPDATE documents SET text_bytes = CAST(text AS BLOB)", err) ||
         migrate_char_spans(s, err) || migrate_text_columns(s, err);
    sqlite3_create_function_v2(s->db, "probe_text", 1, SQLITE_UTF8, NULL, NULL, NULL, NULL, NULL);
    return rc ? -1 : 0;
}

/* 070_query_speed.sql: the summaries of every run that has stopped. */
static int migrate_summaries(Store *s, char *err) {
    sqlite3_stmt *st = store_prepare(s, "SELECT id FROM runs WHERE status <> 'running' ORDER BY id", err);
    if (!st) return -1;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = SQLITE_DONE, fail = 0;
    while (!fail && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *g = realloc(ids, sizeof *g * cap);
            if (!g) {
                fail = err_set(err, "out of memory migrating database '%s'", s->path);
                break;
            }
            ids = g;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (!fail && rc != SQLITE_DONE) fail = store_fail(s, rc, err);
    sqlite3_finalize(st);
    for (size_t i = 0; i < n && !fail; i++) fail = results_summarize(s, ids[i], err);
    free(ids);
    return fail ? -1 : 0;
}

/* Some migration steps change what a column holds, or add a table derived
 * from others, which their SQL cannot compute: after the named schema file
 * has run, in the same transaction, its data step converts (or derives from)
 * the rows an older probe wrote. On a new database the
 * tables are empty and a step costs nothing. */
static const struct {
    const char *file;
    int (*run)(Store *s, char *err);
} data_steps[] = {
    {"060_text_utf8.sql", migrate_text_utf8},
    {"070_query_speed.sql", migrate_summaries},
};

static int apply_schema(Store *s, long long from, char *err) {
    if (store_begin(s, err)) return -1;
    for (int i = (int)from; i < schema_file_count; i++) {
        char *msg = NULL;
        int rc = sqlite3_exec(s->db, schema_files[i].sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            if ((rc & 0xff) == SQLITE_ERROR)
                err_set(err, "database '%s': schema %s: %s", s->path, schema_files[i].name,
                        msg ? msg : sqlite3_errstr(rc));
            else
                store_fail(s, rc, err);
            sqlite3_free(msg);
            store_rollback(s);
            return -1;
        }
        for (size_t k = 0; k < sizeof data_steps / sizeof data_steps[0]; k++)
            if (!strcmp(data_steps[k].file, schema_files[i].name) && data_steps[k].run(s, err)) {
                store_rollback(s);
                return -1;
            }
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d", PROBE_APP_ID,
             schema_file_count);
    if (store_exec(s, sql, err) || store_commit(s, err)) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

/* $PROBE_BUSY_TIMEOUT_MS, default 30 s: a recording commits every 10 s and
 * holds the write lock in between, so a writer beside it must be able to
 * wait a commit interval and more. */
static int busy_timeout_ms(long *ms, char *err) {
    return env_long("PROBE_BUSY_TIMEOUT_MS", 0, 3600000, 30000, ms, err);
}

/* SQLite's busy handler: sleeps in growing steps (up to 100 ms) until the
 * lock is free or busy_ms have passed; after one second, says once on
 * stderr what it is waiting for, so a long pause is never silent. */
static int busy_wait(void *user, int calls) {
    Store *s = user;
    double now = now_sec();
    if (calls == 0) {
        s->busy_since = now;
        s->busy_told = 0;
    }
    double waited = now - s->busy_since;
    if (waited * 1000.0 >= (double)s->busy_ms) return 0;
    if (waited >= 1.0 && !s->busy_told) {
        fprintf(stderr, "probe: database '%s' is locked by another writer (a recording?); waiting up to %.0f s\n",
                s->path, (double)s->busy_ms / 1000.0);
        s->busy_told = 1;
    }
    int step_ms = calls < 10 ? calls + 1 : calls < 20 ? 10 * (calls - 9) : 100;
    struct timespec ts = {0, (long)step_ms * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

int store_env_check(char *err) {
    long ms;
    return busy_timeout_ms(&ms, err);
}

/* A reader of a WAL database in a directory it cannot write cannot create
 * the -shm file, and SQLite refuses even to read ("attempt to write a
 * readonly database"). When no -wal file is left (the last writer closed
 * cleanly, so the database file holds everything), the file is opened as
 * immutable instead: nothing can change it there. Returns 1 when reopened,
 * 0 when this does not apply, -1 on error. */
static int reopen_immutable(Store *s, const char *path, char *err) {
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (access(wal, F_OK) == 0) return 0;
    if (access(path, R_OK) != 0) return 0;
    char uri[3 * 4096 + 32];
    size_t n = (size_t)snprintf(uri, sizeof uri, "file:");
    for (const char *c = path; *c && n + 4 < sizeof uri; c++) {
        if (*c == '%' || *c == '?' || *c == '#')
            n += (size_t)snprintf(uri + n, sizeof uri - n, "%%%02x", (unsigned char)*c);
        else
            uri[n++] = *c;
    }
    snprintf(uri + n, sizeof uri - n, "?immutable=1");
    sqlite3_close(s->db);
    s->db = NULL;
    int rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(err, "cannot open database '%s': %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return -1;
    }
    return 1;
}

Store *store_open(const char *path, StoreMode mode, char *err) {
    int exists;
    if (check_header(path, &exists, err)) return NULL;
    if (!exists && mode == STORE_READ) {
        err_set(err, "cannot open database '%s': No such file or directory", path);
        return NULL;
    }
    Store *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory opening '%s'", path);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    int flags = mode == STORE_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* one connection per thread: no need for SQLite to lock a mutex around
     * every bind and step (about 3% of a GPT-2-small record) */
    flags |= SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        err_set(err, "cannot open database '%s': %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    long ms;
    if (busy_timeout_ms(&ms, err)) goto fail;
    s->busy_ms = ms;
    sqlite3_busy_handler(s->db, busy_wait, s);
    if (mode == STORE_WRITE && sqlite3_db_readonly(s->db, "main") == 1) {
        err_set(err, "cannot write database '%s': read-only (file or directory permissions)", path);
        goto fail;
    }

    long long app = 0, version = 0, objects = 0;
    if (mode == STORE_READ && query_int(s, "PRAGMA application_id", &app, err)) {
        if ((sqlite3_errcode(s->db) & 0xff) != SQLITE_READONLY || reopen_immutable(s, path, err) != 1) goto fail;
    }
    if (query_int(s, "PRAGMA application_id", &app, err) ||
        query_int(s, "PRAGMA user_version", &version, err) ||
        query_int(s, "SELECT count(*) FROM sqlite_master", &objects, err))
        goto fail;
    int fresh = app == 0 && objects == 0;
    if (!fresh && app != PROBE_APP_ID) {
        err_set(err, "'%s' is not a probe database (an SQLite database of another application)", path);
        goto fail;
    }
    /* every value read back is untrusted: a version outside 0..count (or a
     * version on a file with no tables) would index past the schema files */
    if (version < 0 || (fresh && version != 0)) {
        err_set(err, "'%s' is not a probe database (schema version %lld: edited by hand or damaged)", path,
                version);
        goto fail;
    }
    if (version > schema_file_count) {
        err_set(err, "database '%s' has schema version %lld, newer than this probe's %d (upgrade probe)",
                path, version, schema_file_count);
        goto fail;
    }
    s->version = (int)version;
    if (mode == STORE_READ) {
        if (fresh) {
            err_set(err, "'%s' is not a probe database (empty)", path);
            goto fail;
        }
        return s;
    }
    /* page size only takes effect before the first table exists */
    if (fresh && store_exec(s, "PRAGMA page_size = 16384", err)) goto fail;
    long long dummy;
    if (query_int(s, "PRAGMA journal_mode = WAL", &dummy, err) ||
        store_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384", err))
        goto fail;
    if (version < schema_file_count && apply_schema(s, version, err)) goto fail;
    s->version = schema_file_count;
    return s;
fail:
    store_close(s);
    if (!exists && mode == STORE_WRITE) {
        /* leave nothing behind when a new database could not be set up */
        char side[4200];
        remove(path);
        snprintf(side, sizeof side, "%s-wal", path);
        remove(side);
        snprintf(side, sizeof side, "%s-shm", path);
        remove(side);
    }
    return NULL;
}

void store_close(Store *s) {
    if (!s) return;
    for (int i = 0; i < s->n_cached; i++) sqlite3_finalize(s->cache[i].st);
    sqlite3_close(s->db);
    free(s);
}
