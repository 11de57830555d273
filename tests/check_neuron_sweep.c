/* check_neuron_sweep.c — `probe ablate --sweep neurons`: every neuron's
 * attribution-patching estimate against PyTorch autograd in float64
 * (scripts/reference/neuron_sweep_reference.py, fixtures from
 * scripts/fixtures/gen_ablate_fixtures.sh) on random checkpoints (tanh and
 * erf GELU, ReLU, the first layer, the last and all, zero and mean
 * ablation); the verified
 * neurons' exact effects against the same reference and, bit for bit,
 * against `--neurons L:N` of each alone; a forward pass started at a layer
 * from the kept residual stream equals the whole pass bit for bit; stored
 * rows, the view and `top-neurons --by ablation`; bad options. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"
#include "util.h"

#define FIX "tests/fixtures/ablate"
#define MODELS "tests/fixtures/models/"
#define BASE "ablate " FIX "/corpus.txt --ctx 24 --quiet --json"

static char out[1 << 21];
static char tmpdir[64];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_neuron_sweep"); }
static void teardown(void) { tmpdir_remove(tmpdir); }

/* The fixture corpus recorded with tiny-f32 into db (the means of mean
 * mode, the run top-neurons reads). */
static void record_fixture(const char *db) {
    int st = run_probe(out, sizeof out, "record " FIX "/corpus.txt --model " MODELS "tiny-f32 --ctx 24 --quiet --db %s",
                       db);
    ck_assert_msg(st == 0, "record: %s", out);
}

static cJSON *run_json(const char *fmt_args) {
    int st = run_probe(out, sizeof out, BASE " %s", fmt_args);
    ck_assert_msg(st == 0, "ablate %s: exit %d: %s", fmt_args, st, out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

/* Each estimate within 1e-5 of the largest (float32 against float64), the
 * baseline and every verified neuron's exact delta loss within 1e-4
 * relative, and the verified neurons are the reference's top 3. layer < 0:
 * every layer. */
static void check_sweep_on(const char *source, int verify, const char *model, int layer, const char *extra,
                           const char *file) {
    char args[512], path[256], which[32] = "";
    if (layer >= 0) snprintf(which, sizeof which, "--layer %d", layer);
    snprintf(args, sizeof args, "ablate %s --quiet --json --model " MODELS "%s --sweep neurons %s --verify %d %s", source,
             model, which, verify, extra);
    int st = run_probe(out, sizeof out, "%s", args);
    ck_assert_msg(st == 0, "%s: exit %d: %s", args, st, out);
    cJSON *got = cJSON_Parse(out);
    ck_assert_msg(got != NULL, "not JSON: %s", out);
    snprintf(path, sizeof path, FIX "/%s", file);
    cJSON *ref = json_load(path);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(got, "sweep");
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(ref, "layers");
    const cJSON *est = cJSON_GetObjectItemCaseSensitive(ref, "estimate");
    const cJSON *neurons = cJSON_GetObjectItemCaseSensitive(sw, "neurons");
    int nl = cJSON_GetArraySize(rl), F = cJSON_GetArraySize(cJSON_GetArrayItem(est, 0)), first = cJSON_GetArrayItem(rl, 0)->valueint;
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sw, "layers")), nl);
    ck_assert_int_eq(cJSON_GetArraySize(neurons), nl * F);
    double biggest = 0, worst = 0;
    for (int l = 0; l < nl; l++)
        for (int j = 0; j < F; j++)
            biggest = fmax(biggest, fabs(cJSON_GetArrayItem(cJSON_GetArrayItem(est, l), j)->valuedouble));
    ck_assert_msg(biggest > 1e-3, "%s: estimates of %g cannot test anything", file, biggest);
    for (int r = 0; r < nl * F; r++) {
        const cJSON *n = cJSON_GetArrayItem(neurons, r);
        int l = (int)json_num(n, "layer") - first, j = (int)json_num(n, "neuron");
        ck_assert(l >= 0 && l < nl && j >= 0 && j < F);
        double d = fabs(json_num(n, "estimate") - cJSON_GetArrayItem(cJSON_GetArrayItem(est, l), j)->valuedouble);
        worst = fmax(worst, d);
        ck_assert_int_eq((int)json_num(n, "rank"), r + 1);
    }
    ck_assert_msg(worst <= 1e-5 * biggest, "%s: estimate off by %g (largest %g)", file, worst, biggest);
    ck_assert_msg(rel_diff(json_num(sw, "baseline_ce"), json_num(ref, "baseline_ce")) < 1e-5, "%s: baseline", file);
    const cJSON *exact = cJSON_GetObjectItemCaseSensitive(ref, "exact");
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(got, "conditions");
    ck_assert_int_eq(cJSON_GetArraySize(conds), verify);
    ck_assert_int_eq(cJSON_GetArraySize(exact), verify);
    for (int i = 0; i < verify; i++) {
        const cJSON *e = cJSON_GetArrayItem(exact, i), *c = cJSON_GetArrayItem(conds, i);
        char label[48];
        snprintf(label, sizeof label, "neuron %d:%d", (int)json_num(e, "layer"), (int)json_num(e, "neuron"));
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "spec")->valuestring, label);
        double dl = json_num(e, "delta_loss");
        ck_assert_msg(fabs(json_num(c, "delta_loss") - dl) <= 1e-4 * fabs(dl) + 1e-7, "%s %s: measured %g, reference %g",
                      file, label, json_num(c, "delta_loss"), dl);
        /* the table's measured column is the condition's figure */
        const cJSON *n = cJSON_GetArrayItem(neurons, i);
        ck_assert_int_eq((int)json_num(n, "layer"), (int)json_num(e, "layer"));
        ck_assert_int_eq((int)json_num(n, "neuron"), (int)json_num(e, "neuron"));
        ck_assert(json_num(n, "delta_loss") == json_num(c, "delta_loss"));
    }
    printf("  %-16s %-9s %-10s %d estimates, worst %.1e of the largest (%.3g)\n", model, layer >= 0 ? which : "all", extra,
           nl * F, worst / biggest, biggest);
    cJSON_Delete(got);
    cJSON_Delete(ref);
}

/* The fixture corpus in windows of 24, the reference's top 3 verified. */
static void check_sweep(const char *model, int layer, const char *extra, const char *file) {
    check_sweep_on(FIX "/corpus.txt --ctx 24", 3, model, layer, extra, file);
}

START_TEST(test_estimates_gelu_first_layer) {
    check_sweep("tiny-f32", 0, "--no-db", "expected_sweep_neurons_f32_l0.json");
}
END_TEST

START_TEST(test_estimates_gelu_last_layer) {
    check_sweep("tiny-f32", 1, "--no-db", "expected_sweep_neurons_f32_l1.json");
}
END_TEST

/* Every layer at once: each layer's estimates are those of its own sweep
 * (the gradient reaches the lower layer through the higher one's FFN too). */
START_TEST(test_estimates_every_layer) {
    check_sweep("tiny-f32", -1, "--no-db", "expected_sweep_neurons_f32_all.json");
}
END_TEST

START_TEST(test_estimates_gelu_erf) {
    check_sweep("tiny-f32-erf", 0, "--no-db", "expected_sweep_neurons_erf_l0.json");
}
END_TEST

/* scale_attn_by_inverse_layer_idx: the backward scales layer 1's scores by
 * 1/2 as the forward does */
START_TEST(test_estimates_attention_scaled_by_layer) {
    check_sweep("tiny-f32-scaled", 0, "--no-db", "expected_sweep_neurons_scaled_l0.json");
}
END_TEST

/* One document of 597 tokens in overlapping windows of 300: the attention's
 * backward in several blocks of query rows, and positions a window does
 * not own (its context) ablated and differentiated too. */
START_TEST(test_estimates_long_windows) {
    check_sweep_on(FIX "/long.txt --ctx 300", 2, "odd-f16", -1, "--no-db", "expected_sweep_neurons_long.json");
}
END_TEST

START_TEST(test_estimates_relu) {
    check_sweep("tiny-bf16-relu", 0, "--no-db", "expected_sweep_neurons_relu_l0.json");
}
END_TEST

/* Mean mode: each neuron set to its recorded mean (the recorded run's
 * means; the reference's are the same means in float64). */
START_TEST(test_estimates_mean_mode) {
    char args[512];
    const char *db = path_in(tmpdir, "mean.db");
    record_fixture(db);
    snprintf(args, sizeof args, "--mode mean --db %s", db);
    check_sweep("tiny-f32", 0, args, "expected_sweep_neurons_f32_l0_mean.json");
}
END_TEST

/* A verified neuron's figures are those of ablating it alone with
 * --neurons, bit for bit (its forward starts at the layer from the
 * baseline's residual stream, which changes no bit); --sweep neurons
 * --neurons LIST gives each listed neuron alone the same way. */
START_TEST(test_verified_equal_single_ablation) {
    cJSON *sw = run_json("--model " MODELS "odd-f16 --sweep neurons --layer 1 --verify 2 --no-db");
    cJSON *list = run_json("--model " MODELS "odd-f16 --sweep neurons --neurons 1:5,0:7 --no-db");
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(sw, "conditions");
    const cJSON *lc = cJSON_GetObjectItemCaseSensitive(list, "conditions");
    ck_assert_int_eq(cJSON_GetArraySize(lc), 2);
    const cJSON *all[] = {cJSON_GetArrayItem(conds, 0), cJSON_GetArrayItem(conds, 1), cJSON_GetArrayItem(lc, 0),
                          cJSON_GetArrayItem(lc, 1)};
    for (int i = 0; i < 4; i++) {
        const char *label = cJSON_GetObjectItemCaseSensitive(all[i], "spec")->valuestring;
        char args[256];
        snprintf(args, sizeof args, "--model " MODELS "odd-f16 --neurons %s --no-db", label + strlen("neuron "));
        cJSON *one = run_json(args);
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(one, "conditions"), 0);
        static const char *keys[] = {"baseline_ce", "ablated_ce", "delta_loss", "delta_loss_se", "kl", "top1_agreement"};
        for (int k = 0; k < 6; k++)
            ck_assert_msg(json_num(c, keys[k]) == json_num(all[i], keys[k]), "%s %s: %.17g alone, %.17g in the sweep",
                          label, keys[k], json_num(c, keys[k]), json_num(all[i], keys[k]));
        cJSON_Delete(one);
    }
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(all[2], "spec")->valuestring, "neuron 1:5");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(all[3], "spec")->valuestring, "neuron 0:7");
    cJSON_Delete(sw);
    cJSON_Delete(list);
}
END_TEST

/* model_forward from start_layer with the stream a plain pass had there:
 * the same logits bit for bit, with and without an edit at or above it;
 * an edit below it is refused. */
typedef struct {
    int layer;
    float *dst;
} KeepPre;

static void keep_pre(void *user, int layer, ResidPoint pt, const float *resid, int T, int C) {
    KeepPre *k = user;
    if (layer == k->layer && pt == RESID_PRE) memcpy(k->dst, resid, sizeof(float) * (size_t)T * C);
}

START_TEST(test_start_layer_bit_exact) {
    char err[PROBE_ERR_LEN];
    Model *m = model_load_weights(MODELS "odd-f16", err);
    ck_assert_msg(m != NULL, "%s", err);
    const int T = 150, C = m->cfg.n_embd, V = m->cfg.vocab_size, L = m->cfg.n_layer;
    int32_t ids[150];
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919 + 13) % 50000);
    float *resid = malloc(sizeof(float) * (size_t)T * C);
    float *full = malloc(sizeof(float) * (size_t)T * V), *part = malloc(sizeof(float) * (size_t)T * V);
    ck_assert(resid && full && part);
    for (int start = 1; start < L; start++) {
        KeepPre k = {start, resid};
        ForwardHooks plain = {.observe_resid = keep_pre, .user = &k};
        ck_assert_msg(model_forward(m, ids, T, &plain, full, err) == 0, "%s", err);
        NeuronEdit edit = {start, 3, 0.25f};
        for (int with_edit = 0; with_edit < 2; with_edit++) {
            ForwardHooks h = {.edits = &edit, .n_edits = with_edit};
            ck_assert_msg(model_forward(m, ids, T, &h, full, err) == 0, "%s", err);
            h.start_layer = start;
            h.start_resid = resid;
            memset(part, 0, sizeof(float) * (size_t)T * V);
            ck_assert_msg(model_forward(m, ids, T, &h, part, err) == 0, "%s", err);
            ck_assert_msg(!memcmp(full, part, sizeof(float) * (size_t)T * V), "start %d, edit %d: logits differ", start,
                          with_edit);
        }
        NeuronEdit below = {start - 1, 3, 0.0f};
        ForwardHooks bad = {.edits = &below, .n_edits = 1, .start_layer = start, .start_resid = resid};
        ck_assert_int_eq(model_forward(m, ids, T, &bad, part, err), -1);
        ck_assert_msg(strstr(err, "below the starting layer"), "%s", err);
    }
    model_free(m);
    free(resid);
    free(full);
    free(part);
}
END_TEST

/* Stored: the ablation, one condition per verified neuron, every neuron's
 * estimate with its rank (the view joins the measured figures), and
 * top-neurons --by ablation lists the latest sweep's order with each
 * neuron's recorded statistics. */
START_TEST(test_stored_and_ranked) {
    const char *db = path_in(tmpdir, "sweep.db");
    record_fixture(db);
    int st;
    char args[512];
    snprintf(args, sizeof args, "--model " MODELS "tiny-f32 --sweep neurons --layer 0 --verify 2 --db %s", db);
    cJSON *got = run_json(args);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(got, "sweep"), "neurons"), 0);
    int top = (int)json_num(first, "neuron");
    double top_est = json_num(first, "estimate"), top_meas = json_num(first, "delta_loss");
    cJSON_Delete(got);
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablation_neuron_estimates"), 128);
    ck_assert_int_eq(sql_int(h, "SELECT count(DISTINCT rank) FROM ablation_neuron_estimates"), 128);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablation_conditions"), 2);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM neuron_ablation_effects WHERE delta_loss IS NOT NULL"), 2);
    ck_assert_int_eq(sql_int(h, "SELECT neuron FROM neuron_ablation_effects WHERE rank = 1"), top);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablations WHERE kind = 'neurons' AND spec LIKE 'sweep neurons%'"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablation_tokens"), 2 * 146);
    sqlite3_close(h);

    st = run_probe(out, sizeof out, "top-neurons --db %s --by ablation --limit 3 --json", db);
    ck_assert_msg(st == 0, "%s", out);
    cJSON *t = cJSON_Parse(out);
    ck_assert_msg(t != NULL, "%s", out);
    const cJSON *n0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "neurons"), 0);
    ck_assert_int_eq((int)json_num(n0, "layer"), 0);
    ck_assert_int_eq((int)json_num(n0, "neuron"), top);
    ck_assert(json_num(n0, "ablation_estimate") == top_est);
    ck_assert(json_num(n0, "ablation_measured") == top_meas);
    ck_assert_msg(json_num(n0, "count") == 146, "statistics of the run: %s", out);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "neurons")), 3);
    cJSON_Delete(t);
    /* the neuron's card lists its estimate and its measurement */
    st = run_probe(out, sizeof out, "neuron 0:%d --db %s", top, db);
    char line[96];
    snprintf(line, sizeof line, "neuron 0:%d ", top);
    ck_assert_msg(st == 0 && strstr(out, "estimated alone, rank 1") && strstr(out, "(first-order estimate)") &&
                      strstr(out, line),
                  "exit %d: %s", st, out);
    st = run_probe(out, sizeof out, "top-neurons --db %s --by ablation --layer 1", db);
    ck_assert_msg(st == 1 && strstr(out, "no neuron sweep") && strstr(out, "--sweep neurons"), "exit %d: %s", st, out);
    /* many neurons alone: per-token rows for the first 10 only */
    st = run_probe(out, sizeof out, BASE " --model " MODELS "tiny-f32 --sweep neurons --neurons "
                   "0:1,0:2,0:3,0:4,0:5,0:6,0:7,0:8,0:9,0:10,0:11,0:12 --db %s", db);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_conditions WHERE ablation_id = 2"), 12);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_tokens t JOIN ablation_conditions c"
                                    " ON c.id = t.condition_id WHERE c.ablation_id = 2"), 10 * 146);
    /* every layer, estimates only: 256 more rows, and layer 1 can be ranked */
    st = run_probe(out, sizeof out, BASE " --model " MODELS "tiny-f32 --sweep neurons --verify 0 --db %s", db);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_neuron_estimates"), 128 + 256);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_neuron_estimates WHERE idx IS NOT NULL"), 2);
    /* estimates only, yet the same record of the corpus as a measured sweep */
    ck_assert_int_eq(sql_int_at(db, "SELECT count(DISTINCT bos || source_checksum || documents || tokens)"
                                    " FROM ablations"), 1);
    ck_assert_int_eq(sql_int_at(db, "SELECT min(bos) FROM ablations"), 1);
    st = run_probe(out, sizeof out, "top-neurons --db %s --by ablation --layer 1 --limit 1", db);
    ck_assert_msg(st == 0 && strstr(out, "1:50"), "exit %d: %s", st, out);
}
END_TEST

/* The same bits for any team size (PROBE_THREADS), estimates included. */
START_TEST(test_any_team_size) {
    static char first[sizeof out];
    for (int t = 1; t <= 3; t++) {
        int st = run_cmdf(out, sizeof out, "PROBE_THREADS=%d '%s' " BASE " --model " MODELS
                          "odd-f16 --sweep neurons --verify 2 --no-db", t, probe_bin());
        ck_assert_msg(st == 0, "PROBE_THREADS=%d: exit %d: %s", t, st, out);
        /* drop the timings: everything else must match */
        cJSON *j = cJSON_Parse(out);
        ck_assert_msg(j != NULL, "%s", out);
        cJSON_DeleteItemFromObjectCaseSensitive(j, "seconds");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "sweep"), "seconds");
        char *text = cJSON_PrintUnformatted(j);
        snprintf(out, sizeof out, "%s", text);
        free(text);
        cJSON_Delete(j);
        if (t == 1)
            snprintf(first, sizeof first, "%s", out);
        else
            ck_assert_msg(!strcmp(first, out), "PROBE_THREADS=%d differs from 1", t);
    }
}
END_TEST

/* Each misuse: one line, exit 2. */
START_TEST(test_bad_options) {
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"--sweep neurons --layer 0 --neurons 0:1", "--layer L (estimates) or --neurons LIST (each measured), not both"},
        {"--sweep layers --verify 3", "--verify applies to --sweep neurons"},
        {"--sweep neurons --neurons 0:1 --verify 3", "--verify applies to --sweep neurons"},
        {"--layer 0 --no-ffn", "--layer also to --sweep neurons"},
        {"--sweep neurons --layer 7", "--layer 7 out of range 0..1"},
        {"--sweep neurons --neurons 0:999", "0:999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = run_probe(out, sizeof out, "ablate " FIX "/corpus.txt --model " MODELS "tiny-f32 --no-db %s",
                           cases[i].args);
        ck_assert_msg(st == 2 && strstr(out, cases[i].says), "'%s': exit %d: %s", cases[i].args, st, out);
        ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "'%s': not one line: %s", cases[i].args, out);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("neuron_sweep");
    TCase *c = case_add(s, "estimates", 120,
                        (const TTest *[]){test_estimates_gelu_first_layer, test_estimates_gelu_last_layer, test_estimates_every_layer, test_estimates_gelu_erf, test_estimates_attention_scaled_by_layer,
                                          test_estimates_long_windows,
                                          test_estimates_relu, test_estimates_mean_mode,
                                          test_verified_equal_single_ablation, test_start_layer_bit_exact,
                                          test_stored_and_ranked, test_any_team_size, test_bad_options, NULL});
    tcase_add_checked_fixture(c, setup, teardown);
    return run_suite(s);
}
