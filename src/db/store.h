/* store.h — the probe database: open, create or migrate it from the embedded
 * schema (the .sql files under schema/), and small helpers around sqlite3 with probe's error
 * convention.
 *
 *   Store *s = store_open("probe.db", STORE_WRITE, err);  // creates / migrates
 *   sqlite3_stmt *st = store_prepare(s, "INSERT ...", err);
 *   store_exec(s, "BEGIN IMMEDIATE", err); ... store_exec(s, "COMMIT", err);
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
 * connection gets a busy timeout (5 s, or $PROBE_BUSY_TIMEOUT_MS).
 *
 * Ownership: the Store owns its connection; statements from store_prepare are
 * the caller's to sqlite3_finalize (before store_close). */
#ifndef PROBE_STORE_H
#define PROBE_STORE_H

#include <sqlite3.h>

#define PROBE_APP_ID 0x50524f42 /* 'PROB' */

typedef enum { STORE_READ, STORE_WRITE } StoreMode;

typedef struct {
    sqlite3 *db;
    char path[4096];
} Store;

/* STORE_WRITE creates the file when missing; STORE_READ requires an existing
 * probe database. NULL on failure (message in err). */
Store *store_open(const char *path, StoreMode mode, char *err);
void store_close(Store *s); /* accepts NULL */

/* Runs one or more statements without results. */
int store_exec(Store *s, const char *sql, char *err);
/* Prepares one statement (NULL on failure, message in err). */
sqlite3_stmt *store_prepare(Store *s, const char *sql, char *err);
/* Steps a statement expected to return no row (SQLITE_DONE), then resets it
 * and clears its bindings. */
int store_step_done(Store *s, sqlite3_stmt *st, char *err);
/* Fills err with "'path': <sqlite message>" (or a clearer line for
 * locked / read-only / full disk) for result code rc; returns -1. */
int store_fail(Store *s, int rc, char *err);

#endif
