/* store.h — the probe database: open, create or migrate it from the embedded
 * schema (the .sql files under schema/), and small helpers around sqlite3 with probe's error
 * convention.
 *
 *   Store *s = store_open("probe.db", STORE_WRITE, err);  // creates / migrates
 *   sqlite3_stmt *st = store_prepare(s, "INSERT ...", err);
 *   store_begin(s, err); ... store_commit(s, err);   // or store_rollback(s)
 *   store_close(s);
 *
 * A probe database is an SQLite file with PRAGMA application_id = PROBE_APP_ID
 * and PRAGMA user_version = the number of schema files applied to it. Opening
 * for writing applies the embedded schema files it lacks, in name order, in
 * one transaction (each file is one migration step; a file that changes what
 * a column holds has a data step in store.c that converts the rows an older
 * probe wrote, e.g. 060_text_utf8.sql). Opening for reading never migrates.
 * A file that is not SQLite, an SQLite database of another application, one
 * written by a newer probe, a read-only or a locked one are refused with one
 * line naming the file. New databases use 16 KiB pages and WAL; every
 * connection waits for another writer's lock up to 30 s (or
 * $PROBE_BUSY_TIMEOUT_MS): three commit intervals of a recording, which
 * holds its lock while it computes a batch. After a second of waiting it
 * says so on stderr, once per wait.
 *
 * Ownership: the Store owns its connection and the statements of store_stmt;
 * statements from store_prepare are the caller's to sqlite3_finalize (before
 * store_close).
 *
 * The rest of the database layer, one file per subject: runs.h (runs, their
 * resume state), results.h (documents, tokens, per-token and per-neuron
 * results of a run). */
#ifndef PROBE_STORE_H
#define PROBE_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#define PROBE_APP_ID 0x50524f42 /* 'PROB' */

typedef enum { STORE_READ, STORE_WRITE } StoreMode;

#define STORE_STMT_CACHE 32

typedef struct {
    sqlite3 *db;
    char path[4096];
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[STORE_STMT_CACHE]; /* store_stmt's statements, finalized by store_close */
    int n_cached;
    long busy_ms;        /* how long a write waits for another writer's lock */
    double busy_since;   /* when the current wait began (busy handler) */
    int busy_told;       /* the waiting message was printed for this wait */
    int version;         /* schema version (PRAGMA user_version) after opening: a database opened
                            for reading keeps its own, so readers of newer columns check it */
} Store;

/* What a SELECT of runs.blas (schema/130_run_blas.sql) says: "blas", or
 * "NULL" in a database older than version 13 opened for reading. */
const char *store_runs_blas(const Store *s);

/* Checks the environment variables the store reads (PROBE_BUSY_TIMEOUT_MS:
 * an integer in 0..3600000). 0, or -1 with a message naming the variable.
 * store_open checks them too; a command calls this first to report a bad
 * value as a usage error before it does any work. */
int store_env_check(char *err);

/* STORE_WRITE creates the file when missing; STORE_READ requires an existing
 * probe database. NULL on failure (message in err). */
Store *store_open(const char *path, StoreMode mode, char *err);
void store_close(Store *s); /* accepts NULL */

/* Runs one or more statements without results. */
int store_exec(Store *s, const char *sql, char *err);
/* Prepares one statement (NULL on failure, message in err). */
sqlite3_stmt *store_prepare(Store *s, const char *sql, char *err);
/* The Store's own prepared statement for `sql`, prepared on first use and
 * reused after: the way to run a statement once per row of a bulk load.
 * `sql` must have static storage (a string literal): its address
 * identifies the statement. The Store owns it (store_close finalizes it);
 * the caller leaves it reset (store_step_done does) so that it holds no
 * read lock. NULL on failure. */
sqlite3_stmt *store_stmt(Store *s, const char *sql, char *err);
/* Runs one statement that returns no rows, with integer parameters
 * ?1..?n_args bound from args (n_args may be 0). */
int store_run(Store *s, const char *sql, const int64_t *args, int n_args, char *err);
/* Steps a statement expected to return no row (SQLITE_DONE), then resets it
 * and clears its bindings. */
int store_step_done(Store *s, sqlite3_stmt *st, char *err);
/* Transactions: the one place for BEGIN / COMMIT / ROLLBACK. store_begin
 * takes the write lock at once (BEGIN IMMEDIATE), so a busy database fails
 * here and not halfway through a batch. store_rollback is the cleanup path:
 * it accepts NULL and a Store without an open transaction, and reports
 * nothing. */
int store_begin(Store *s, char *err);
int store_commit(Store *s, char *err);
void store_rollback(Store *s);
/* Ends the open transaction by outcome: commits when rc is 0 (and rolls back
 * if the commit fails), else rolls back. 0, or -1 (err set by whichever
 * failed). */
int store_end(Store *s, int rc, char *err);

/* Fills err with "'path': <sqlite message>" (or a clearer line for
 * locked / read-only / full disk) for result code rc; returns -1. */
int store_fail(Store *s, int rc, char *err);

#endif
