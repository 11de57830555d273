/* check_merge.c — sharded recording (`record --shard I/N`) and `probe merge`:
 * 1, 3 and 7 shards merged equal one recording of the whole corpus (every
 * document, token, per-token top-k, example and histogram identical; count,
 * min, max and fraction active exactly; mean and variance to 1e-12 of the
 * neuron's scale); the GNU parallel script; the Slurm script against a
 * stand-in sbatch that runs its jobs locally; and one clear error for each
 * bad set of shards, with the output database left unchanged. */
#include "parallel.h"
#include "testutil.h"

#include <math.h>

static char tmpdir[256];
static char out[1 << 16];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_merge"); }
static void teardown(void) { tmpdir_remove(tmpdir); }

#define MODEL "tests/fixtures/models/tiny-f32"
/* ctx 16 cuts most paragraphs into several windows */
#define OPTS "--model " MODEL " --ctx 16 --quiet"

static const char *corpus(void) { return path_in(repo_root(), "tests/fixtures/concept_scores/corpus.txt"); }

static void record(const char *db, const char *extra) {
    int st = run_probe(out, sizeof out, "record %s --db '%s' " OPTS " %s", corpus(), db, extra ? extra : "");
    ck_assert_msg(st == 0, "record %s: %s", extra ? extra : "", out);
}

/* Rows of `sql` in a not in b, with b attached as s. */
static long long except_count(sqlite3 *h, const char *cols, const char *table) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM (SELECT %s FROM main.%s EXCEPT SELECT %s FROM s.%s))"
             " + (SELECT count(*) FROM (SELECT %s FROM s.%s EXCEPT SELECT %s FROM main.%s))",
             cols, table, cols, table, cols, table, cols, table);
    return sql_int(h, sql);
}

/* The merged database equals the single run's, as the header says. */
static void assert_same(const char *merged, const char *single) {
    sqlite3 *h = sql_open(merged);
    char sql[600];
    snprintf(sql, sizeof sql, "ATTACH '%s' AS s", single);
    ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    static const char *same[][2] = {
        {"id, run_id, doc_index, byte_offset, n_tokens, text, text_bytes", "documents"},
        {"id, run_id, doc_id, pos, token_id, token, byte_start, byte_end, char_start, char_end", "tokens"},
        {"token_row, layer, top", "token_topk"},
        {"run_id, layer, neuron, rank, token_row, value", "neuron_examples"},
        {"run_id, layer, neuron, counts", "neuron_histograms"},
        {"run_id, layer, neuron, count, min, max, frac_pos", "neuron_stats"},
        {"run_id, layer, neuron, n_top, n_first, mean_value, max_value", "neuron_topk_counts"},
        {"id, status, model_checksum, corpus_checksum, options, layers, n_docs, docs_done, n_tokens, n_examples",
         "runs"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        ck_assert_msg(except_count(h, same[i][0], same[i][1]) == 0, "%s differs from one recording", same[i][1]);
    ck_assert_int_gt(sql_int(h, "SELECT count(*) FROM neuron_histograms"), 0);
    /* mean and variance: within 1e-12 of the neuron's scale (max(|mean|, sd)) */
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h,
                                        "SELECT a.mean, b.mean, a.variance, b.variance FROM main.neuron_stats a"
                                        " JOIN s.neuron_stats b USING (run_id, layer, neuron)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    double worst_m = 0, worst_v = 0;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        double ma = sqlite3_column_double(st, 0), mb = sqlite3_column_double(st, 1);
        double va = sqlite3_column_double(st, 2), vb = sqlite3_column_double(st, 3);
        double scale = fmax(fabs(mb), sqrt(vb));
        if (scale > 0) worst_m = fmax(worst_m, fabs(ma - mb) / scale);
        if (vb > 0) worst_v = fmax(worst_v, fabs(va - vb) / vb);
        n++;
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(n, 2 * 128);
    ck_assert_msg(worst_m <= 1e-12 && worst_v <= 1e-12, "mean %.2e, variance %.2e relative", worst_m, worst_v);
    sqlite3_close(h);
}

/* The top-neurons table of both databases is the same text. */
static void assert_same_listing(const char *a, const char *b) {
    static char first[1 << 16];
    ck_assert_int_eq(run_probe(first, sizeof first, "top-neurons --db '%s' --by mean --limit 50", a), 0);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db '%s' --by mean --limit 50", b), 0);
    /* the first line names the database's run: skip it */
    ck_assert_str_eq(strchr(first, '\n'), strchr(out, '\n'));
}

static void shards_merged_equal_single(int n) {
    char single[600], merged[600], cmd[8192];
    snprintf(single, sizeof single, "%s", path_in(tmpdir, "single.db"));
    record(single, NULL);
    size_t w = (size_t)snprintf(cmd, sizeof cmd, "merge --db '%s' --quiet", path_in(tmpdir, "merged.db"));
    snprintf(merged, sizeof merged, "%s", path_in(tmpdir, "merged.db"));
    for (int i = n; i >= 1; i--) { /* any order on the command line */
        char db[600], opt[64];
        snprintf(db, sizeof db, "%s/s%dof%d.db", tmpdir, i, n);
        snprintf(opt, sizeof opt, "--shard %d/%d", i, n);
        record(db, opt);
        w += (size_t)snprintf(cmd + w, sizeof cmd - w, " '%s'", db);
    }
    int st = run_probe(out, sizeof out, "%s", cmd);
    ck_assert_msg(st == 0, "merge: %s", out);
    assert_same(merged, single);
    assert_same_listing(merged, single);
}

START_TEST(test_one_shard) { shards_merged_equal_single(1); }
END_TEST

START_TEST(test_three_shards) { shards_merged_equal_single(3); }
END_TEST

START_TEST(test_seven_shards) { shards_merged_equal_single(7); }
END_TEST

/* scripts/record_parallel.sh (GNU parallel) gives the same database. */
START_TEST(test_parallel_script) {
    const char *single = path_in(tmpdir, "single.db");
    record(single, NULL);
    char merged[600];
    snprintf(merged, sizeof merged, "%s", path_in(tmpdir, "par.db"));
    int st = run_cmdf(out, sizeof out, "PROBE='%s' sh %s/scripts/record_parallel.sh %s 3 '%s' " OPTS, probe_bin(),
                      repo_root(), corpus(), merged);
    ck_assert_msg(st == 0, "record_parallel.sh: %s", out);
    assert_same(merged, single);
}
END_TEST

/* scripts/record_slurm.sh against a stand-in sbatch (not Slurm: it runs
 * each --wrap command at once, every array index in turn, with
 * SLURM_ARRAY_TASK_ID set), which checks the script's commands, quoting
 * and dependency order. */
START_TEST(test_slurm_script_commands) {
    const char *single = path_in(tmpdir, "single.db");
    record(single, NULL);
    const char *shim = "#!/bin/sh\n"
                       "# stand-in sbatch: --array=1-N runs --wrap for each index, else once\n"
                       "arr=''; wrap=''\n"
                       "for a in \"$@\"; do case \"$a\" in --array=*) arr=${a#--array=} ;; --wrap=*) wrap=${a#--wrap=} ;; esac; done\n"
                       "echo \"$*\" >> \"$(dirname \"$0\")/sbatch.log\"\n"
                       "if [ -n \"$arr\" ]; then n=${arr#1-}; i=1; while [ $i -le $n ]; do\n"
                       "  SLURM_ARRAY_TASK_ID=$i sh -c \"$wrap\" || exit 1; i=$((i+1)); done\n"
                       "else sh -c \"$wrap\" || exit 1; fi\n"
                       "echo 4242\n";
    char bin[600], merged[600];
    snprintf(bin, sizeof bin, "%s", path_in(tmpdir, "bin"));
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    const char *sb = file_write(path_in(bin, "sbatch"), shim, strlen(shim));
    ck_assert_int_eq(chmod(sb, 0755), 0);
    snprintf(merged, sizeof merged, "%s/slurm out.db", tmpdir); /* a space: quoting */
    int st = run_cmdf(out, sizeof out,
                      "cd '%s' && PATH='%s':$PATH PROBE='%s' CPUS_PER_TASK=1 sh %s/scripts/record_slurm.sh %s 3 "
                      "'slurm out.db' --model '%s/" MODEL "' --ctx 16 --quiet",
                      tmpdir, bin, probe_bin(), repo_root(), corpus(), repo_root());
    ck_assert_msg(st == 0, "record_slurm.sh: %s", out);
    assert_same(merged, single);
    char *log = file_read(path_in(bin, "sbatch.log"), NULL);
    ck_assert_msg(strstr(log, "--array=1-3") && strstr(log, "--dependency=afterok:4242"), "%s", log);
    free(log);
}
END_TEST

/* Bad sets of shards: one line each, exit 1, the output database unchanged. */
/* The merged run's OpenBLAS kernels (runs.blas): every shard's, in shard
 * order, each once; unknown when a shard's are unknown. */
START_TEST(test_merged_kernels) {
    char s1[600], s2[600], m1[600], m2[600], got[256], want[256];
    snprintf(s1, sizeof s1, "%s/k1.db", tmpdir);
    snprintf(s2, sizeof s2, "%s/k2.db", tmpdir);
    snprintf(m1, sizeof m1, "%s/km1.db", tmpdir);
    snprintf(m2, sizeof m2, "%s/km2.db", tmpdir);
    record(s1, "--shard 1/2");
    record(s2, "--shard 2/2");
    sqlite3 *h = sql_open(s2);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET blas = 'OtherCore'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_msg(run_probe(out, sizeof out, "merge --db '%s' --quiet '%s' '%s'", m1, s2, s1) == 0, "%s", out);
    snprintf(want, sizeof want, "%s,OtherCore", parallel_blas_core());
    h = sql_open(m1);
    ck_assert_str_eq(sql_bytes(h, "SELECT blas FROM runs", got, sizeof got, NULL), want);
    sqlite3_close(h);
    h = sql_open(s1);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET blas = NULL", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_msg(run_probe(out, sizeof out, "merge --db '%s' --quiet '%s' '%s'", m2, s1, s2) == 0, "%s", out);
    h = sql_open(m2);
    ck_assert_int_eq(sql_int(h, "SELECT blas IS NULL FROM runs"), 1);
    sqlite3_close(h);
}
END_TEST

START_TEST(test_bad_shards) {
    char d[8][600];
    for (int i = 0; i < 3; i++) {
        char opt[32];
        snprintf(d[i], sizeof d[i], "%s/s%d.db", tmpdir, i + 1);
        snprintf(opt, sizeof opt, "--shard %d/3", i + 1);
        record(d[i], opt);
    }
    snprintf(d[3], sizeof d[3], "%s/other_ctx.db", tmpdir);
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db '%s' --model " MODEL " --ctx 32 --quiet --shard 3/3",
                               corpus(), d[3]),
                     0);
    snprintf(d[4], sizeof d[4], "%s/plain.db", tmpdir);
    record(d[4], NULL);
    snprintf(d[5], sizeof d[5], "%s/s2of4.db", tmpdir);
    record(d[5], "--shard 2/4");
    snprintf(d[6], sizeof d[6], "%s/interrupted.db", tmpdir);
    file_copy(d[2], d[6]);
    sqlite3 *h = sql_open(d[6]);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE runs SET status = 'interrupted'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    const char *outdb = path_in(tmpdir, "out.db");
    struct {
        const char *args, *msg;
    } bad[] = {
        {"'%1$s' '%2$s'", "shard 3/3 is missing"},
        {"'%1$s' '%2$s' '%3$s' '%3$s'", "shard 3/3 is given twice"},
        {"'%1$s' '%2$s' '%4$s'", "other options"},
        {"'%1$s' '%2$s' '%5$s'", "holds no shard run"},
        {"'%1$s' '%2$s' '%6$s'", "not the same split"},
        {"'%1$s' '%2$s' '%7$s'", "is interrupted"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[4096];
        snprintf(args, sizeof args, bad[i].args, d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
        int st = run_probe(out, sizeof out, "merge --db '%s' %s", outdb, args);
        ck_assert_msg(st == 1 && strstr(out, bad[i].msg) && strstr(out, "probe merge:"), "case %zu: exit %d: %s", i,
                      st, out);
        ck_assert_msg(access(outdb, F_OK) != 0 || sql_int_at(outdb, "SELECT count(*) FROM runs") == 0,
                      "case %zu left a run in the output", i);
    }
    /* --shard itself */
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db x.db " OPTS " --shard 4/3", corpus()), 2);
    ck_assert_msg(strstr(out, "--shard must be I/N"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db '%s/y.db' " OPTS " --shard 31/40", corpus(), tmpdir), 2);
    ck_assert_msg(strstr(out, "has no documents"), "%s", out);
    /* merging twice into the same database is refused */
    ck_assert_int_eq(run_probe(out, sizeof out, "merge --db '%s' --quiet '%s' '%s' '%s'", outdb, d[0], d[1], d[2]), 0);
    ck_assert_int_eq(run_probe(out, sizeof out, "merge --db '%s' --quiet '%s' '%s' '%s'", outdb, d[0], d[1], d[2]), 1);
    ck_assert_msg(strstr(out, "already holds this recording"), "%s", out);
    ck_assert_int_eq(sql_int_at(outdb, "SELECT count(*) FROM runs"), 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("merge");
    TCase *tc = case_add(s, "merge", 300,
                         (const TTest *[]){test_one_shard, test_three_shards, test_seven_shards, test_parallel_script,
                                           test_slurm_script_commands, test_merged_kernels, test_bad_shards, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
