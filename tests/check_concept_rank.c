/* check_concept_rank.c — concept ranking (top-neurons --concept/--probe/--words):
 * the activation grid of the record-time histograms (scalar and vector
 * binning, 16-bit counts carried into a side table), the AUROC formula and
 * its bound against a brute-force count, a planted neuron that fires only
 * on the concept's tokens and must come first with AUROC 1, the control
 * probe centring near 0.5 on the demo model, and the errors a user meets.
 * (Every score against an independent Python reference computed from trace
 * arrays: check_concept_scores.c.) */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "act_hist.h"
#include "concept_score.h"
#include "model.h"
#include "recorder.h"
#include "tokenizer.h"

static char tmpdir[256];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_concept_rank"); }
static void teardown(void) { tmpdir_remove(tmpdir); }

/* ---- the grid ------------------------------------------------------------- */

/* Bins never decrease as the value grows, over every region and edge; the
 * fraction stays in [0, 1]; each bin's stated lower edge falls in that bin
 * (catches an off-by-one between act_hist_locate and act_hist_edges, and a
 * region boundary that puts a larger value in a lower bin). */
START_TEST(test_grid_monotone) {
    /* a geometric walk over each side: |x| changes by 0.01% a step */
    int prev = act_hist_bin(-INFINITY);
    ck_assert_int_eq(prev, 0);
    for (float x = -1.0f; x < -1e-30f; x *= 0.9999f) {
        double f;
        int bin = act_hist_locate(x, &f);
        ck_assert_msg(bin >= prev, "%.9g -> bin %d after bin %d", x, bin, prev);
        ck_assert_msg(f >= 0 && f <= 1, "%.9g: fraction %g", x, f);
        prev = bin;
    }
    ck_assert_int_eq(act_hist_bin(0.0f), ACT_HIST_ZERO_BIN);
    ck_assert_int_eq(act_hist_bin(-0.0f), ACT_HIST_ZERO_BIN);
    ck_assert_int_gt(ACT_HIST_ZERO_BIN, prev);
    prev = ACT_HIST_ZERO_BIN;
    for (float x = 1e-30f; x < 2000.0f; x *= 1.0001f) {
        double f;
        int bin = act_hist_locate(x, &f);
        ck_assert_msg(bin >= prev, "%.9g -> bin %d after bin %d", x, bin, prev);
        ck_assert_msg(f >= 0 && f <= 1, "%.9g: fraction %g", x, f);
        prev = bin;
    }
    ck_assert_int_eq(prev, ACT_HIST_BINS - 1);
    ck_assert_int_eq(act_hist_bin(INFINITY), ACT_HIST_BINS - 1);
    ck_assert_int_eq(act_hist_bin(NAN), 0);
    /* region edges: the floats on either side of each edge keep the order */
    static const float edges[] = {-0.1701f, -0.03125f, -0x1p-20f, 0x1p-20f, 0.125f, 8.0f, 64.0f, 512.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        float e = edges[i], lo = nextafterf(e, -INFINITY), hi = nextafterf(e, INFINITY);
        ck_assert_msg(act_hist_bin(lo) <= act_hist_bin(e) && act_hist_bin(e) <= act_hist_bin(hi),
                      "edge %g: bins %d %d %d", e, act_hist_bin(lo), act_hist_bin(e), act_hist_bin(hi));
    }
    /* every bin's stated lower edge lies in it (the spike bins, cut by a
     * float sqrt, to within one bin) and every bin is used by some value */
    for (int b = 1; b < ACT_HIST_BINS; b++) {
        double lo, hi;
        act_hist_edges(b, &lo, &hi);
        ck_assert_msg(lo <= hi, "bin %d: [%g, %g)", b, lo, hi);
        if (b == ACT_HIST_ZERO_BIN + 1) continue; /* (0, 2^-20): its edge 0 is the zero bin's */
        float x = (float)lo;
        if ((double)x < lo) x = nextafterf(x, INFINITY);
        int got = act_hist_bin(x);
        ck_assert_msg(got == b || (b <= 400 && abs(got - b) <= 1), "bin %d: its lower edge %.9g is in bin %d", b, lo,
                      got);
    }
}
END_TEST

/* The recorder's vector binning (act_hist_bins) gives act_hist_bin's bin for
 * every float near a region or bin edge (64 bit patterns either side), the
 * special values, and a stride through all 2^32 bit patterns (a full sweep
 * agreed when the vector code was written: AVX-512 and AVX2, 8.7 s). Odd
 * lengths exercise the scalar tail. */
static void bins_agree(const float *x, int n) {
    int32_t got[97];
    act_hist_bins(x, n, got);
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        ck_assert_msg(got[i] == act_hist_bin(x[i]), "bits %08x (%g): vector bin %d, scalar %d", u, x[i], got[i],
                      act_hist_bin(x[i]));
    }
}

static void bins_around(float e) {
    float x[97];
    uint32_t u;
    memcpy(&u, &e, 4);
    for (int i = 0; i < 97; i++) {
        uint32_t v = u + (uint32_t)(i - 48);
        memcpy(&x[i], &v, 4);
    }
    bins_agree(x, 97);
}

START_TEST(test_vector_bins) {
    for (int b = 1; b < ACT_HIST_BINS; b++) {
        double lo, hi;
        act_hist_edges(b, &lo, &hi);
        if (isfinite(lo)) {
            bins_around((float)lo);
            bins_around(-(float)lo); /* the mirror value, in the other sign's regions */
        }
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 0x1p-149f, -0x1p-149f, 0x1p-20f, -0x1p-20f,
                             0x1p-5f, -0x1p-5f, -0.1701f, 0.1701f, 512.0f, 64.0f, 8.0f, 0.125f, FLT_MAX, -FLT_MAX};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) bins_around(special[i]);
    uint32_t nan_bits[] = {0x7f800001u, 0xff800001u, 0x7fffffffu, 0xffffffffu, 0x7fc00000u, 0xffc00000u, 0x7f800000u};
    float x[97];
    for (size_t i = 0; i < sizeof nan_bits / sizeof *nan_bits; i++) memcpy(&x[i], &nan_bits[i], 4);
    bins_agree(x, (int)(sizeof nan_bits / sizeof *nan_bits));
    for (uint64_t u = 0; u < (1ull << 32);) {
        int n = 0;
        for (; n < 97 && u < (1ull << 32); n++, u += 40009) {
            uint32_t v = (uint32_t)u;
            memcpy(&x[n], &v, 4);
        }
        bins_agree(x, n);
    }
}
END_TEST

/* The recorder keeps 16-bit counts and carries 32,768 at a time into a
 * side table: a bin that passes 65,535 tokens (twice, for one neuron in the
 * 16-neuron blocks and one in the scalar tail) still reads back exact,
 * through the saved state and into a fresh recorder that goes on counting. */
START_TEST(test_hist_counts_wrap) {
    enum { F = 17, T = 1024, ROUNDS = 130 }; /* 133,120 tokens */
    char err[256] = "";
    Recorder *r = recorder_new(1, F, 4, 2, err);
    ck_assert_msg(r != NULL, "%s", err);
    float *act = malloc(sizeof(float) * T * F);
    int64_t *rows = malloc(sizeof(int64_t) * T);
    uint8_t *topk = malloc((size_t)T * 2 * RECORDER_TOPK_BYTES);
    ck_assert(act && rows && topk);
    int64_t row = 0;
    for (int k = 0; k < ROUNDS; k++) {
        for (int t = 0; t < T; t++) {
            rows[t] = row++;
            for (int j = 0; j < F; j++) /* neuron 0 and 16 always 1.0; the others alternate two values */
                act[(size_t)t * F + j] = (j == 0 || j == 16) ? 1.0f : ((t + j) % 2 ? 0.5f : -0.05f);
        }
        recorder_add(r, 0, act, T, rows, topk, NULL);
    }
    ck_assert(!recorder_failed(r));
    uint32_t h[ACT_HIST_BINS], h2[ACT_HIST_BINS];
    const uint32_t total = (uint32_t)T * ROUNDS;
    for (int j = 0; j < F; j++) {
        recorder_hist(r, 0, j, h);
        if (j == 0 || j == 16) {
            ck_assert_uint_eq(h[act_hist_bin(1.0f)], total);
        } else {
            ck_assert_uint_eq(h[act_hist_bin(0.5f)], total / 2);
            ck_assert_uint_eq(h[act_hist_bin(-0.05f)], total / 2);
        }
    }
    void *buf = malloc(recorder_state_size(r));
    ck_assert(buf != NULL);
    size_t len = recorder_state_save(r, 0, buf);
    Recorder *r2 = recorder_new(1, F, 4, 2, err);
    ck_assert_msg(r2 && recorder_state_load(r2, 0, buf, len, err) == 0, "%s", err);
    for (int j = 0; j < F; j++) {
        recorder_hist(r, 0, j, h);
        recorder_hist(r2, 0, j, h2);
        ck_assert_mem_eq(h, h2, sizeof h);
    }
    /* and the loaded recorder keeps counting past its loaded wraps */
    recorder_add(r2, 0, act, T, rows, topk, NULL);
    recorder_hist(r2, 0, 0, h);
    ck_assert_uint_eq(h[act_hist_bin(1.0f)], total + T);
    recorder_free(r);
    recorder_free(r2);
    free(buf);
    free(act);
    free(rows);
    free(topk);
}
END_TEST

/* ---- the AUROC from histograms ---------------------------------------------- */

static double exact_auroc(const float *x, const int *pos, int n) {
    double s = 0;
    int64_t n1 = 0, n0 = 0;
    for (int i = 0; i < n; i++) {
        if (pos[i]) n1++;
        else n0++;
    }
    for (int i = 0; i < n; i++)
        if (pos[i])
            for (int k = 0; k < n; k++)
                if (!pos[k]) s += x[i] > x[k] ? 1.0 : x[i] == x[k] ? 0.5 : 0.0;
    return s / ((double)n1 * (double)n0);
}

/* The histogram AUROC is within its bound of the brute-force AUROC, for
 * overlapping, separated, tied (ReLU zeros) and GELU-shaped data; perfect
 * separation gives exactly 1 with bound 0. */
START_TEST(test_auroc_bound_holds) {
    enum { N = 3000 };
    static float x[N];
    static int pos[N];
    static uint32_t all[ACT_HIST_BINS], pc[ACT_HIST_BINS];
    static double fs[ACT_HIST_BINS];
    uint64_t seed = 12345;
    for (int kind = 0; kind < 7; kind++) {
        memset(all, 0, sizeof all);
        memset(pc, 0, sizeof pc);
        memset(fs, 0, sizeof fs);
        int64_t n1 = 0;
        for (int i = 0; i < N; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(seed >> 11) / 9007199254740992.0;
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            double v = (double)(seed >> 11) / 9007199254740992.0;
            double z = sqrt(-2 * log(u + 1e-12)) * cos(6.283185307 * v); /* normal */
            pos[i] = (seed >> 7) % 10 == 0;
            double pre = z - 1.0 + (pos[i] ? (kind == 1 ? 8.0 : 0.7) : 0.0);
            double gelu = 0.5 * pre * (1 + tanh(0.7978845608 * (pre + 0.044715 * pre * pre * pre)));
            /* 5, 6: one bin [lo, hi) of the positive side; the positives spread
             * over it, the negatives all at its lower (5) or upper (6) edge:
             * the worst case for the estimate, which the bound must still cover */
            double lo, hi;
            act_hist_edges(act_hist_bin(1.0f), &lo, &hi);
            if (kind >= 5) {
                x[i] = pos[i] ? (float)(lo + (hi - lo) * (0.05 + 0.9 * u)) : (float)(kind == 5 ? lo + (hi - lo) * 1e-4 : hi - (hi - lo) * 1e-4);
                n1 += pos[i];
                continue;
            }
            x[i] = kind == 2 ? (float)(pre > 0 ? pre : 0) /* ReLU: many exact zeros */
                   : kind == 3 ? (float)(round(gelu * 64) / 64) /* coarse values: ties */
                   : kind == 4 ? (float)(pos[i] ? 0.5 : -0.01) /* two values: every pair tied or separated */
                               : (float)gelu;
            n1 += pos[i];
        }
        for (int i = 0; i < N; i++) {
            double f;
            int b = act_hist_locate(x[i], &f);
            all[b]++;
            if (pos[i]) {
                pc[b]++;
                fs[b] += f;
            }
        }
        double err;
        int mismatch = 0;
        double got = concept_auroc_from_hist(all, pc, fs, n1, N, &err, &mismatch);
        double want = exact_auroc(x, pos, N);
        ck_assert_msg(fabs(got - want) <= err + 1e-12, "kind %d: auroc %.6f, exact %.6f, bound %.6f", kind, got, want,
                      err);
        if (kind < 5 && kind != 3) ck_assert_msg(err < 0.01, "kind %d: bound %.6f", kind, err); /* (3: ties inside bins) */
        if (kind >= 5) /* the bound is tight: the estimate misses by nearly all of it */
            ck_assert_msg(fabs(got - want) >= 0.9 * err && err > 0.4, "kind %d: auroc %.6f, exact %.6f, bound %.6f",
                          kind, got, want, err);
        ck_assert_int_eq(mismatch, 0);
        if (kind == 1 || kind == 4) {
            ck_assert_msg(got == 1.0 && err == 0.0, "kind %d: separated: auroc %.9f bound %.9f", kind, got, err);
        }
    }
}
END_TEST

/* ---- a planted neuron ---------------------------------------------------------- */

/* A tensor's float32 data inside a safetensors file read into memory. */
static float *tensor_f32(char *data, size_t n, const char *name, long *count) {
    size_t len;
    float *t = (float *)tensor_data(data, n, name, &len);
    *count = (long)(len / 4);
    return t;
}

/* Layer 0's neuron 77 of the random tiny model, rebuilt to fire only on the
 * tokens " walked" and " jumped": their embeddings get +40 in dimension 5
 * (far above the random init, so ln_2 maps it near sqrt(32)),
 * every other token and position 0 there, and nothing else writes
 * dimension 5 before the FFN (attention's output projection row 5 and bias
 * 5 zeroed); ln_2 passes dimension 5 through (gain 1, bias 0), and the
 * neuron reads dimension 5 alone with weight 2 and bias -6. So the concept's
 * tokens get a pre-activation near +5 and all others near -6: the neuron
 * must rank first with AUROC exactly 1 and a large d. */
START_TEST(test_planted_neuron_first) {
    char model[512], out[65536];
    snprintf(model, sizeof model, "%s", path_in(tmpdir, "planted"));
    ck_assert_int_eq(mkdir(model, 0755), 0);
    model_copy(path_in(repo_root(), "tests/fixtures/models/tiny-f32"), model);
    /* the ids of the two words, from the tokenizer */
    char err[PROBE_ERR_LEN];
    Tokenizer *tok = tok_load(path_in(model, "vocab.json"), path_in(model, "merges.txt"), err);
    ck_assert_msg(tok != NULL, "%s", err);
    TokBuf b = {0};
    int32_t ids[2];
    const char *words[2] = {" walked", " jumped"};
    for (int i = 0; i < 2; i++) {
        b.n = 0;
        ck_assert_int_eq(tok_encode(tok, words[i], strlen(words[i]), &b), 0);
        ck_assert_msg(b.n == 1, "'%s' is %zu tokens", words[i], b.n);
        ids[i] = b.ids[0];
    }
    tok_buf_free(&b);
    tok_free(tok);

    size_t n;
    const char *st = path_in(model, "model.safetensors");
    char *data = file_read(st, &n);
    long c;
    enum { C = 32, FF = 128, DIM = 5, NEURON = 77 };
    float *wte = tensor_f32(data, n, "wte.weight", &c), *wpe = tensor_f32(data, n, "wpe.weight", &c);
    for (long v = 0; v < 50257; v++) wte[v * C + DIM] = 0;
    for (int i = 0; i < 2; i++) wte[(long)ids[i] * C + DIM] = 40;
    for (long p = 0; p < c / C; p++) wpe[p * C + DIM] = 0;
    float *ap = tensor_f32(data, n, "h.0.attn.c_proj.weight", &c), *apb = tensor_f32(data, n, "h.0.attn.c_proj.bias", &c);
    for (int i = 0; i < C; i++) ap[i * C + DIM] = 0; /* [in, out] Conv1D layout */
    apb[DIM] = 0;
    float *g = tensor_f32(data, n, "h.0.ln_2.weight", &c), *be = tensor_f32(data, n, "h.0.ln_2.bias", &c);
    g[DIM] = 1;
    be[DIM] = 0;
    float *fc = tensor_f32(data, n, "h.0.mlp.c_fc.weight", &c), *fcb = tensor_f32(data, n, "h.0.mlp.c_fc.bias", &c);
    for (int i = 0; i < C; i++) fc[i * FF + NEURON] = i == DIM ? 2.0f : 0.0f;
    fcb[NEURON] = -6;
    file_write(st, data, n);
    free(data);

    const char *text = "She walked to the market and jumped over a puddle.\n\n"
                       "They walked home. The dog jumped, then it walked again.\n\n"
                       "Nobody walked or jumped today; we sat and read a book.\n\n"
                       "A cat sat on the mat. It jumped down and walked away slowly.\n\n"
                       "The rain stopped. Children walked out and jumped in the water.\n";
    const char *corpus = file_write(path_in(tmpdir, "corpus.txt"), text, strlen(text));
    const char *db = path_in(tmpdir, "planted.db");
    char q1[600], q2[600];
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db %s --model %s --quiet", sh_quote(q1, sizeof q1, corpus),
                               sh_quote(q2, sizeof q2, db), model),
                     0);
    int rc = run_probe(out, sizeof out, "top-neurons --words walked,jumped --db %s --model %s --json --limit 3",
                       sh_quote(q1, sizeof q1, db), model);
    ck_assert_msg(rc == 0, "%s", out);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert_int_eq((int)json_num(j, "concept_tokens"), 11);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "neurons"), 0);
    ck_assert_int_eq((int)json_num(first, "layer"), 0);
    ck_assert_int_eq((int)json_num(first, "neuron"), NEURON);
    ck_assert_msg(json_num(first, "auroc") == 1.0 && json_num(first, "auroc_error") == 0.0, "auroc %g +- %g",
                  json_num(first, "auroc"), json_num(first, "auroc_error"));
    ck_assert_msg(json_num(first, "cohen_d") > 10, "d = %g", json_num(first, "cohen_d"));
    ck_assert_msg(json_num(first, "mean_in") > 2 && fabs(json_num(first, "mean_out")) < 1e-3, "means %g %g",
                  json_num(first, "mean_in"), json_num(first, "mean_out"));
    /* its top examples are the concept's tokens: all 11 of them, then others */
    ck_assert_int_eq((int)json_num(first, "examples_in"), 11);
    cJSON_Delete(j);
    /* stored: the view ranks it first */
    ck_assert_int_eq(sql_int_at(db, "SELECT neuron FROM concept_top_neurons WHERE rank = 1 AND layer = 0"), NEURON);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM concept_scores"), 2 * FF);

    /* the causal check: the planted neuron writes (through c_proj) only at
     * the concept's tokens, so ablating it moves the loss of the token after
     * each of them far more than elsewhere (where only attention carries the
     * change on), and far more than random neurons of layer 0 do there */
    rc = run_probe(out, sizeof out, "ablate --words walked,jumped --top 1 --seeds 2 --db %s --model %s --json --quiet",
                   sh_quote(q1, sizeof q1, db), model);
    ck_assert_msg(rc == 0, "%s", out);
    j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    cJSON *sets = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "concept"), "sets");
    ck_assert_int_eq(cJSON_GetArraySize(sets), 3);
    cJSON *top = cJSON_GetArrayItem(sets, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(top, "neurons")->valuestring, "0:77");
    ck_assert_int_eq((int)json_num(top, "tokens_in"), 11);
    ck_assert_int_eq((int)json_num(top, "tokens_after"), 11); /* no concept token ends a document */
    double after = fabs(json_num(top, "dloss_after"));
    ck_assert_msg(after > 5 * fabs(json_num(top, "dloss_out")), "after %g, elsewhere %g", after,
                  json_num(top, "dloss_out"));
    for (int i = 1; i < 3; i++) {
        cJSON *r = cJSON_GetArrayItem(sets, i);
        ck_assert_str_eq(cJSON_GetObjectItem(r, "role")->valuestring, "random");
        ck_assert_msg(strncmp(cJSON_GetObjectItem(r, "neurons")->valuestring, "0:", 2) == 0, "same layer");
        ck_assert_msg(after > 5 * fabs(json_num(r, "dloss_after")), "concept %g, random %g", after,
                      json_num(r, "dloss_after"));
    }
    cJSON_Delete(j);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_concept"), 3);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM ablation_concept WHERE role = 'random'"), 2);
}
END_TEST

/* ---- errors -------------------------------------------------------------------- */

/* A concept whose words never occur, a missing concept, a model that is not
 * the run's, conflicting options: one line each, non-zero exit, nothing
 * stored. */
START_TEST(test_errors) {
    char out[8192], q[600];
    const char *text = "The cat walked home.\n\nIt jumped.\n";
    const char *corpus = file_write(path_in(tmpdir, "c.txt"), text, strlen(text));
    const char *db = path_in(tmpdir, "e.db");
    const char *tiny = path_in(repo_root(), "tests/fixtures/models/tiny-f32");
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db %s --model %s --quiet", corpus, db, tiny), 0);
    sh_quote(q, sizeof q, db);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words zyzzyva,qwxz --model %s", q, tiny), 1);
    ck_assert_msg(strstr(out, "never occurs") && strstr(out, "probe top-neurons:"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --concept no_such_concept", q), 2);
    ck_assert_msg(strstr(out, "no concept 'no_such_concept'"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words walked --model %s/models/demo", q,
                               repo_root()),
                     1);
    ck_assert_msg(strstr(out, "is not the model run 1 recorded"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words walked --concept x", q), 2);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words walked --by max", q), 2);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --drop participle", q), 2);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM concept_runs"), 0);
    /* and it works */
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words walked --model %s --layer 1", q, tiny), 0);
    ck_assert_msg(strstr(out, "concept 'words'") && strstr(out, "1 tokens end a concept word"), "%s", out);
    ck_assert_int_eq(sql_int_at(db, "SELECT count(*) FROM concept_scores"), 128);
}
END_TEST

/* ---- --exact ------------------------------------------------------------------------ */

/* Records the concept-score fixture corpus with the tiny model into
 * tmpdir/NAME: *db is its path, q its shell-quoted form; returns the model. */
static const char *record_fixture(const char *name, const char **db, char *q, size_t qn) {
    char out[1 << 12];
    const char *tiny = path_in(repo_root(), "tests/fixtures/models/tiny-f32");
    *db = path_in(tmpdir, name);
    sh_quote(q, qn, *db);
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s --db %s --model %s --quiet",
                               path_in(repo_root(), "tests/fixtures/concept_scores/corpus.txt"), q, tiny),
                     0);
    return tiny;
}

/* Whether two ranking rows (JSON) are the same neuron. */
static int same_neuron(const cJSON *f, const cJSON *e) {
    return json_num(f, "layer") == json_num(e, "layer") && json_num(f, "neuron") == json_num(e, "neuron");
}

/* --exact replaces the listed neurons' AUROC by the exact one (bound 0),
 * within the histogram estimate's bound of it; the stored rows then agree
 * with the independent reference to 1e-9 (scripts/reference/concept_scores.py
 * checks |stored - exact| <= auroc_error + 1e-9). */
START_TEST(test_exact_auroc) {
    python3_require("the reference is NumPy through /usr/bin/python3");
    char out[1 << 16], q[600];
    const char *db;
    const char *tiny = record_fixture("exact.db", &db, q, sizeof q);
    ck_assert_int_eq(run_probe(out, sizeof out,
                               "top-neurons --db %s --words walked,went,said --model %s --json --limit 12 --max-error 1",
                               q, tiny),
                     0);
    cJSON *est = cJSON_Parse(out);
    ck_assert_msg(est != NULL, "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out,
                               "top-neurons --db %s --words walked,went,said --model %s --json --limit 12 --exact", q, tiny),
                     0);
    cJSON *ex = cJSON_Parse(out);
    ck_assert_msg(ex != NULL, "%s", out);
    cJSON *a = cJSON_GetObjectItem(est, "neurons"), *b = cJSON_GetObjectItem(ex, "neurons");
    ck_assert_int_eq(cJSON_GetArraySize(b), 12);
    int same = 0;
    for (int i = 0; i < 12; i++) {
        cJSON *e = cJSON_GetArrayItem(b, i);
        ck_assert_msg(json_num(e, "auroc_error") == 0.0, "exact rows have bound 0");
        for (int k = 0; k < cJSON_GetArraySize(a); k++) {
            cJSON *f = cJSON_GetArrayItem(a, k);
            if (!same_neuron(f, e)) continue;
            ck_assert_msg(fabs(json_num(f, "auroc") - json_num(e, "auroc")) <= json_num(f, "auroc_error") + 1e-12,
                          "%g:%g estimate %.6f +- %.6f, exact %.6f", json_num(e, "layer"), json_num(e, "neuron"),
                          json_num(f, "auroc"), json_num(f, "auroc_error"), json_num(e, "auroc"));
            same++;
        }
    }
    ck_assert_int_gt(same, 6);
    long long cid = (long long)json_num(ex, "concept_run");
    cJSON_Delete(est);
    cJSON_Delete(ex);
    int st = run_cmdf(out, sizeof out,
                      "/usr/bin/python3 '%s/scripts/reference/concept_scores.py' --db '%s' --concept-run %lld "
                      "--probe-bin '%s' --model '%s' --words walked,went,said",
                      repo_root(), db, cid, probe_bin(), tiny);
    ck_assert_msg(st == 0, "reference on the --exact ranking: %s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --exact", q), 2);
}
END_TEST

/* With one scored layer the ranking keeps that layer's activations of the
 * windows it replays (ConceptKeep), and the exact AUROC replays only the
 * windows it lacks: the same AUROCs, bit for bit, as a replay of every
 * window, from fewer windows run. */
START_TEST(test_exact_from_kept_layer) {
    char q[600], err[PROBE_ERR_LEN];
    const char *db;
    const char *tiny = record_fixture("kept.db", &db, q, sizeof q);
    Store *s = store_open(db, STORE_WRITE, err);
    ck_assert_msg(s != NULL, "%s", err);
    Model *m = model_load(tiny, err);
    ck_assert_msg(m != NULL, "%s", err);
    Concept *c = NULL;
    ck_assert_msg(concept_from_words("walked,went,said", &c, err) == 0, "%s", err);
    const int F = m->cfg.n_inner, layer = 1, n = 16;
    ConceptScore *sc = malloc(sizeof *sc * (size_t)F), a[16], b[16];
    ConceptTotals t, ta, tb;
    ConceptKeep keep = {0};
    ck_assert_msg(concept_score(s, 1, m, c, &layer, 1, sc, &t, &keep, NULL, NULL, err) == 0, "%s", err);
    ck_assert_msg(keep.val != NULL && keep.layer == 1 && keep.n == t.tokens, "the layer was not kept");
    for (int i = 0; i < n; i++) a[i] = b[i] = sc[(size_t)i * (size_t)(F / n)];
    ck_assert_msg(concept_score_exact(s, 1, m, c, a, n, NULL, &ta, NULL, NULL, err) == 0, "%s", err);
    ck_assert_msg(concept_score_exact(s, 1, m, c, b, n, &keep, &tb, NULL, NULL, err) == 0, "%s", err);
    for (int i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i].auroc, &b[i].auroc, sizeof a[i].auroc) == 0 && b[i].auroc_error == 0.0,
                      "neuron %d: exact AUROC %.17g from every window, %.17g from the kept ones", a[i].neuron,
                      a[i].auroc, b[i].auroc);
    ck_assert_int_eq(ta.windows_replayed, t.windows);
    ck_assert_msg(tb.windows_replayed == ta.windows_replayed - t.windows_replayed,
                  "the exact pass ran %lld windows; %lld of %lld were kept", (long long)tb.windows_replayed,
                  (long long)t.windows_replayed, (long long)ta.windows_replayed);
    ck_assert_int_gt(t.windows_replayed, 0);
    /* scores of another layer than the kept one: every window again */
    for (int i = 0; i < n; i++) a[i].layer = 0;
    ck_assert_msg(concept_score_exact(s, 1, m, c, a, n, &keep, &ta, NULL, NULL, err) == 0, "%s", err);
    ck_assert_int_eq(ta.windows_replayed, t.windows);
    concept_keep_free(&keep);
    free(sc);
    concept_free(c);
    model_free(m);
    store_close(s);
}
END_TEST

/* --max-error E (default 0.002): every listed neuron whose bound exceeds E
 * gets its exact AUROC (bound 0, within the estimate's bound of it); the
 * others keep the estimate. E is set between the listed bounds so that both
 * kinds occur. Bad values and combinations are usage errors. */
START_TEST(test_max_error) {
    char out[1 << 16], q[600];
    const char *db;
    const char *tiny = record_fixture("maxerr.db", &db, q, sizeof q);
    const char *cmd = "top-neurons --db %s --words walked,went,said --model %s --json --limit 12 --max-error %s";
    ck_assert_int_eq(run_probe(out, sizeof out, cmd, q, tiny, "1"), 0);
    cJSON *est = cJSON_Parse(out);
    ck_assert_msg(est != NULL, "%s", out);
    cJSON *a = cJSON_GetObjectItem(est, "neurons");
    double lo = 1, hi = 0;
    for (int i = 0; i < cJSON_GetArraySize(a); i++) {
        double e = json_num(cJSON_GetArrayItem(a, i), "auroc_error");
        if (e > 0 && e < lo) lo = e;
        if (e > hi) hi = e;
    }
    ck_assert_msg(lo < hi, "the listed bounds should differ (%g..%g)", lo, hi);
    char e_arg[32];
    snprintf(e_arg, sizeof e_arg, "%.9g", (lo + hi) / 2);
    ck_assert_int_eq(run_probe(out, sizeof out, cmd, q, tiny, e_arg), 0);
    cJSON *got = cJSON_Parse(out);
    ck_assert_msg(got != NULL, "%s", out);
    cJSON *b = cJSON_GetObjectItem(got, "neurons");
    int replaced = 0, kept = 0;
    for (int k = 0; k < cJSON_GetArraySize(a); k++) {
        cJSON *f = cJSON_GetArrayItem(a, k);
        for (int i = 0; i < cJSON_GetArraySize(b); i++) {
            cJSON *e = cJSON_GetArrayItem(b, i);
            if (!same_neuron(f, e)) continue;
            if (json_num(f, "auroc_error") > atof(e_arg)) {
                ck_assert_msg(json_num(e, "auroc_error") == 0.0, "a row over the bound is exact");
                ck_assert(fabs(json_num(f, "auroc") - json_num(e, "auroc")) <= json_num(f, "auroc_error") + 1e-12);
                replaced++;
            } else {
                ck_assert(json_num(e, "auroc") == json_num(f, "auroc"));
                ck_assert(json_num(e, "auroc_error") == json_num(f, "auroc_error"));
                kept++;
            }
        }
    }
    ck_assert_msg(replaced > 0 && kept > 0, "replaced %d, kept %d", replaced, kept);
    cJSON_Delete(est);
    cJSON_Delete(got);
    /* the table says what it replayed */
    ck_assert_int_eq(run_probe(out, sizeof out,
                               "top-neurons --db %s --words walked,went,said --model %s --limit 12 --max-error %s", q,
                               tiny, e_arg),
                     0);
    ck_assert_msg(strstr(out, "listed neurons whose bound exceeds"), "%s", out);
    const char *bad[] = {"--max-error 2", "--max-error x", "--max-error -0.1", "--exact --max-error 0.1"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --words walked --model %s %s", q, tiny, bad[i]),
                         2);
        ck_assert_msg(strstr(out, "--max-error") || strstr(out, "--exact"), "%s: %s", bad[i], out);
    }
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --max-error 0.1", q), 2);
    ck_assert_msg(strstr(out, "--max-error needs --concept"), "%s", out);
}
END_TEST

/* ---- the control on the demo model ------------------------------------------------ */

/* The control probe (words sampled to match past tense verbs' frequency
 * profile) has no neuron of its own: over a layer of the demo model its
 * AUROCs centre near 0.5, while the past tense concept's best neuron is far
 * above the control's median. */
START_TEST(test_control_centres) {
    char out[1 << 16], q[600];
    const char *db = path_in(tmpdir, "demo.db");
    sh_quote(q, sizeof q, db);
    ck_assert_int_eq(run_probe(out, sizeof out, "record %s/examples/heldout_mobydick.txt --db %s --quiet --layers 3",
                               repo_root(), q),
                     0);
    ck_assert_int_eq(run_probe(out, sizeof out, "top-neurons --db %s --concept control_random_words --json --limit 1",
                               q),
                     0);
    sqlite3 *h = sql_open(db);
    /* the median AUROC of the layer */
    long long n = sql_int(h, "SELECT count(*) FROM concept_scores WHERE auroc IS NOT NULL");
    ck_assert_int_gt(n, 100);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT CAST(auroc * 1e6 AS INTEGER) FROM concept_scores ORDER BY auroc LIMIT 1 OFFSET %lld",
             n / 2);
    double median = (double)sql_int(h, sql) / 1e6;
    ck_assert_msg(fabs(median - 0.5) < 0.08, "control median AUROC %.4f", median);
    sqlite3_close(h);
}
END_TEST

int main(void) {
    Suite *s = suite_create("concept_rank");
    TCase *tc = case_add(s, "concept_rank", 300,
                         (const TTest *[]){test_grid_monotone, test_vector_bins, test_hist_counts_wrap, test_auroc_bound_holds, test_planted_neuron_first,
                                           test_errors, test_exact_auroc, test_exact_from_kept_layer, test_max_error, test_control_centres, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
