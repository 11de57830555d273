/* check_record.c — `probe record` and `probe top-neurons` end to end.
 *
 * Reference values: tests/fixtures/record/expected.json from
 * scripts/reference/record_reference.py (float64 forward, own tokenizer and
 * windowing) for tests/fixtures/record/corpus.txt on
 * tests/fixtures/models/tiny-f32, recorded with --ctx 16 --examples 8
 * --top-k 4 --full 1. */
#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "parallel.h"
#include "testutil.h"
#include "utf8.h"
#include "util.h"

#define TOL 1e-4
#define REF_OPTS "--ctx 16 --examples 8 --top-k 4 --full 1"

static char tmpdir[256];
static const char *root; /* the repository (repo_root) */
static char out[1 << 16];

static void setup(void) {
    root = repo_root();
    tmpdir_make(tmpdir, sizeof tmpdir, "check_record");
    chmod(tmpdir, 0755);
}

static void teardown(void) { tmpdir_remove(tmpdir); }

/* Runs `ENV probe record ARGS` (model tiny-f32); output in `out`. */
static int record(const char *env, const char *args) {
    return run_cmdf(out, sizeof out, "%s '%s' record --model '%s/tests/fixtures/models/tiny-f32' %s", env ? env : "",
                    probe_bin(), root, args);
}

static int record_ref(const char *db, const char *env) {
    char args[2048];
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS, root, db);
    return record(env, args);
}

/* A ranked list (examples of a neuron, top-k of a token) matches the
 * reference: same length, values within tol, and the same item at each rank
 * unless the reference has a near tie there (values within tol). */
static void check_ranked(const char *what, int n, const long long *got_item, const double *got_val,
                         const cJSON *ref, double scale) {
    ck_assert_msg(cJSON_GetArraySize(ref) == n, "%s: %d entries, reference %d", what, n, cJSON_GetArraySize(ref));
    double tol = TOL * scale;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(ref, i);
        long long item = (long long)cJSON_GetArrayItem(e, 0)->valuedouble;
        double v = cJSON_GetArrayItem(e, 1)->valuedouble;
        ck_assert_msg(fabs(got_val[i] - v) <= tol, "%s rank %d: value %.9g, reference %.9g", what, i + 1,
                      got_val[i], v);
        if (got_item[i] != item) {
            int tie = 0;
            for (int k = 0; k < cJSON_GetArraySize(ref); k++) {
                const cJSON *o = cJSON_GetArrayItem(ref, k);
                if ((long long)cJSON_GetArrayItem(o, 0)->valuedouble == got_item[i] &&
                    fabs(cJSON_GetArrayItem(o, 1)->valuedouble - v) <= tol)
                    tie = 1;
            }
            ck_assert_msg(tie, "%s rank %d: item %lld, reference %lld", what, i + 1, got_item[i], item);
        }
    }
}

START_TEST(test_reference) {
    const char *db = path_in(tmpdir, "ref.db");
    ck_assert_msg(record_ref(db, NULL) == 0, "%s", out);
    ck_assert_msg(strstr(out, "complete: 5 documents, 108 tokens"), "%s", out);
    cJSON *ref = json_load(path_in(root, "tests/fixtures/record/expected.json"));
    sqlite3 *h = sql_open(db);
    sqlite3_stmt *st;

    /* tokens: document, position, id, byte span; token text = the text form
     * (utf8.h) of the span's exact bytes */
    const cJSON *toks = cJSON_GetObjectItem(ref, "tokens");
    int nt = cJSON_GetArraySize(toks);
    ck_assert_int_eq(nt, 108);
    long long *rows = malloc(sizeof *rows * (size_t)nt);
    ck_assert_int_eq(sqlite3_prepare_v2(h,
                                        "SELECT t.id, d.doc_index, t.pos, t.token_id, t.byte_start, t.byte_end, "
                                        "substr(d.text_bytes, t.byte_start + 1, t.byte_end - t.byte_start), "
                                        "t.token FROM tokens t JOIN documents d "
                                        "ON d.id = t.doc_id ORDER BY t.id", -1, &st, NULL), SQLITE_OK);
    int i = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ck_assert_int_lt(i, nt);
        const cJSON *e = cJSON_GetArrayItem(toks, i);
        rows[i] = sqlite3_column_int64(st, 0);
        for (int c = 0; c < 5; c++)
            ck_assert_msg(sqlite3_column_int64(st, c + 1) == (long long)cJSON_GetArrayItem(e, c)->valuedouble,
                          "token %d column %d: %lld, reference %g", i, c, sqlite3_column_int64(st, c + 1),
                          cJSON_GetArrayItem(e, c)->valuedouble);
        char text[256];
        int nb = sqlite3_column_bytes(st, 6);
        ck_assert_int_lt(nb, 64);
        utf8_text(sqlite3_column_blob(st, 6), (size_t)nb, text);
        ck_assert_str_eq((const char *)sqlite3_column_text(st, 7), text);
        i++;
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(i, nt);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM documents"), 5);
    ck_assert_int_eq(sql_int(h, "SELECT n_tokens FROM runs WHERE id = 1"), 108);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM run_state"), 0);

    const cJSON *layers = cJSON_GetObjectItem(ref, "layers");
    for (int li = 0; li < cJSON_GetArraySize(layers); li++) {
        const cJSON *L = cJSON_GetArrayItem(layers, li);
        int layer = (int)cJSON_GetObjectItem(L, "layer")->valuedouble;
        int F = cJSON_GetArraySize(cJSON_GetObjectItem(L, "mean"));
        ck_assert_int_eq(F, 128);
        /* statistics */
        static const char *cols[] = {"mean", "variance", "min", "max", "frac_pos"};
        double got[5][128], want[5][128];
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT mean, variance, min, max, frac_pos, count FROM neuron_stats "
                                  "WHERE run_id = 1 AND layer = %d ORDER BY neuron", layer);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        int j = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < 5; c++) {
                got[c][j] = sqlite3_column_double(st, c);
                want[c][j] = cJSON_GetArrayItem(cJSON_GetObjectItem(L, cols[c]), j)->valuedouble;
            }
            ck_assert_int_eq(sqlite3_column_int(st, 5), nt);
            j++;
        }
        sqlite3_finalize(st);
        ck_assert_int_eq(j, F);
        for (int c = 0; c < 5; c++) {
            double e = max_rel_err_d(got[c], want[c], (size_t)F);
            ck_assert_msg(e <= TOL, "layer %d %s: max rel err %.3g > %.0e", layer, cols[c], e, TOL);
        }
        double scale = 0;
        for (j = 0; j < F; j++) scale = fmax(scale, fabs(want[3][j]));
        /* top examples per neuron */
        snprintf(sql, sizeof sql, "SELECT rank, token_row, value FROM neuron_examples WHERE run_id = 1 AND "
                                  "layer = %d AND neuron = ? ORDER BY rank", layer);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        for (j = 0; j < F; j++) {
            long long item[8];
            double val[8];
            int n = 0;
            sqlite3_bind_int(st, 1, j);
            while (sqlite3_step(st) == SQLITE_ROW) {
                ck_assert_int_lt(n, 8);
                ck_assert_int_eq(sqlite3_column_int(st, 0), n + 1);
                long long row = sqlite3_column_int64(st, 1);
                item[n] = -1;
                for (int t = 0; t < nt; t++)
                    if (rows[t] == row) item[n] = t;
                val[n++] = sqlite3_column_double(st, 2);
            }
            sqlite3_reset(st);
            char what[64];
            snprintf(what, sizeof what, "examples of %d:%d", layer, j);
            check_ranked(what, n, item, val, cJSON_GetArrayItem(cJSON_GetObjectItem(L, "examples"), j), scale);
        }
        sqlite3_finalize(st);
        /* per token top-k, from the BLOB and through the view */
        snprintf(sql, sizeof sql, "SELECT token_row, top FROM token_topk WHERE layer = %d ORDER BY token_row", layer);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        int t = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            ck_assert_int_eq(sqlite3_column_int64(st, 0), rows[t]);
            ck_assert_int_eq(sqlite3_column_bytes(st, 1), 4 * 6);
            const unsigned char *b = sqlite3_column_blob(st, 1);
            long long item[4];
            double val[4];
            for (int k = 0; k < 4; k++) {
                uint16_t nn;
                float v;
                memcpy(&nn, b + 6 * k, 2);
                memcpy(&v, b + 6 * k + 2, 4);
                item[k] = nn;
                val[k] = v;
            }
            char what[64];
            snprintf(what, sizeof what, "top-k of token %d layer %d", t, layer);
            check_ranked(what, 4, item, val, cJSON_GetArrayItem(cJSON_GetObjectItem(L, "topk"), t), scale);
            t++;
        }
        sqlite3_finalize(st);
        ck_assert_int_eq(t, nt);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM token_top_neurons WHERE layer = %d", layer);
        ck_assert_int_eq(sql_int(h, sql), nt * 4);
        /* the view decodes the same neurons and values as the blob */
        int nv = 0;
        snprintf(sql, sizeof sql,
                 "SELECT rank, neuron, value, (SELECT top FROM token_topk WHERE token_row = v.token_row "
                 "AND layer = v.layer) FROM token_top_neurons v WHERE layer = %d", layer);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int rk = sqlite3_column_int(st, 0);
            const unsigned char *b = sqlite3_column_blob(st, 3);
            uint16_t nn;
            float v;
            memcpy(&nn, b + 6 * (rk - 1), 2);
            memcpy(&v, b + 6 * (rk - 1) + 2, 4);
            ck_assert_int_eq(sqlite3_column_int(st, 1), nn);
            ck_assert_msg(sqlite3_column_double(st, 2) == (double)v, "view value %.9g, blob %.9g",
                          sqlite3_column_double(st, 2), (double)v);
            nv++;
        }
        sqlite3_finalize(st);
        ck_assert_int_eq(nv, nt * 4);
        /* full fp16 vectors, layer 1 only */
        const cJSON *full = cJSON_GetObjectItem(L, "full");
        snprintf(sql, sizeof sql, "SELECT count(*) FROM token_full WHERE layer = %d", layer);
        ck_assert_int_eq(sql_int(h, sql), full ? nt : 0);
        if (full) {
            snprintf(sql, sizeof sql, "SELECT vec FROM token_full WHERE layer = %d ORDER BY token_row", layer);
            ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
            t = 0;
            double worst = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                ck_assert_int_eq(sqlite3_column_bytes(st, 0), F * 2);
                const unsigned char *b = sqlite3_column_blob(st, 0);
                const cJSON *rr = cJSON_GetArrayItem(full, t);
                for (j = 0; j < F; j++) {
                    uint16_t hv;
                    memcpy(&hv, b + 2 * j, 2);
                    double r = cJSON_GetArrayItem(rr, j)->valuedouble, g = f16_reference(hv);
                    /* fp16 rounding (half an ulp: 2^-11 relative, 2^-25 absolute for
                     * subnormals) plus the float32 tolerance */
                    double allowed = fabs(r) * 0.00049 + 3e-8 + TOL * scale;
                    double d = fabs(g - r);
                    if (d / allowed > worst) worst = d / allowed;
                    ck_assert_msg(d <= allowed, "full %d token %d neuron %d: %.6g vs %.6g", layer, t, j, g, r);
                }
                t++;
            }
            sqlite3_finalize(st);
            ck_assert_int_eq(t, nt);
        }
    }
    /* views: one SELECT for "what makes neuron 1:5 fire" */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM neuron_top_examples e JOIN token_context c USING (token_row) "
                                "WHERE e.layer = 1 AND e.neuron = 5 "
                                "AND instr(e.context, '[[' || c.token_text || ']]') > 0"),
                     8);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM neurons WHERE hook = 'blocks.1.mlp.hook_post'"), 128);
    sqlite3_close(h);
    free(rows);
    cJSON_Delete(ref);
}
END_TEST

/* ---- resume -------------------------------------------------------------- */

/* Hash of everything a run recorded (ids and all values, bit for bit). */
static uint64_t db_digest(const char *path) {
    static const char *qs[] = {
        "SELECT status, n_docs, docs_done, n_tokens, options, corpus_checksum FROM runs ORDER BY id",
        "SELECT run_id, doc_index, byte_offset, n_tokens, text FROM documents ORDER BY id",
        "SELECT * FROM tokens ORDER BY id",
        "SELECT * FROM neuron_stats ORDER BY run_id, layer, neuron",
        "SELECT * FROM neuron_examples ORDER BY run_id, layer, neuron, rank",
        "SELECT * FROM token_topk ORDER BY token_row, layer",
        "SELECT * FROM token_full ORDER BY token_row, layer",
        "SELECT count(*) FROM run_state",
    };
    sqlite3 *db = sql_open(path);
    uint64_t h = PROBE_HASH_SEED;
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(db, qs[q], -1, &st, NULL), SQLITE_OK);
        long rows = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            rows++;
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                int type = sqlite3_column_type(st, c);
                if (type == SQLITE_FLOAT) {
                    double v = sqlite3_column_double(st, c);
                    h = hash64(&v, sizeof v, h);
                } else if (type == SQLITE_INTEGER) {
                    long long v = sqlite3_column_int64(st, c);
                    h = hash64(&v, sizeof v, h);
                } else {
                    const void *b = sqlite3_column_blob(st, c);
                    h = hash64(b ? b : "", (size_t)sqlite3_column_bytes(st, c), h);
                }
                h = hash64(&type, sizeof type, h);
            }
        }
        h = hash64(&rows, sizeof rows, h);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return h;
}

START_TEST(test_resume_after_kill) {
    const char *a = path_in(tmpdir, "a.db"), *b = path_in(tmpdir, "b.db");
    ck_assert_msg(record_ref(a, "PROBE_RECORD_BATCH_DOCS=1") == 0, "%s", out);
    /* killed (SIGKILL) right after the commit of document 2 of 5 */
    int rc = record_ref(b, "PROBE_RECORD_BATCH_DOCS=1 PROBE_RECORD_CRASH_AFTER_DOCS=2");
    ck_assert_msg(rc != 0, "the simulated crash did not happen: %s", out);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM runs WHERE status = 'running' AND docs_done = 2"), 1);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM documents"), 2);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM neuron_stats"), 0);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM run_state"), 2);
    /* without --resume: refused, nothing added */
    ck_assert_int_eq(record_ref(b, NULL), 1);
    ck_assert_msg(strstr(out, "unfinished run 1") && strstr(out, "--resume"), "%s", out);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM documents"), 2);
    /* a run whose progress was edited by hand (beyond the corpus, or
     * negative) is refused, not resumed from documents that do not exist */
    char args[2048];
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume", root, b);
    static const char *edits[] = {"UPDATE runs SET docs_done = -3", "UPDATE runs SET docs_done = 500"};
    for (int i = 0; i < 2; i++) {
        sqlite3 *h = sql_open(b);
        ck_assert_int_eq(sqlite3_exec(h, edits[i], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
        ck_assert_int_eq(record(NULL, args), 1);
        ck_assert_msg(strstr(out, "edited by hand or damaged"), "%s", out);
    }
    sqlite3 *h = sql_open(b);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET docs_done = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    /* --resume with other options: refused */
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --ctx 16 --resume", root, b);
    ck_assert_int_eq(record(NULL, args), 1);
    ck_assert_msg(strstr(out, "other options"), "%s", out);
    /* --resume: the same database as an uninterrupted run */
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume", root, b);
    ck_assert_msg(record("PROBE_RECORD_BATCH_DOCS=1", args) == 0, "%s", out);
    ck_assert_msg(db_digest(a) == db_digest(b), "resumed database differs from an uninterrupted run");
    /* recording again: a no-op */
    ck_assert_int_eq(record_ref(b, NULL), 0);
    ck_assert_msg(strstr(out, "already holds complete run 1") && strstr(out, "nothing recorded"), "%s", out);
    ck_assert_msg(db_digest(a) == db_digest(b), "a second recording changed the database");
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume", root, b);
    ck_assert_int_eq(record(NULL, args), 0); /* --resume of a complete run: also a no-op */
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM runs"), 1);
}
END_TEST

/* runs.blas holds the OpenBLAS kernels a run was recorded with; a run
 * resumed on other kernels lists both and says so (its bits are no longer
 * one session's). Other kernels are simulated by editing the stored name. */
START_TEST(test_run_kernels) {
    const char *c = path_in(tmpdir, "kernels.db");
    char got[256], want[256];
    int rc = record_ref(c, "PROBE_RECORD_BATCH_DOCS=1 PROBE_RECORD_CRASH_AFTER_DOCS=2");
    ck_assert_msg(rc != 0, "the simulated crash did not happen: %s", out);
    sqlite3 *h = sql_open(c);
    ck_assert_str_eq(sql_bytes(h, "SELECT blas FROM runs", got, sizeof got, NULL), parallel_blas_core());
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET blas = 'OtherCore'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    char args[2048];
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume", root, c);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    ck_assert_msg(strstr(out, "warning: run 1 was recorded with OpenBLAS's OtherCore kernels and continues with") &&
                      strstr(out, "OPENBLAS_CORETYPE=OtherCore"),
                  "%s", out);
    snprintf(want, sizeof want, "OtherCore,%s", parallel_blas_core());
    h = sql_open(c);
    ck_assert_str_eq(sql_bytes(h, "SELECT blas FROM runs", got, sizeof got, NULL), want);
    sqlite3_close(h);
}
END_TEST

/* The compute team splits the forward pass and the recorder (parallel.h);
 * the database must not depend on its size, to the bit. On the odd-f16
 * model (no dimension aligned with a kernel tile: C = 24, F = 72) and 180
 * paragraphs of held-out text cut into windows of up to 200 tokens (every
 * window length from 2 to 200 occurs), with 1 to 4 threads; also a resume
 * with another team size than the interrupted run. */
static int record_odd(const char *db, const char *env, const char *extra) {
    return run_cmdf(out, sizeof out,
                    "%s '%s' record --model '%s/tests/fixtures/models/odd-f16' '%s/examples/heldout_mobydick.txt' "
                    "--db '%s' --ctx 200 --examples 8 --top-k 5 --full 0,1 --quiet %s",
                    env, probe_bin(), root, root, db, extra);
}

/* Crash torture: `probe record` killed with SIGKILL at seeded random
 * moments (PROBE_TORTURE_SEED, default 1; the seed and delays are printed),
 * then resumed (or started again when nothing was committed): every time
 * the database equals an uninterrupted recording's. */
START_TEST(test_kill_torture) {
    const char *ref = path_in(tmpdir, "ref.db");
    double t0 = now_sec();
    ck_assert_msg(record_odd(ref, "PROBE_RECORD_BATCH_DOCS=4", "") == 0, "%s", out);
    double dur = now_sec() - t0;
    uint64_t want = db_digest(ref);
    const char *env_seed = getenv("PROBE_TORTURE_SEED");
    unsigned seed = env_seed && *env_seed ? (unsigned)strtoul(env_seed, NULL, 10) : 1u, state = seed;
    fprintf(stderr, "check_record: kill torture, seed %u, uninterrupted run %.2f s; kills at", seed, dur);
    for (int k = 0; k < 6; k++) {
        char db[600], env[160];
        snprintf(db, sizeof db, "%s/kill%d.db", tmpdir, k);
        double delay = 0.01 + dur * (double)(rand_r(&state) % 1000) / 1000.0;
        fprintf(stderr, " %.3f", delay);
        snprintf(env, sizeof env, "timeout -s KILL %.3f env PROBE_RECORD_BATCH_DOCS=4", delay);
        record_odd(db, env, ""); /* killed, or finished first */
        for (int tries = 0; tries < 3; tries++) {
            if (record_odd(db, "PROBE_RECORD_BATCH_DOCS=4", "--resume") == 0) break;
            /* nothing committed before the kill: there is no run to resume */
            if (record_odd(db, "PROBE_RECORD_BATCH_DOCS=4", "") == 0) break;
        }
        ck_assert_msg(db_digest(db) == want, "killed at %.3f s (seed %u): the resumed database differs: %s", delay,
                      seed, out);
    }
    fprintf(stderr, " s: every resumed database equals the uninterrupted one\n");
}
END_TEST

/* Disk full, as a file-size limit (ulimit -f; the kernel's EFBIG is what a
 * full disk's ENOSPC looks like to SQLite): record stops with one line
 * naming the database and the cause, the database stays intact at its
 * last commit, and --resume without the limit gives the uninterrupted
 * database. */
START_TEST(test_disk_full) {
    const char *ref = path_in(tmpdir, "ref.db"), *db = path_in(tmpdir, "full.db");
    ck_assert_msg(record_odd(ref, "PROBE_RECORD_BATCH_DOCS=4", "") == 0, "%s", out);
    /* 2,000 KiB: the schema and a few batches fit, the whole run (~8 MB) not */
    int rc = record_odd(db, "bash -c 'ulimit -f 2000; exec \"$0\" \"$@\"' env PROBE_RECORD_BATCH_DOCS=4", "");
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "full.db") && strstr(out, "file size limit reached"), "%s", out);
    ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM runs WHERE docs_done > 0 AND docs_done < n_docs"), 1);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
    ck_assert_msg(record_odd(db, "PROBE_RECORD_BATCH_DOCS=4", "--resume") == 0, "%s", out);
    ck_assert_msg(db_digest(db) == db_digest(ref), "resumed after disk full: differs from an uninterrupted run");
}
END_TEST

START_TEST(test_thread_counts_agree) {
    const char *a = path_in(tmpdir, "a.db"), *c = path_in(tmpdir, "c.db");
    ck_assert_msg(record_odd(a, "PROBE_THREADS=1", "") == 0, "%s", out);
    ck_assert_int_eq(sql_int_at(a, "SELECT n_tokens FROM runs"), 23876);
    uint64_t h1 = db_digest(a);
    for (int nt = 2; nt <= 4; nt++) {
        char env[64];
        const char *b = path_in(tmpdir, "b.db");
        snprintf(env, sizeof env, "PROBE_THREADS=%d", nt);
        ck_assert_msg(record_odd(b, env, "") == 0, "%s", out);
        ck_assert_msg(db_digest(b) == h1, "1 and %d compute threads recorded different databases", nt);
        ck_assert_int_eq(unlink(b), 0);
    }
    ck_assert(record_odd(c, "PROBE_THREADS=3 PROBE_RECORD_BATCH_DOCS=7 PROBE_RECORD_CRASH_AFTER_DOCS=70", "") != 0);
    ck_assert_msg(record_odd(c, "PROBE_THREADS=2 PROBE_RECORD_BATCH_DOCS=7", "--resume") == 0, "%s", out);
    ck_assert_msg(db_digest(c) == h1, "resumed with 2 threads: differs");
    /* the digest sees the activations: another model gives another database */
    ck_assert_msg(record_ref(path_in(tmpdir, "r.db"), "PROBE_THREADS=1") == 0, "%s", out);
    ck_assert(db_digest(path_in(tmpdir, "r.db")) != h1);
    /* a bad PROBE_THREADS is a usage error naming the variable */
    ck_assert_int_eq(record_ref(path_in(tmpdir, "d.db"), "PROBE_THREADS=zero"), 2);
    ck_assert_msg(strstr(out, "PROBE_THREADS=zero"), "%s", out);
}
END_TEST

/* A real SIGINT in the middle of a run: 'interrupted', statistics of the
 * committed documents, and --resume completes it exactly. */
START_TEST(test_sigint) {
    const char *corpus = path_in(tmpdir, "lines.txt"), *a = path_in(tmpdir, "a.db"), *b = path_in(tmpdir, "b.db");
    FILE *f = fopen(corpus, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "Line %d: the quick brown fox %s over the lazy dog %d times.\n", i,
                i % 3 ? "jumps" : "jumped", i * 7 % 13);
    fclose(f);
    const char *model = path_in(root, "tests/fixtures/models/tiny-f32");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        setenv("PROBE_RECORD_BATCH_DOCS", "1", 1);
        execl(probe_bin(), "probe", "record", corpus, "--split", "line", "--db", b, "--model", model,
              "--examples", "4", "--top-k", "2", (char *)NULL);
        _exit(127);
    }
    /* wait until some documents are committed */
    long long done = 0;
    for (int tries = 0; tries < 3000 && done < 20; tries++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        sqlite3 *db = NULL;
        if (path_exists(b) && sqlite3_open_v2(b, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(db, "SELECT docs_done FROM runs", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                done = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
    }
    ck_assert_int_ge(done, 20);
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d", status);
    long long docs = sql_int_at(b, "SELECT docs_done FROM runs WHERE status = 'interrupted'");
    ck_assert_int_ge(docs, 20);
    ck_assert_int_lt(docs, 3000);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM documents"), docs);
    /* statistics of what was committed */
    ck_assert_int_eq(sql_int_at(b, "SELECT count(DISTINCT count) FROM neuron_stats"), 1);
    ck_assert_int_eq(sql_int_at(b, "SELECT min(count) = (SELECT n_tokens FROM runs) FROM neuron_stats"), 1);
    ck_assert_int_eq(sql_int_at(b, "SELECT count(*) FROM tokens"), sql_int_at(b, "SELECT n_tokens FROM runs"));

    char args[2048];
    snprintf(args, sizeof args, "'%s' --split line --db '%s' --examples 4 --top-k 2 --resume", corpus, b);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    snprintf(args, sizeof args, "'%s' --split line --db '%s' --examples 4 --top-k 2", corpus, a);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    ck_assert_msg(db_digest(a) == db_digest(b), "database after SIGINT + --resume differs from an uninterrupted run");
}
END_TEST

/* Every PROBE_* variable record reads is validated alike: a bad value is a
 * usage error naming the variable, before anything is written; an empty
 * one means unset. */
START_TEST(test_bad_env) {
    static const char *bad[] = {
        "PROBE_RECORD_BATCH_DOCS=abc",       "PROBE_RECORD_BATCH_DOCS=0",
        "PROBE_RECORD_BATCH_DOCS=12x",       "PROBE_RECORD_CRASH_AFTER_DOCS=-1",
        "PROBE_RECORD_CRASH_AFTER_DOCS=two", "PROBE_BUSY_TIMEOUT_MS=soon",
        "PROBE_BUSY_TIMEOUT_MS=-5",          "PROBE_BUSY_TIMEOUT_MS=99999999",
    };
    const char *db = path_in(tmpdir, "env.db");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(record_ref(db, bad[i]) == 2, "%s: %s", bad[i], out);
        ck_assert_msg(strstr(out, bad[i]) && strstr(out, "expected an integer in"), "%s: %s", bad[i], out);
        ck_assert_msg(strncmp(out, "probe record: ", 14) == 0, "%s", out);
        ck_assert(!path_exists(db));
    }
    ck_assert_msg(record_ref(db, "PROBE_RECORD_BATCH_DOCS= PROBE_BUSY_TIMEOUT_MS=") == 0, "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM runs WHERE status = 'complete'"), 1);
}
END_TEST

/* neuron_topk_counts (070) holds what aggregating the view token_top_neurons
 * gives, and a database of schema version 6 gets it when it is migrated. */
static const char *topk_agg =
    "SELECT count(*) FROM (SELECT run_id, layer, neuron, count(*) AS n, sum(rank = 1) AS f, max(value) AS m,"
    " avg(value) AS a FROM token_top_neurons GROUP BY run_id, layer, neuron) v"
    " JOIN neuron_topk_counts c USING (run_id, layer, neuron)"
    " WHERE c.n_top = v.n AND c.n_first = v.f AND c.max_value = v.m AND abs(c.mean_value - v.a) <= 1e-12 * abs(v.a)";

START_TEST(test_summaries) {
    const char *db = path_in(tmpdir, "sum.db");
    ck_assert_msg(record_ref(db, NULL) == 0, "%s", out);
    long long groups = sql_int_at(db, "SELECT count(*) FROM (SELECT DISTINCT layer, neuron FROM token_top_neurons)");
    ck_assert_int_gt(groups, 10);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM neuron_topk_counts"), groups);
    ck_assert_int_eq(sql_int_at(db, topk_agg), groups);
    ck_assert_int_eq(sql_int_at(db, "SELECT sum(n_top) FROM neuron_topk_counts"), 108 * 2 * 4);
    /* back to version 6: no summaries (and no runs.blas, from 13); the next
     * write-open rebuilds them */
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sqlite3_exec(h, "DROP TABLE neuron_topk_counts; ALTER TABLE runs DROP COLUMN blas;"
                                     " PRAGMA user_version = 6", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_msg(record_ref(db, NULL) == 0, "%s", out);
    ck_assert_msg(strstr(out, "nothing recorded"), "%s", out);
    ck_assert_int_eq(sql_int_at(db, "PRAGMA user_version"), 13);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM neuron_topk_counts"), groups);
    ck_assert_int_eq(sql_int_at(db, topk_agg), groups);
}
END_TEST

/* ---- bad input ------------------------------------------------------------ */

START_TEST(test_bad_input) {
    const char *db = path_in(tmpdir, "bad.db");
    char args[2048];
    /* empty corpus: nothing created */
    file_write(path_in(tmpdir, "empty.txt"), " \n\n", 3);
    snprintf(args, sizeof args, "'%s' --db '%s'", path_in(tmpdir, "empty.txt"), db);
    ck_assert_int_eq(record(NULL, args), 1);
    ck_assert_msg(strstr(out, "empty.txt' is empty"), "%s", out);
    ck_assert(!path_exists(db));
    /* a 100 MB single line: refused before anything is written */
    size_t big = (size_t)100 << 20;
    char *data = malloc(big);
    ck_assert_ptr_nonnull(data);
    memset(data, 'a', big);
    file_write(path_in(tmpdir, "big.txt"), data, big);
    free(data);
    snprintf(args, sizeof args, "'%s' --db '%s'", path_in(tmpdir, "big.txt"), db);
    ck_assert_int_eq(record(NULL, args), 1);
    ck_assert_msg(strstr(out, "big.txt'") && strstr(out, "above the limit"), "%s", out);
    ck_assert(!path_exists(db));
    unlink(path_in(tmpdir, "big.txt"));
    /* usage errors: out-of-range layer, unknown option, --full outside --layers, --ctx too big */
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --layers 0,5", root, db);
    ck_assert_int_eq(record(NULL, args), 2);
    ck_assert_msg(strstr(out, "out of range"), "%s", out);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --frobnicate", root, db);
    ck_assert_int_eq(record(NULL, args), 2);
    ck_assert_msg(strstr(out, "--frobnicate"), "%s", out);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --layers 0 --full 1", root, db);
    ck_assert_int_eq(record(NULL, args), 2);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --ctx 65", root, db);
    ck_assert_int_eq(record(NULL, args), 2);
    ck_assert(!path_exists(db));
    /* non-UTF-8 corpus: recorded as bytes, with a warning */
    file_write(path_in(tmpdir, "bytes.txt"), "caf\xe9 \xff\xfe ok\n", 11);
    snprintf(args, sizeof args, "'%s' --db '%s'", path_in(tmpdir, "bytes.txt"), db);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    ck_assert_msg(strstr(out, "not valid UTF-8"), "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT text_bytes = x'636166e920fffe206f6b' AND text = 'caf' || char(65533) "
                                    "|| ' ' || char(65533, 65533) || ' ok' FROM documents"), 1);
    ck_assert_int_eq(sql_int_at(db, "SELECT sum(byte_end - byte_start) FROM tokens"), 10);
    /* not a probe database: a text file, another application's SQLite file */
    file_write(path_in(tmpdir, "notes.db"), "hello, not a database\n", 22);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s'", root, path_in(tmpdir, "notes.db"));
    ck_assert_int_eq(record(NULL, args), 1);
    ck_assert_msg(strstr(out, "notes.db' is not a probe database"), "%s", out);
    struct stat sb;
    ck_assert_int_eq(stat(path_in(tmpdir, "notes.db"), &sb), 0);
    ck_assert_int_eq(sb.st_size, 22);
    sqlite3 *other = NULL;
    ck_assert_int_eq(sqlite3_open(path_in(tmpdir, "other.db"), &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s'", root, path_in(tmpdir, "other.db"));
    ck_assert_int_eq(record(NULL, args), 1);
    ck_assert_msg(strstr(out, "another application"), "%s", out);
    ck_assert_int_eq(sql_int_at(path_in(tmpdir, "other.db"), "SELECT count(*) FROM sqlite_master"), 1);
    /* locked: another connection holds the write lock */
    sqlite3 *lock = sql_open(db);
    long long runs = sql_int(lock, "SELECT count(*) FROM runs");
    ck_assert_int_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s'", root, db);
    ck_assert_int_eq(record("PROBE_BUSY_TIMEOUT_MS=100", args), 1);
    ck_assert_msg(strstr(out, "is locked"), "%s", out);
    ck_assert_int_eq(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sql_int(lock, "SELECT count(*) FROM runs"), runs);
    sqlite3_close(lock);
    /* read-only. Root ignores file permissions, so as root the command runs as
     * nobody (setpriv, util-linux) on copies in the world-readable tmpdir. */
    ck_assert_int_eq(chmod(db, 0444), 0);
    int as_root = geteuid() == 0, ran = 1;
    if (as_root) {
        ran = run_cmdf(out, sizeof out,
                       "cp '%s' '%s/probe' && cp -r '%s/tests/fixtures/models/tiny-f32' '%s/model' && "
                       "cp '%s/tests/fixtures/record/corpus.txt' '%s/corpus.txt' && chmod -R a+rX '%s' && "
                       "setpriv --reuid=65534 --regid=65534 --clear-groups '%s/probe' info --model '%s/model' "
                       ">/dev/null",
                       probe_bin(), tmpdir, root, tmpdir, root, tmpdir, tmpdir, tmpdir, tmpdir) == 0;
        if (!ran) fprintf(stderr, "check_record: read-only case skipped (cannot run as nobody): %s\n", out);
    }
    if (ran) {
        snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s'", root, db);
        int rc = as_root ? run_cmdf(out, sizeof out,
                                    "setpriv --reuid=65534 --regid=65534 --clear-groups '%s/probe' record "
                                    "--model '%s/model' '%s/corpus.txt' --db '%s'",
                                    tmpdir, tmpdir, tmpdir, db)
                         : record(NULL, args);
        ck_assert_int_eq(rc, 1);
        ck_assert_msg(strstr(out, "read-only") && strstr(out, "bad.db"), "%s", out);
        ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM runs"), runs);
        /* a reader needs no write access at all: top-neurons on a database in
         * a directory it cannot write (SQLite cannot create the WAL's -shm
         * there) */
        char rodir[512], rodb[600];
        snprintf(rodir, sizeof rodir, "%s/ro", tmpdir);
        snprintf(rodb, sizeof rodb, "%s/r.db", rodir);
        ck_assert_int_eq(mkdir(rodir, 0755), 0);
        snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --quiet", root, rodb);
        ck_assert_msg(record(NULL, args) == 0, "%s", out);
        ck_assert_int_eq(chmod(rodir, 0555), 0);
        rc = as_root ? run_cmdf(out, sizeof out,
                                "setpriv --reuid=65534 --regid=65534 --clear-groups '%s/probe' top-neurons --db '%s'",
                                tmpdir, rodb)
                     : run_probe(out, sizeof out, "top-neurons --db '%s'", rodb);
        ck_assert_int_eq(chmod(rodir, 0755), 0);
        ck_assert_msg(rc == 0 && strstr(out, "rank"), "exit %d: %s", rc, out);
    }
    /* top-neurons on bad input */
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --layer 2", db), 2);
    ck_assert_msg(strstr(out, "out of range 0..1"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s'", path_in(tmpdir, "notes.db")), 1);
    ck_assert_msg(strstr(out, "not a probe database"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s'", path_in(tmpdir, "missing.db")), 1);
    ck_assert(!path_exists(path_in(tmpdir, "missing.db")));
}
END_TEST


/* --no-bos, --layers, --split line: the same tokens as the reference (which
 * does not depend on the BOS for token ids), one layer's statistics only. */
START_TEST(test_options) {
    const char *db = path_in(tmpdir, "opt.db");
    char args[2048];
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --no-bos --layers 1 "
             "--split line --top-k 3 --examples 5 --quiet", root, db);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    cJSON *ref = json_load(path_in(root, "tests/fixtures/record/expected.json"));
    int nt = cJSON_GetArraySize(cJSON_GetObjectItem(ref, "tokens"));
    /* the third paragraph of the fixture has two lines: one more document, and
     * its newline token is gone; token ids do not depend on the BOS, so the
     * ids before that point equal the reference's */
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM documents"), 6);
    sqlite3 *h = sql_open(db);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT token_id FROM tokens ORDER BY id", -1, &st, NULL), SQLITE_OK);
    int i = 0, same = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "tokens"), i);
        if (e && sqlite3_column_int(st, 0) == (int)cJSON_GetArrayItem(e, 2)->valuedouble) same++;
        i++;
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(i, nt - 1);
    ck_assert_int_ge(same, nt / 3);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM neuron_stats WHERE layer = 1"), 128);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM neuron_stats WHERE layer = 0"), 0);
    ck_assert_int_eq(sql_int(h, "SELECT count(DISTINCT count) FROM neuron_stats"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT max(count) FROM neuron_stats"), i);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM token_topk WHERE layer = 1 AND length(top) = 18"), i);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM token_topk WHERE layer <> 1"), 0);
    ck_assert_int_eq(sql_int(h, "SELECT max(rank) FROM neuron_examples"), 5);
    ck_assert_int_eq(sql_int(h, "SELECT bos FROM runs"), 0);
    sqlite3_close(h);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --layer 0", db), 2);
    ck_assert_msg(strstr(out, "layer 0 was not recorded"), "%s", out);
    cJSON_Delete(ref);
}
END_TEST

/* ---- top-neurons ------------------------------------------------------------ */

/* Resume ownership survives PID reuse: a run whose recorder died is
 * resumable even when its pid now belongs to a live process, as long as
 * that process started after the run's last commit; a live process that
 * started before it is taken for the recorder (refused), unless --force. */
START_TEST(test_resume_pid_reused) {
    const char *a = path_in(tmpdir, "a.db"), *b = path_in(tmpdir, "b.db"), *c = path_in(tmpdir, "c.db");
    ck_assert_msg(record_ref(a, "PROBE_RECORD_BATCH_DOCS=1") == 0, "%s", out);
    char set[256], args[2048];
    for (int i = 0; i < 2; i++)
        ck_assert(record_ref(i ? c : b, "PROBE_RECORD_BATCH_DOCS=1 PROBE_RECORD_CRASH_AFTER_DOCS=2") != 0);
    /* this test process is alive and older than the runs' last commits */
    snprintf(set, sizeof set, "UPDATE runs SET pid = %lld", (long long)getpid());
    for (int i = 0; i < 2; i++) {
        sqlite3 *h = sql_open(i ? c : b);
        ck_assert_int_eq(sqlite3_exec(h, set, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
    }
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume", root, b);
    ck_assert_int_eq(record("PROBE_RECORD_BATCH_DOCS=1", args), 1);
    snprintf(set, sizeof set, "being recorded by process %lld", (long long)getpid());
    ck_assert_msg(strstr(out, set) && strstr(out, "--force"), "%s", out);
    /* the same pid, but the run's last commit long before that process
     * started: the pid was reused, the run resumes */
    sqlite3 *h = sql_open(b);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET updated_at = '2000-01-01T00:00:00Z'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_msg(record("PROBE_RECORD_BATCH_DOCS=1", args) == 0, "%s", out);
    ck_assert_msg(db_digest(a) == db_digest(b), "resumed database differs from an uninterrupted run");
    /* --force takes over a run whose recorder seems alive */
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' " REF_OPTS " --resume --force", root, c);
    ck_assert_msg(record("PROBE_RECORD_BATCH_DOCS=1", args) == 0, "%s", out);
    ck_assert_msg(db_digest(a) == db_digest(c), "forced resume differs from an uninterrupted run");
    /* --force alone is a usage error */
    snprintf(args, sizeof args, "'%s/tests/fixtures/record/corpus.txt' --db '%s' --force", root, c);
    ck_assert_int_eq(record(NULL, args), 2);
    ck_assert_msg(strstr(out, "--force only applies with --resume"), "%s", out);
}
END_TEST

/* Finite weights that overflow (two biases of 3e38 add to +Inf in the
 * residual, so layer 1's layer norm makes NaN): record stops with one line
 * naming the layer and neuron, before any commit; never a NOT NULL failure
 * at the end of the run (NaN binds as NULL). */
START_TEST(test_nonfinite_activations) {
    const char *model = path_in(tmpdir, "overflow"), *db = path_in(tmpdir, "ovf.db");
    ck_assert_int_eq(mkdir(model, 0755), 0);
    model_copy(path_in(root, "tests/fixtures/models/tiny-f32"), model);
    const float big = 3e38f;
    tensor_patch(model, "h.0.attn.c_proj.bias", 0, &big, 4);
    tensor_patch(model, "h.0.mlp.c_proj.bias", 0, &big, 4);
    int rc = run_cmdf(out, sizeof out, "'%s' record --model '%s' '%s/tests/fixtures/record/corpus.txt' --db '%s' --quiet",
                      probe_bin(), model, root, db);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "layer 1 neuron ") && strstr(out, "NaN or infinite activation"), "%s", out);
    ck_assert_msg(!strstr(out, "NOT NULL"), "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM neuron_stats"), 0);
    /* predict on the same model: an error, not "nan" with exit 0 */
    rc = run_probe(out, sizeof out, "predict --model '%s' 'one two'", model);
    ck_assert_msg(rc == 1 && strstr(out, "not finite") && !strstr(out, "nan"), "exit %d: %s", rc, out);
}
END_TEST

/* Corpus bytes never reach the terminal raw: control characters in the
 * table's contexts are escaped as \xNN (an ESC sequence could recolour or
 * retitle the user's terminal). */
START_TEST(test_top_neurons_escapes_controls) {
    const char *corpus = path_in(tmpdir, "esc.txt"), *db = path_in(tmpdir, "esc.db");
    const char *text = "the red \033[31mfox\033[0m jumps over the bell\a and the lazy dog\n";
    file_write(corpus, text, strlen(text));
    char args[1024];
    snprintf(args, sizeof args, "'%s' --db '%s' --quiet", corpus, db);
    ck_assert_msg(record(NULL, args) == 0, "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --limit 50", db), 0);
    ck_assert_msg(strchr(out, '\033') == NULL && strchr(out, '\a') == NULL, "raw control bytes: %s", out);
    ck_assert_msg(strstr(out, "\\x1b[31mfox") != NULL, "%s", out);
}
END_TEST

START_TEST(test_top_neurons) {
    const char *db = path_in(tmpdir, "ref.db");
    ck_assert_msg(record_ref(db, NULL) == 0, "%s", out);
    cJSON *ref = json_load(path_in(root, "tests/fixtures/record/expected.json"));
    const cJSON *L1 = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "layers"), 1);
    /* reference ranking by max in layer 1 */
    int best = 0;
    const cJSON *mx = cJSON_GetObjectItem(L1, "max");
    for (int j = 1; j < cJSON_GetArraySize(mx); j++)
        if (cJSON_GetArrayItem(mx, j)->valuedouble > cJSON_GetArrayItem(mx, best)->valuedouble) best = j;
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --layer 1 --limit 3 --json", db), 0);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    const cJSON *ns = cJSON_GetObjectItem(j, "neurons");
    ck_assert_int_eq(cJSON_GetArraySize(ns), 3);
    const cJSON *first = cJSON_GetArrayItem(ns, 0);
    ck_assert_int_eq((int)cJSON_GetObjectItem(first, "neuron")->valuedouble, best);
    ck_assert_str_eq(cJSON_GetObjectItem(first, "hook")->valuestring, "blocks.1.mlp.hook_post");
    double prev = INFINITY;
    for (int i = 0; i < 3; i++) {
        const cJSON *n = cJSON_GetArrayItem(ns, i);
        double m = cJSON_GetObjectItem(n, "max")->valuedouble;
        ck_assert(m <= prev);
        prev = m;
        const cJSON *ex = cJSON_GetObjectItem(n, "examples");
        ck_assert_int_eq(cJSON_GetArraySize(ex), 5);
        ck_assert_double_eq_tol(cJSON_GetObjectItem(cJSON_GetArrayItem(ex, 0), "value")->valuedouble, m, 1e-9);
    }
    cJSON_Delete(j);
    /* the table: 20 rows by mean over both layers, each with 5 context lines */
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --by mean", db), 0);
    int lines = 0, marks = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    for (char *p = out; (p = strstr(p, "[[")) != NULL; p++) marks++;
    ck_assert_int_eq(marks, 20 * 5);
    ck_assert_int_eq(lines, 3 + 20 * 6);
    ck_assert_msg(strstr(out, "ranked by mean"), "%s", out);
    cJSON_Delete(ref);
}
END_TEST

/* ---- the README's SQL cookbook ----------------------------------------------- */

START_TEST(test_cookbook) {
    const char *db = path_in(tmpdir, "ref.db");
    ck_assert_msg(record_ref(db, NULL) == 0, "%s", out);
    /* the concept queries read a stored ranking */
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --concept past_tense_verbs --quiet", db), 0);
    char *text = readme_section("cookbook"), *cursor = text, *q;
    sqlite3 *h = sql_open(db);
    int queries = 0;
    while ((q = sql_block_next(&cursor)) != NULL) {
        sqlite3_stmt *st;
        const char *tail;
        ck_assert_msg(sqlite3_prepare_v2(h, q, -1, &st, &tail) == SQLITE_OK, "cookbook query %d: %s\n%s",
                      queries + 1, sqlite3_errmsg(h), q);
        int rows = 0, rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) rows++;
        ck_assert_msg(rc == SQLITE_DONE, "cookbook query %d: %s", queries + 1, sqlite3_errmsg(h));
        ck_assert_msg(rows > 0, "cookbook query %d returned no rows:\n%s", queries + 1, q);
        sqlite3_finalize(st);
        queries++;
    }
    ck_assert_int_ge(queries, 8);
    sqlite3_close(h);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("record");
    TCase *tc = case_add(s, "record", 300,
                         (const TTest *[]){test_reference, test_resume_after_kill, test_run_kernels, test_sigint,
                                           test_thread_counts_agree, test_bad_input, test_bad_env, test_summaries,
                                           test_options, test_top_neurons, test_top_neurons_escapes_controls,
                                           test_nonfinite_activations, test_resume_pid_reused, test_kill_torture,
                                           test_disk_full,
                                           test_cookbook, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
