/* runs.h — the runs of `probe record` (schema/010_runs.sql): find a run by
 * what it records, create one, reopen one to resume it, save its progress
 * and its recorder's state (run_state), finish it.
 *
 *   RunKey key = {model_checksum, corpus_checksum, options_json};
 *   RunInfo found;
 *   int n = runs_find(s, &key, &found, err);            // 1 found, 0 none, -1 error
 *   store_begin(s, err);
 *   runs_create(s, &spec, getpid(), &id, err);           // or runs_reopen(...)
 *   ... results.h ...
 *   runs_state_save(s, id, layer, state, len, err);      // per recorded layer
 *   runs_progress(s, id, &(RunProgress){...}, err);
 *   store_commit(s, err);
 *
 * A run is identified by its model checksum, corpus checksum and options
 * (a JSON text the caller builds; runs compares it as text). Every function
 * that writes expects the caller's transaction (store_begin) and leaves it
 * open. Strings are bound as given, except paths, which are stored as their
 * text form (utf8.h). Nothing here knows what a layer or a state holds:
 * states are opaque byte strings. */
#ifndef PROBE_RUNS_H
#define PROBE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef enum { RUN_RUNNING, RUN_INTERRUPTED, RUN_COMPLETE } RunStatus;

/* "running", "interrupted", "complete": the runs.status values. */
const char *run_status_name(RunStatus st);

/* What makes two recordings the same run. */
typedef struct {
    uint64_t model_checksum, corpus_checksum;
    const char *options; /* JSON text: split, ctx, top_k, examples, layers, full, bos */
} RunKey;

/* Everything a new run row holds (schema/010_runs.sql for each column). */
typedef struct {
    RunKey key;
    const char *model_dir, *model_config; /* model_config: JSON text */
    const char *corpus_path;
    const char *layers, *full_layers;     /* JSON arrays */
    int n_layer, n_inner, ctx, top_k, n_examples, bos, n_docs;
    int64_t corpus_bytes;
    const char *blas; /* OpenBLAS's kernels (runs.blas, schema/130_run_blas.sql); NULL unknown */
} RunSpec;

/* A run as found. */
typedef struct {
    int64_t id;
    RunStatus status;
    int docs_done;      /* documents committed */
    int64_t n_tokens;   /* tokens committed */
    double seconds;     /* recording time of all sessions so far */
    long long pid;      /* the process that recorded it last (0: none) */
    int64_t updated;    /* when it last committed (started, if never), Unix seconds; 0 unknown */
    char options[2048]; /* its options JSON (truncated beyond 2047 bytes) */
    char blas[256];     /* runs.blas, "" when unknown */
} RunInfo;

/* The run of this key: the complete one when there is one, else the newest.
 * 1 and *out filled when found, 0 when none, -1 on error. */
int runs_find(Store *s, const RunKey *key, RunInfo *out, char *err);

/* The newest unfinished run of the same model and corpus whose options
 * differ from key->options (to explain why --resume finds nothing).
 * 1 / 0 / -1 as runs_find. */
int runs_find_other_options(Store *s, const RunKey *key, RunInfo *out, char *err);

/* Inserts a 'running' run recorded by process pid; *id is its id. */
int runs_create(Store *s, const RunSpec *spec, long long pid, int64_t *id, char *err);

/* Adds core to run id's list of OpenBLAS kernels (runs.blas) unless it is
 * there; a run whose kernels are unknown (NULL) stays unknown. *added = 1
 * when it was not there. */
int runs_add_blas(Store *s, int64_t id, const char *core, int *added, char *err);

/* Reopens run `id` for resuming by process pid: status 'running', and
 * everything after its first docs_done documents deleted (documents, their
 * tokens, top-k and full vectors), with its neuron results
 * (results_clear_neurons: they are rewritten when it stops). Its saved state
 * stays. */
int runs_reopen(Store *s, int64_t id, int docs_done, long long pid, char *err);

/* Progress of a run at a commit. */
typedef struct {
    RunStatus status;
    int docs_done;
    int64_t n_tokens;
    double seconds; /* over all sessions; tokens_per_sec = n_tokens / seconds when > 0 */
} RunProgress;

/* Updates the run's status, progress and timestamps (finished_at when
 * complete). */
int runs_progress(Store *s, int64_t id, const RunProgress *p, char *err);

/* Saves (replaces) the state of one recorded layer. */
int runs_state_save(Store *s, int64_t id, int layer, const void *state, size_t len, char *err);

/* Calls fn for every saved layer state of the run (in no particular order;
 * layer as stored, untrusted); stops at the first fn that fails and returns
 * its -1. The bytes are valid only during the call. */
typedef int (*RunStateFn)(void *user, int layer, const void *state, size_t len, char *err);
int runs_state_load(Store *s, int64_t id, RunStateFn fn, void *user, char *err);

/* Deletes the run's saved states (a complete run needs none). */
int runs_state_clear(Store *s, int64_t id, char *err);

#endif
