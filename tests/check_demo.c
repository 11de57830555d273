/* check_demo.c — the bundled default model (models/demo) as the C engine
 * sees it: probe's held-out loss on examples/heldout_mobydick.txt must equal
 * the PyTorch figure written by scripts/model/train_demo_model.py into
 * models/demo/heldout_eval.json within 1e-3 nats, under the protocol stated
 * there (the file tokenized as one string, no <|endoftext|>, consecutive
 * non-overlapping windows of ctx tokens, each window's first token not
 * scored). And the loss must beat the unigram baseline. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "logits.h"
#include "model.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_heldout_loss_matches_pytorch) {
    char err[PROBE_ERR_LEN];
    size_t tlen;
    cJSON *ev = json_load("models/demo/heldout_eval.json");
    double want = json_num(ev, "loss");
    double unigram = json_num(ev, "unigram_loss");
    int want_tokens = (int)json_num(ev, "tokens");
    int ctx = (int)json_num(ev, "ctx");
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "file"));
    ck_assert_msg(file != NULL, "heldout_eval.json names no file");
    char *text = file_read(file, &tlen);

    Model *m = model_load("models/demo", err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_ge(m->cfg.n_layer, 6); /* --layer 5 exists */
    TokBuf b = {0};
    ck_assert(tok_encode(m->tok, text, tlen, &b) == 0);
    int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)ctx * V);
    ck_assert(logits != NULL);
    double sum = 0;
    int scored = 0;
    for (size_t w = 0; w < b.n; w += (size_t)ctx) {
        int T = b.n - w < (size_t)ctx ? (int)(b.n - w) : ctx;
        ck_assert_msg(model_forward(m, b.ids + w, T, NULL, logits, err) == 0, "%s", err);
        for (int t = 0; t + 1 < T; t++) {
            const float *row = logits + (size_t)t * V;
            sum += logits_nll(row, V, b.ids[w + t + 1]);
            scored++;
        }
    }
    double loss = sum / scored;
    fprintf(stderr, "demo held-out: probe %.6f, pytorch %.6f, unigram %.6f over %d tokens\n", loss, want,
            unigram, scored);
    ck_assert_int_eq(scored, want_tokens);
    ck_assert_msg(fabs(loss - want) < 1e-3, "probe %.6f vs pytorch %.6f", loss, want);
    ck_assert_msg(loss < unigram - 0.5, "model %.3f does not beat unigram %.3f", loss, unigram);
    free(logits);
    tok_buf_free(&b);
    model_free(m);
    free(text);
    cJSON_Delete(ev);
}
END_TEST

/* `probe predict` on the bundled default model (no --model) against the
 * float64 NumPy reference of scripts/reference/eval_demo_model.py --predict
 * (tests/fixtures/demo/predict.json, regenerated whenever models/demo
 * changes): the same top-10 ids in the same order (near-ties excepted) and
 * probabilities within 1e-5 absolute. */
START_TEST(test_predict_and_info_on_default_model) {
    char out[16384];
    ck_assert_int_eq(run_cmdf(out, sizeof out, "env -u PROBE_MODEL %s info", probe_bin()), 0);
    ck_assert_msg(strstr(out, "models/demo") != NULL, "%s", out);

    cJSON *ref = json_load("tests/fixtures/demo/predict.json");
    const char *prompt = cJSON_GetObjectItem(ref, "prompt")->valuestring;
    cJSON *want = cJSON_GetObjectItem(ref, "top");
    ck_assert_int_eq(cJSON_GetArraySize(want), 10);
    ck_assert(strchr(prompt, '\'') == NULL);
    ck_assert_int_eq(run_cmdf(out, sizeof out, "env -u PROBE_MODEL %s predict --json '%s' 2>/dev/null", probe_bin(),
                              prompt), 0);
    cJSON *got = cJSON_Parse(out);
    ck_assert_msg(got != NULL && cJSON_GetArraySize(got) == 10, "%s", out);
    for (int i = 0; i < 10; i++) {
        cJSON *w = cJSON_GetArrayItem(want, i), *g = cJSON_GetArrayItem(got, i);
        int wid = (int)json_num(w, "id"), gid = (int)json_num(g, "id");
        double wp = json_num(w, "prob"), gp = json_num(g, "prob");
        ck_assert_int_eq((int)json_num(g, "rank"), i + 1);
        double gap_prev = i > 0 ? json_num(cJSON_GetArrayItem(want, i - 1), "prob") - wp : 1;
        double gap_next = i < 9 ? wp - json_num(cJSON_GetArrayItem(want, i + 1), "prob") : 1;
        if (gap_prev > 2e-5 && gap_next > 2e-5)
            ck_assert_msg(gid == wid, "rank %d: probe says id %d, the reference %d", i + 1, gid, wid);
        ck_assert_msg(fabs(gp - wp) < 1e-5, "rank %d: probe p = %.7f, the reference %.7f", i + 1, gp, wp);
    }
    cJSON_Delete(got);
    cJSON_Delete(ref);
}
END_TEST

int main(void) {
    Suite *s = suite_create("demo");
    case_add(s, "demo", 300,
             (const TTest *[]){test_heldout_loss_matches_pytorch, test_predict_and_info_on_default_model, NULL});
    return run_suite(s);
}
