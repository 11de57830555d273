/* check_concept_scores.c — `probe top-neurons --words / --probe` (concept
 * rankings, SPEC §6, schema/080_concepts.sql) against an independent
 * reference, scripts/reference/concept_scores.py, run by /usr/bin/python3.
 *
 * Each test records tests/fixtures/concept_scores/corpus.txt (30 short
 * paragraphs of plain English with past-tense verbs and city names;
 * paragraphs 26 and 27 also hold matcher edge cases: "Walked", "WALKED",
 * "Went", "SAID" (matched by the case-insensitive probe only), "sleepwalked"
 * (no match), "(walked)" (walk + ed: only "ed" ends the word), "London's",
 * "Paris-style"; every paragraph is one window of either model, ctx 64 or
 * 1024) with a fixture model, runs `probe top-neurons`
 * on it, and then the reference on the concept run it wrote. The reference
 * recomputes every activation with `probe trace --ids` per document (not
 * probe's replay, not the histograms), the concept tokens with its own
 * GPT-2 pre-tokenizer (the `regex` module), and every score exactly
 * (means, sample sds, Cohen's d, AUROC by Mann-Whitney in integers,
 * precision from neuron_examples); it exits 0 only when every stored value
 * agrees (means/sds/d to 1e-5 relative + 1e-6, counts and precision
 * exactly, |auroc - exact| <= auroc_error).
 *
 * test_reference_catches_errors runs without top-neurons: it writes a
 * concept run computed by other means (tests/fixtures/concept_scores/
 * fake_concept_run.py: a different word matcher, brute-force AUROC), checks
 * that the reference accepts it, then that it rejects each kind of wrong
 * row; so the other tests cannot pass because the reference accepts
 * anything. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define CORPUS "tests/fixtures/concept_scores/corpus.txt"
#define WORDS "walked,went,said,London,Paris"
#define PAST_TENSE "probes/past_tense_verbs.json"

static char tmpdir[256];
static const char *root; /* the repository (repo_root) */
static char out[1 << 17];

static void setup(void) {
    python3_require("the reference scripts/reference/concept_scores.py runs on /usr/bin/python3 with NumPy and regex");
    root = repo_root();
    tmpdir_make(tmpdir, sizeof tmpdir, "check_concept_scores");
}

static void teardown(void) { tmpdir_remove(tmpdir); }

static const char *tpath(const char *name) { return path_in(tmpdir, name); }
static const char *model_path(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/models/%s", name);
    return path_in(root, rel);
}

/* Records the corpus into db with the fixture model `model`; asserts. */
static void record(const char *db, const char *model) {
    ck_assert_msg(run_probe(out, sizeof out, "record '%s' --db '%s' --model '%s' --quiet", path_in(root, CORPUS), db,
                            model_path(model)) == 0,
                  "%s", out);
}

/* Runs `probe top-neurons ARGS --db db --model model --json`: stdout into
 * tmpdir/top.json (parsed and returned; caller deletes), stderr into `out`.
 * Asserts exit 0, that exactly one concept_runs row was added, and returns
 * its id in *cid. */
static cJSON *top_neurons(const char *db, const char *model, const char *args, long long *cid) {
    long long before = sql_int_at(db, "SELECT count(*) FROM concept_runs");
    char bin[2048], json[1024], err[1024];
    sh_quote(bin, sizeof bin, probe_bin());
    snprintf(json, sizeof json, "%s", tpath("top.json"));
    snprintf(err, sizeof err, "%s", tpath("top.err"));
    int rc = run_cmdf(out, sizeof out, "{ %s top-neurons %s --db '%s' --model '%s' --json 2>'%s'; } >'%s'", bin, args,
                      db, model_path(model), err, json);
    char *stderr_text = file_read(err, NULL);
    ck_assert_msg(rc == 0, "top-neurons %s: exit %d\n%s%s", args, rc, out, stderr_text);
    free(stderr_text);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM concept_runs"), before + 1);
    *cid = sql_int_at(db, "SELECT max(id) FROM concept_runs");
    return json_load(json);
}

/* Runs the reference on concept run cid; its summary and disagreements in
 * `out`; returns its exit status (0 all agree, 1 disagreements, 2 cannot run). */
static int reference(const char *db, long long cid, const char *model, const char *concept_args) {
    char bin[2048];
    sh_quote(bin, sizeof bin, probe_bin());
    return run_cmdf(out, sizeof out,
                    PYTHON3 " '%s/scripts/reference/concept_scores.py' --db '%s' --concept-run %lld --probe-bin %s"
                            " --model '%s' %s",
                    root, db, cid, bin, model_path(model), concept_args);
}

static void reference_agrees(const char *db, long long cid, const char *model, const char *concept_args) {
    int rc = reference(db, cid, model, concept_args);
    ck_assert_msg(rc == 0 && strstr(out, "Everything agrees."), "reference (%s) exit %d:\n%s", concept_args, rc, out);
}

/* The first array in j (itself or nested) whose items are objects with
 * "layer" and "neuron": the ranked neurons. */
static const cJSON *neuron_list(const cJSON *j) {
    if (cJSON_IsArray(j)) {
        const cJSON *first = cJSON_GetArrayItem(j, 0);
        if (cJSON_IsObject(first) && cJSON_GetObjectItem(first, "layer") && cJSON_GetObjectItem(first, "neuron"))
            return j;
    }
    const cJSON *c;
    if (cJSON_IsArray(j) || cJSON_IsObject(j))
        cJSON_ArrayForEach(c, j) {
            const cJSON *r = neuron_list(c);
            if (r) return r;
        }
    return NULL;
}

/* Asserts that no object in j repeats a key (cJSON keeps both, Python's json
 * keeps the last, so a reader sees one or the other). */
static void no_duplicate_keys(const cJSON *j) {
    const cJSON *a, *b;
    if (cJSON_IsObject(j))
        cJSON_ArrayForEach(a, j) for (b = a->next; b; b = b->next)
            ck_assert_msg(strcmp(a->string, b->string) != 0, "the --json output repeats the key \"%s\" in one object",
                          a->string);
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) cJSON_ArrayForEach(a, j) no_duplicate_keys(a);
}

/* The --json output lists neurons with every field, each value as stored in
 * concept_scores of concept run cid (to 1e-6 relative: --json prints full
 * precision), ranked by AUROC (the default --by), and repeats no key in an
 * object. Catches: missing or renamed fields, JSON that does not parse (a
 * stray message on stdout), JSON values that are not the stored ones, a
 * ranking that is not by AUROC, two fields under one name. */
static void check_json(const cJSON *j, const char *db, long long cid) {
    static const char *fields[] = {"layer", "neuron", "auroc", "auroc_error", "cohen_d", "mean_in", "mean_out",
                                   "precision"};
    no_duplicate_keys(j);
    const cJSON *ns = neuron_list(j);
    ck_assert_msg(ns != NULL && cJSON_GetArraySize(ns) > 0, "no list of neurons in the --json output");
    sqlite3 *h = sql_open(db);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h,
                                        "SELECT layer, neuron, auroc, auroc_error, cohen_d, mean_in, mean_out, precision"
                                        " FROM concept_scores WHERE concept_run_id = ?1 AND layer = ?2 AND neuron = ?3",
                                        -1, &st, NULL),
                     SQLITE_OK);
    double prev = INFINITY;
    const cJSON *n;
    cJSON_ArrayForEach(n, ns) {
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(n, fields[f]);
            ck_assert_msg(cJSON_IsNumber(v) || (f >= 2 && cJSON_IsNull(v)), "field \"%s\" missing or not a number",
                          fields[f]);
        }
        int layer = (int)json_num(n, "layer"), neuron = (int)json_num(n, "neuron");
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, cid);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int(st, 3, neuron);
        ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "listed neuron %d:%d has no concept_scores row", layer, neuron);
        for (int f = 2; f < 8; f++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(n, fields[f]);
            int null_db = sqlite3_column_type(st, f) == SQLITE_NULL;
            ck_assert_msg(null_db == cJSON_IsNull(v), "%d:%d \"%s\": JSON %s, database %s", layer, neuron, fields[f],
                          cJSON_IsNull(v) ? "null" : "a number", null_db ? "NULL" : "a number");
            if (!null_db)
                ck_assert_msg(rel_diff(v->valuedouble, sqlite3_column_double(st, f)) <= 1e-6 ||
                                  fabs(v->valuedouble - sqlite3_column_double(st, f)) <= 1e-12,
                              "%d:%d \"%s\": JSON %.17g, database %.17g", layer, neuron, fields[f], v->valuedouble,
                              sqlite3_column_double(st, f));
        }
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(n, "auroc");
        ck_assert_msg(cJSON_IsNumber(a), "%d:%d: auroc is null in a run recorded with histograms", layer, neuron);
        ck_assert_msg(a->valuedouble <= prev + 1e-12, "not ranked by AUROC: %d:%d has %.9g after %.9g", layer, neuron,
                      a->valuedouble, prev);
        prev = a->valuedouble;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* ---- probe top-neurons against the reference ---------------------------------- */

/* --words on tiny-f32 (2 layers x 128 neurons, ctx 64): catches wrong
 * means, sds, Cohen's d, AUROC beyond its stated error, precision, concept
 * token counts, windows (replayed), a case-sensitive list matched
 * insensitively, and the concept_runs row (name "words", checksum of the
 * list, 5 words, both layers). */
START_TEST(test_words_tiny_f32) {
    const char *db = tpath("tiny.db");
    record(db, "tiny-f32");
    long long cid;
    cJSON *j = top_neurons(db, "tiny-f32", "--words " WORDS, &cid);
    check_json(j, db, cid);
    cJSON_Delete(j);
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM concept_scores WHERE concept_run_id = %lld", cid);
    ck_assert_int_eq(sql_int_at(db, q), 2 * 128);
    reference_agrees(db, cid, "tiny-f32", "--words " WORDS);
}
END_TEST

/* --probe past_tense_verbs (case-insensitive, 2,000 words) restricted to
 * --layer 1: catches ASCII folding ("Walked", "WALKED", "Went" match here),
 * rows or scores for an unscored layer, the file's checksum and name. */
START_TEST(test_probe_layer_tiny_f32) {
    const char *db = tpath("tiny.db");
    record(db, "tiny-f32");
    long long cid;
    char args[1200];
    snprintf(args, sizeof args, "--probe '%s' --layer 1", path_in(root, PAST_TENSE));
    cJSON *j = top_neurons(db, "tiny-f32", args, &cid);
    check_json(j, db, cid);
    cJSON_Delete(j);
    char q[256];
    snprintf(q, sizeof q, "SELECT layers = '[1]' AND name = 'past_tense_verbs' FROM concept_runs WHERE id = %lld", cid);
    ck_assert_msg(sql_int_at(db, q) == 1, "concept run %lld: layers should be [1], name past_tense_verbs", cid);
    snprintf(q, sizeof q, "SELECT count(*) FROM concept_scores WHERE concept_run_id = %lld AND layer = 1", cid);
    ck_assert_int_eq(sql_int_at(db, q), 128);
    snprintf(args, sizeof args, "--probe '%s'", path_in(root, PAST_TENSE));
    reference_agrees(db, cid, "tiny-f32", args);
}
END_TEST

/* --words on odd-f16 (fp16 weights, n_inner 72 != 4 n_embd, ctx 1024):
 * catches a replay or a score that assumes n_inner = 4 n_embd or float32
 * weights, or windows cut at another ctx. */
START_TEST(test_words_odd_f16) {
    const char *db = tpath("odd.db");
    record(db, "odd-f16");
    long long cid;
    cJSON *j = top_neurons(db, "odd-f16", "--words " WORDS, &cid);
    check_json(j, db, cid);
    cJSON_Delete(j);
    reference_agrees(db, cid, "odd-f16", "--words " WORDS);
}
END_TEST

/* --probe past_tense_verbs --drop participle on odd-f16: 73 words are left
 * (walked, said, ... dropped; went kept). Catches --drop ignored or applied
 * to the wrong words, and concept_runs.words / dropped_flags. */
START_TEST(test_drop_odd_f16) {
    const char *db = tpath("odd.db");
    record(db, "odd-f16");
    long long cid;
    char args[1200];
    snprintf(args, sizeof args, "--probe '%s' --drop participle", path_in(root, PAST_TENSE));
    cJSON *j = top_neurons(db, "odd-f16", args, &cid);
    check_json(j, db, cid);
    cJSON_Delete(j);
    char q[256];
    snprintf(q, sizeof q, "SELECT words = 73 AND dropped_flags = 'participle' FROM concept_runs WHERE id = %lld", cid);
    ck_assert_msg(sql_int_at(db, q) == 1, "concept run %lld: expected 73 words, dropped_flags 'participle'", cid);
    reference_agrees(db, cid, "odd-f16", args);
}
END_TEST

/* ---- the reference itself can fail ---------------------------------------------- */

/* A copy of db (VACUUM INTO) at tmpdir/name with `sql` applied; returns its path. */
static const char *perturbed(const char *db, const char *name, const char *sql) {
    const char *copy = tpath(name);
    remove(copy);
    sqlite3 *h = sql_open(db);
    char vac[1200];
    snprintf(vac, sizeof vac, "VACUUM INTO '%s'", copy);
    ck_assert_msg(sqlite3_exec(h, vac, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", vac, sqlite3_errmsg(h));
    sqlite3_close(h);
    h = sql_open(copy);
    ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
    return copy;
}

START_TEST(test_reference_catches_errors) {
    const char *db = tpath("fake.db");
    record(db, "tiny-f32");
    ck_assert_msg(run_cmdf(out, sizeof out,
                           PYTHON3 " '%s/tests/fixtures/concept_scores/fake_concept_run.py' '%s' '%s' '%s' '%s'", root,
                           db, probe_bin(), model_path("tiny-f32"), WORDS) == 0,
                  "fake_concept_run.py: %s", out);
    long long cid = strtoll(out, NULL, 10);
    ck_assert_int_ge(cid, 1);
    /* the fake (another matcher, brute-force AUROC, auroc_error 0) agrees */
    reference_agrees(db, cid, "tiny-f32", "--words " WORDS);
    /* each wrong value is found: the SQL, and what the report must say */
    static const char *cases[][2] = {
        {"UPDATE concept_scores SET mean_in = mean_in * 1.0001 + 1e-5 WHERE layer = 1 AND neuron = 7", "1:7 mean_in"},
        {"UPDATE concept_scores SET sd_out = sd_out * 1.001 WHERE layer = 0 AND neuron = 5", "0:5 sd_out"},
        {"UPDATE concept_scores SET cohen_d = -cohen_d WHERE layer = 0 AND neuron = 9", "0:9 cohen_d"},
        {"UPDATE concept_scores SET auroc = auroc + 0.01, auroc_error = 0.0099 WHERE layer = 0 AND neuron = 3",
         "0:3 auroc"},
        {"UPDATE concept_scores SET examples_in = examples_in + 1 WHERE layer = 1 AND neuron = 2", "1:2 examples_in"},
        {"UPDATE concept_runs SET concept_tokens = concept_tokens + 1", "concept_runs.concept_tokens"},
        {"UPDATE concept_runs SET probe_checksum = '0000000000000000'", "concept_runs.probe_checksum"},
        {"DELETE FROM concept_scores WHERE layer = 1 AND neuron = 127", "no concept_scores row for 1:127"},
        {"UPDATE neuron_examples SET token_row = (SELECT token_row FROM neuron_examples WHERE layer = 0 AND"
         " neuron = 3 AND rank = 2) WHERE layer = 0 AND neuron = 3 AND rank = 1",
         "neuron_examples 0:3"},
        {"DELETE FROM neuron_histograms", "has no histograms: expected NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *bad = perturbed(db, "bad.db", cases[i][0]);
        int rc = reference(bad, cid, "tiny-f32", "--words " WORDS);
        ck_assert_msg(rc == 1 && strstr(out, cases[i][1]), "after %s: exit %d, expected 1 and '%s':\n%s", cases[i][0],
                      rc, cases[i][1], out);
    }
    /* another word list: other concept tokens, other checksum */
    int rc = reference(db, cid, "tiny-f32", "--words " WORDS ",the");
    ck_assert_msg(rc == 1 && strstr(out, "concept_runs.concept_tokens"), "exit %d:\n%s", rc, out);
    /* the wrong model cannot be traced into the recorded shapes: exit 2 */
    rc = reference(db, cid, "odd-f16", "--words " WORDS);
    ck_assert_msg(rc == 2, "exit %d:\n%s", rc, out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("concept_scores");
    TCase *tc = case_add(s, "concept_scores", 300,
                         (const TTest *[]){test_reference_catches_errors, test_words_tiny_f32, test_probe_layer_tiny_f32,
                                           test_words_odd_f16, test_drop_odd_f16, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
