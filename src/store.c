/* store.c — see store.h. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schema_sql.h"
#include "util.h"

int store_fail(Store *s, int rc, char *err) {
    const char *path = s->path;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return err_set(err, "database '%s' is locked by another process (try again later)", path);
    case SQLITE_READONLY:
        return err_set(err, "cannot write database '%s': read-only (file or directory permissions)",
                       path);
    case SQLITE_FULL:
        return err_set(err, "cannot write database '%s': disk full", path);
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

sqlite3_stmt *store_prepare(Store *s, const char *sql, char *err) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        store_fail(s, rc, err);
        return NULL;
    }
    return st;
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

static int apply_schema(Store *s, long long from, char *err) {
    if (store_exec(s, "BEGIN IMMEDIATE", err)) return -1;
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
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d; COMMIT",
             PROBE_APP_ID, schema_file_count);
    if (store_exec(s, sql, err)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
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
    const char *env = getenv("PROBE_BUSY_TIMEOUT_MS");
    long ms = 5000;
    if (env && *env) parse_long(env, 0, 3600000, &ms);
    sqlite3_busy_timeout(s->db, (int)ms);
    if (mode == STORE_WRITE && sqlite3_db_readonly(s->db, "main") == 1) {
        err_set(err, "cannot write database '%s': read-only (file or directory permissions)", path);
        goto fail;
    }

    long long app = 0, version = 0, objects = 0;
    if (query_int(s, "PRAGMA application_id", &app, err) ||
        query_int(s, "PRAGMA user_version", &version, err) ||
        query_int(s, "SELECT count(*) FROM sqlite_master", &objects, err))
        goto fail;
    int fresh = app == 0 && objects == 0;
    if (!fresh && app != PROBE_APP_ID) {
        err_set(err, "'%s' is not a probe database (an SQLite database of another application)", path);
        goto fail;
    }
    if (version > schema_file_count) {
        err_set(err, "database '%s' has schema version %lld, newer than this probe's %d (upgrade probe)",
                path, version, schema_file_count);
        goto fail;
    }
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
        store_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536", err))
        goto fail;
    if (version < schema_file_count && apply_schema(s, version, err)) goto fail;
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
    sqlite3_close(s->db);
    free(s);
}
