/* check_kv.c — key-value memories (`probe kv`, `probe neuron`): every stored
 * value token and key-value figure against the float64 NumPy reference
 * (scripts/reference/kv_reference.py) on a random checkpoint and on the demo
 * model (whose 30,451 unseen ids share one unembedding row); a planted value
 * that promotes exactly the token after its neuron's top trigger must
 * agree; the neuron card; and the errors a user meets. */
#include "testutil.h"

#include <math.h>

static char tmpdir[256];
static char out[1 << 17];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_kv"); }
static void teardown(void) { tmpdir_remove(tmpdir); }

static const char *corpus_path(void) { return path_in(repo_root(), "tests/fixtures/concept_scores/corpus.txt"); }

/* Records the corpus with model into db; asserts it worked. */
static void record(const char *db, const char *model) {
    char q[600];
    int st = run_probe(out, sizeof out, "record %s --db %s --model %s --quiet", corpus_path(), sh_quote(q, sizeof q, db),
                       model);
    ck_assert_msg(st == 0, "record: %s", out);
}

static int reference(const char *db, const char *model) {
    return run_cmdf(out, sizeof out, "/usr/bin/python3 %s/scripts/reference/kv_reference.py --db '%s' --model '%s'",
                    repo_root(), db, model);
}

/* Every value token and kv figure of a random 2-layer model against the
 * reference; then one stored logit changed: the reference must notice. */
START_TEST(test_kv_random_model) {
    python3_require("the reference is NumPy through /usr/bin/python3");
    const char *db = path_in(tmpdir, "tiny.db"), *model = path_in(repo_root(), "tests/fixtures/models/tiny-f32");
    record(db, model);
    int st = run_probe(out, sizeof out, "kv --db '%s' --model %s --json --quiet", db, model);
    ck_assert_msg(st == 0, "%s", out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    cJSON *layers = cJSON_GetObjectItem(j, "layers");
    ck_assert_int_eq(cJSON_GetArraySize(layers), 2);
    ck_assert_int_eq((int)json_num(j, "distinct_vocabulary"), 50257);
    cJSON_Delete(j);
    st = reference(db, model);
    ck_assert_msg(st == 0, "reference: %s", out);
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sqlite3_exec(h,
                                  "UPDATE value_tokens SET logit = logit + 0.5 WHERE layer = 1 AND neuron = 7 AND "
                                  "variant = 'ln_f' AND direction = 'suppressed' AND rank = 3",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_changes(h), 1);
    sqlite3_close(h);
    st = reference(db, model);
    ck_assert_msg(st == 1 && strstr(out, "1:7 ln_f suppressed rank 3"), "the reference missed a changed logit: %s",
                  out);
}
END_TEST

/* The demo model: identical unembedding rows collapse into one entry with
 * its count (19,807 distinct rows), checked by the reference on layer 5. */
START_TEST(test_kv_demo_collapsed_rows) {
    python3_require("the reference is NumPy through /usr/bin/python3");
    const char *db = path_in(tmpdir, "demo.db");
    char model[4200];
    snprintf(model, sizeof model, "%s/models/demo", repo_root());
    record(db, model);
    int st = run_probe(out, sizeof out, "kv --db '%s' --layer 5 --quiet", db);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(strstr(out, "key-value agreement") && strstr(out, "stored as kv run 1"), "%s", out);
    /* the shared row of unseen ids is one entry, with its count */
    long long shared = sql_int_at(db, "SELECT max(ids_sharing) FROM value_tokens");
    ck_assert_msg(shared > 1000, "largest shared row %lld", shared);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM (SELECT layer, neuron, variant, direction, token_id, count(*)"
                                    " FROM value_tokens GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1)"),
                     0);
    st = reference(db, model);
    ck_assert_msg(st == 0, "reference: %s", out);
}
END_TEST

/* A planted memory: in a copy of the random model, neuron j of the last
 * layer gets as its value the unembedding row of the token that follows its
 * top trigger (a last-layer value changes no recorded activation, and the
 * model's checksum covers its header, not its values). Its value then
 * promotes that token most, unless another row has a larger dot product
 * with it, which the test checks first and avoids by picking j. kv must
 * report agreement for that neuron. */
START_TEST(test_kv_planted_agreement) {
    char model[512];
    snprintf(model, sizeof model, "%s", path_in(tmpdir, "planted"));
    ck_assert_int_eq(mkdir(model, 0755), 0);
    model_copy(path_in(repo_root(), "tests/fixtures/models/tiny-f32"), model);
    const char *db = path_in(tmpdir, "planted.db");
    record(db, model);
    enum { C = 32, V = 50257, F = 128 };
    /* the unembedding (tied: wte) */
    static float wte[V * C];
    tensor_read_f32(model, "wte.weight", 0, (size_t)V * C, wte);
    int chosen = -1;
    long long next = -1;
    sqlite3 *hdb = sql_open(db);
    for (int j = 0; j < F && chosen < 0; j++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT coalesce((SELECT n.token_id FROM neuron_examples e JOIN tokens t ON t.id = e.token_row"
                 " JOIN tokens n ON n.doc_id = t.doc_id AND n.pos = t.pos + 1"
                 " WHERE e.run_id = 1 AND e.layer = 1 AND e.neuron = %d AND e.rank = 1), -1)",
                 j);
        long long t = sql_int(hdb, sql);
        if (t < 0) continue;
        /* is row t the largest dot product with itself? */
        const float *u = wte + (size_t)t * C;
        double self = 0;
        for (int c = 0; c < C; c++) self += (double)u[c] * u[c];
        int best = 1;
        for (int v = 0; v < V && best; v++) {
            if (v == t) continue;
            double d = 0;
            for (int c = 0; c < C; c++) d += (double)wte[(size_t)v * C + c] * u[c];
            if (d >= self) best = 0;
        }
        if (best) {
            chosen = j;
            next = t;
        }
    }
    sqlite3_close(hdb);
    ck_assert_msg(chosen >= 0, "no neuron of layer 1 has a next token whose row is its own best match");
    for (int c = 0; c < C; c++) { /* c_proj [F x C] (Conv1D): row `chosen` is its value */
        float x = wte[(size_t)next * C + c];
        tensor_patch(model, "h.1.mlp.c_proj.weight", (long)chosen * C + c, &x, 4);
    }
    float got;
    tensor_read_f32(model, "h.1.mlp.c_proj.weight", (long)chosen * C, 1, &got);
    ck_assert(got == wte[(size_t)next * C]);
    int st = run_probe(out, sizeof out, "kv --db '%s' --model %s --layer 1 --quiet", db, model);
    ck_assert_msg(st == 0, "%s", out);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT agree FROM kv_neurons WHERE layer = 1 AND neuron = %d AND variant = 'raw'", chosen);
    ck_assert_msg(sql_int_at(db, sql) == 1, "planted neuron 1:%d does not agree", chosen);
    snprintf(sql, sizeof sql, "SELECT value_top_id FROM kv_neurons WHERE layer = 1 AND neuron = %d AND variant = 'raw'",
             chosen);
    ck_assert_int_eq(sql_int_at(db, sql), next);
}
END_TEST

/* The card: JSON with its parts (value tokens equal to the stored ones),
 * the table with the token marked, and one clear error per bad spec. */
START_TEST(test_neuron_card) {
    const char *db = path_in(tmpdir, "card.db"), *model = path_in(repo_root(), "tests/fixtures/models/tiny-f32");
    record(db, model);
    char q[600];
    sh_quote(q, sizeof q, db);
    /* before kv: value tokens computed on the spot */
    int st = run_probe(out, sizeof out, "neuron 1:5 --db %s --json", q);
    ck_assert_msg(st == 0, "%s", out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "neuron")->valuestring, "1:5");
    cJSON *promoted = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "value"), "raw"), "promoted");
    ck_assert_int_eq(cJSON_GetArraySize(promoted), 8);
    int first_id = (int)json_num(cJSON_GetArrayItem(promoted, 0), "token_id");
    ck_assert_int_gt(cJSON_GetArraySize(cJSON_GetObjectItem(j, "top_examples")), 0);
    cJSON_Delete(j);
    /* after kv: the stored tokens are the same */
    ck_assert_int_eq(run_probe(out, sizeof out, "kv --db %s --quiet", q), 0);
    ck_assert_int_eq(sql_int_at(db, "SELECT token_id FROM value_tokens WHERE layer = 1 AND neuron = 5 AND variant = "
                                    "'raw' AND direction = 'promoted' AND rank = 1"),
                     first_id);
    st = run_probe(out, sizeof out, "neuron blocks.1.mlp.hook_post --neuron 5 --db %s", q);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(strstr(out, "neuron 1:5") && strstr(out, "[[") && strstr(out, "stored by probe kv") &&
                      strstr(out, "key-value (latest probe kv"),
                  "%s", out);
    /* bad specs: one line each, exit 2; a missing database: exit 1 */
    static const char *bad[][2] = {{"9:0", "layer 9 is out of range"},
                                   {"1:128", "neuron 128 out of range 0..127"},
                                   {"x", "'x' is not a neuron"},
                                   {"1:", "'1:' is not a neuron"},
                                   {"blocks.1.mlp.hook_post", "add --neuron N"},
                                   {"blocks.1.attn", "is not a neuron hook"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = run_probe(out, sizeof out, "neuron %s --db %s", bad[i][0], q);
        ck_assert_msg(st == 2 && strstr(out, bad[i][1]) && strstr(out, "probe neuron:"), "'%s' -> exit %d: %s",
                      bad[i][0], st, out);
    }
    st = run_probe(out, sizeof out, "neuron 1:5 --db %s/none.db", tmpdir);
    ck_assert_msg(st == 1 && strstr(out, "none.db"), "exit %d: %s", st, out);
    st = run_probe(out, sizeof out, "kv --db %s --layer 7", q);
    ck_assert_msg(st == 2 && strstr(out, "layer 7"), "exit %d: %s", st, out);
    st = run_probe(out, sizeof out, "kv --db %s --triggers 99", q);
    ck_assert_msg(st == 2 && strstr(out, "--triggers"), "exit %d: %s", st, out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kv");
    TCase *tc = case_add(s, "kv", 300,
                         (const TTest *[]){test_kv_random_model, test_kv_demo_collapsed_rows, test_kv_planted_agreement,
                                           test_neuron_card, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
