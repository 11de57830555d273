/* check_loader.c — safetensors reader, config.json, model_load, probe info.
 *
 * Good input: the committed checkpoints tests/fixtures/models/tiny-* (made by
 * scripts/fixtures/make_checkpoint.py) are loaded and every tensor is compared with
 * the statistics the generator computed from the values it stored
 * (tests/fixtures/loader/NAME.sums.json). A GPT-2-small-shaped checkpoint is
 * built at test time as a sparse file (header + holes: 548 MB that take no
 * disk and are never read) for `probe info`'s parameter counts.
 *
 * Bad input (SPEC 11): each case writes a corrupted copy of tiny-f32 into a
 * temporary directory and asserts the one-line error text of model_load and
 * the exit status and message of `probe info`. */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "testutil.h"
#include "util.h"

#define MODELS "tests/fixtures/models"
#define SUMS "tests/fixtures/loader"

/* ---- temporary model directories ------------------------------------- */

static void tmp_make(char *dir) { tmpdir_make(dir, 64, "check_loader"); }

static void write_text(const char *dir, const char *file, const char *text) {
    file_write(path_in(dir, file), text, strlen(text));
}

/* dst/vocab.json and merges.txt -> the repository's tokenizer files. */
static void link_tokenizer(const char *dst) {
    static const char *files[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char src[PATH_MAX];
        const char *rel = path_in("models/gpt2-tokenizer", files[i]);
        ck_assert_msg(realpath(rel, src) != NULL, "missing %s", rel);
        ck_assert_int_eq(symlink(src, path_in(dst, files[i])), 0);
    }
}

/* A fresh copy of a committed fixture model in a new temporary directory. */
static void copy_model(const char *name, char *dir) {
    tmp_make(dir);
    static const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char src[600];
        snprintf(src, sizeof src, MODELS "/%s/%s", name, files[i]);
        file_copy(src, path_in(dir, files[i]));
    }
    link_tokenizer(dir);
}

/* Rewrites DIR/model.safetensors with its header edited by fn (the data
 * section is kept). The header is padded so that the data section starts at
 * 8 + hlen with hlen % 8 == pad_mod (0 is what writers do). */
typedef void (*HeaderEdit)(cJSON *header);

static void rewrite_header(const char *dir, HeaderEdit fn, int pad_mod) {
    const char *path = path_in(dir, "model.safetensors");
    size_t n;
    unsigned char *file = (unsigned char *)file_read(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | file[i];
    cJSON *h = cJSON_ParseWithLength((const char *)file + 8, hlen);
    ck_assert(h != NULL);
    if (fn) fn(h);
    char *js = cJSON_PrintUnformatted(h);
    size_t jl = strlen(js), nl = jl;
    while (nl % 8 != (size_t)pad_mod) nl++;
    size_t data_len = n - 8 - hlen;
    unsigned char *out = malloc(8 + nl + data_len);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)nl >> (8 * i));
    memcpy(out + 8, js, jl);
    memset(out + 8 + jl, ' ', nl - jl);
    memcpy(out + 8 + nl, file + 8 + hlen, data_len);
    file_write(path, out, 8 + nl + data_len);
    free(out);
    free(js);
    cJSON_Delete(h);
    free(file);
}

/* data_offsets of a tensor in the header */
static void offsets_of(cJSON *h, const char *name, double *b, double *e) {
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(h, name), "data_offsets");
    ck_assert(off != NULL);
    *b = cJSON_GetArrayItem(off, 0)->valuedouble;
    *e = cJSON_GetArrayItem(off, 1)->valuedouble;
}

static void set_offsets(cJSON *h, const char *name, double b, double e) {
    cJSON *t = cJSON_GetObjectItem(h, name);
    cJSON_ReplaceItemInObject(t, "data_offsets", cJSON_CreateDoubleArray((double[]){b, e}, 2));
}

/* ---- good input: the committed fixtures --------------------------------- */

/* Every tensor of the model against the generator's statistics: exact first
 * and last values, sums within float64 summation-order noise. Returns the
 * number of tensors checked. */
static int check_against_sums(const Model *m, const char *sums_file) {
    cJSON *root = json_load(sums_file);
    cJSON *tensors = cJSON_GetObjectItem(root, "tensors");
    int count = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        const float *p = model_weight(m, t->string);
        ck_assert_msg(p != NULL, "no pointer for %s", t->string);
        size_t numel = 1;
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape")) numel *= (size_t)d->valuedouble;
        double sum = 0, abs_sum = 0;
        for (size_t i = 0; i < numel; i++) {
            sum += p[i];
            abs_sum += fabs(p[i]);
        }
        double want = cJSON_GetObjectItem(t, "sum")->valuedouble;
        double want_abs = cJSON_GetObjectItem(t, "abs_sum")->valuedouble;
        ck_assert_msg(fabs(sum - want) <= 1e-9 * want_abs + 1e-12, "%s: sum %.12g, expected %.12g", t->string,
                      sum, want);
        ck_assert_msg(fabs(abs_sum - want_abs) <= 1e-9 * want_abs, "%s: abs sum %.12g, expected %.12g",
                      t->string, abs_sum, want_abs);
        int i = 0;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "first")) {
            ck_assert_msg(p[i] == (float)d->valuedouble, "%s[%d] = %.9g, expected %.9g", t->string, i,
                          (double)p[i], d->valuedouble);
            i++;
        }
        ck_assert(p[numel - 1] == (float)cJSON_GetObjectItem(t, "last")->valuedouble);
        count++;
    }
    cJSON_Delete(root);
    return count;
}

/* model_load (tokenizer too) or model_load_weights of dir, which must succeed. */
static Model *load_ok(const char *dir, int with_tokenizer) {
    char err[PROBE_ERR_LEN];
    Model *m = with_tokenizer ? model_load(dir, err) : model_load_weights(dir, err);
    ck_assert_msg(m != NULL, "%s: %s", dir, err);
    return m;
}

/* Every field of a loaded config against the one expected. */
static void expect_config(const ModelConfig *c, ModelConfig want) {
    ck_assert_int_eq(c->n_layer, want.n_layer);
    ck_assert_int_eq(c->n_embd, want.n_embd);
    ck_assert_int_eq(c->n_head, want.n_head);
    ck_assert_int_eq(c->n_inner, want.n_inner);
    ck_assert_int_eq(c->n_positions, want.n_positions);
    ck_assert_int_eq(c->vocab_size, want.vocab_size);
    ck_assert(c->layer_norm_epsilon == want.layer_norm_epsilon);
    ck_assert_int_eq(c->activation, want.activation);
    ck_assert_str_eq(c->activation_name, want.activation_name);
}

START_TEST(test_tiny_f32) {
    Model *m = load_ok(MODELS "/tiny-f32", 1);
    expect_config(&m->cfg, (ModelConfig){.n_layer = 2, .n_embd = 32, .n_head = 4,
                                         .n_inner = 128, /* null in config.json -> 4 * n_embd */
                                         .n_positions = 64, .vocab_size = 50257, .layer_norm_epsilon = 1e-5f,
                                         .activation = ACT_GELU_NEW, .activation_name = "gelu_new"});
    ck_assert_int_eq(m->tied, 1);
    ck_assert_ptr_eq(model_weight(m, "lm_head.weight"), model_weight(m, "wte.weight"));
    /* F32 is used in place: pointers into the map, nothing converted */
    ck_assert_ptr_null(model_converted(m));
    ck_assert_ptr_eq(model_weight(m, "wte.weight"), st_find(m->st, "wte.weight")->data);
    ck_assert_ptr_eq(model_weight(m, "h.1.mlp.c_fc.weight"), st_find(m->st, "h.1.mlp.c_fc.weight")->data);
    ck_assert_ptr_nonnull(m->tok);
    ck_assert_int_eq(model_scratch_slots(m), 1); /* scratch for the one-thread team */
    ck_assert_int_eq(check_against_sums(m, SUMS "/tiny-f32.sums.json"), 2 + 2 * 12 + 2);
    /* the attn.bias buffers are in the file, and ignored */
    ck_assert_ptr_nonnull(st_find(m->st, "h.0.attn.bias"));
    ck_assert_int_eq(st_count(m->st), 30);
    uint64_t ck = m->checksum;
    model_free(m);
    m = load_ok(MODELS "/tiny-f32", 0);
    ck_assert_ptr_null(m->tok);
    ck_assert_uint_eq(m->checksum, ck);
    model_free(m);
}
END_TEST

START_TEST(test_tiny_f16_prefix_untied) {
    Model *m = load_ok(MODELS "/tiny-f16-prefix", 1);
    const ModelConfig *c = &m->cfg;
    expect_config(c, (ModelConfig){.n_layer = 3, .n_embd = 48, .n_head = 3, .n_inner = 96 /* explicit */,
                                   .n_positions = 64, .vocab_size = 4096, .layer_norm_epsilon = 1e-5f,
                                   .activation = ACT_GELU, .activation_name = "gelu"});
    ck_assert_int_eq(m->tied, 0);
    const float *wte = model_weight(m, "wte.weight"), *lm_head = model_weight(m, "lm_head.weight");
    const float *conv = model_converted(m);
    ck_assert_ptr_ne(lm_head, wte);
    ck_assert_ptr_nonnull(conv);
    ck_assert_ptr_nonnull(st_find(m->st, "transformer.wte.weight"));
    ck_assert_ptr_null(st_find(m->st, "wte.weight"));
    ck_assert_int_eq(check_against_sums(m, SUMS "/tiny-f16-prefix.sums.json"), 2 + 3 * 12 + 2 + 1);
    /* all of it converted into one buffer: V*C*2 + P*C + layers + ln_f */
    ParamCounts pc = model_param_counts(c, 0);
    const float *lnf_b = model_weight(m, "ln_f.bias");
    ck_assert(wte >= conv && wte < conv + pc.total);
    ck_assert(lm_head >= conv && lm_head < conv + pc.total);
    ck_assert(lnf_b >= conv && lnf_b < conv + pc.total);
    model_free(m);
}
END_TEST

START_TEST(test_tiny_bf16_relu) {
    Model *m = load_ok(MODELS "/tiny-bf16-relu", 1);
    expect_config(&m->cfg, (ModelConfig){.n_layer = 2, .n_embd = 16, .n_head = 2, .n_inner = 64, .n_positions = 32,
                                         .vocab_size = 50257, .layer_norm_epsilon = 1e-6f, .activation = ACT_RELU,
                                         .activation_name = "relu"});
    ck_assert_int_eq(m->tied, 1);
    ck_assert_ptr_eq(model_weight(m, "lm_head.weight"), model_weight(m, "wte.weight"));
    ck_assert_ptr_nonnull(model_converted(m));
    ck_assert_int_eq(check_against_sums(m, SUMS "/tiny-bf16-relu.sums.json"), 2 + 2 * 12 + 2);
    model_free(m);
}
END_TEST

static void make_unaligned(cJSON *h) { (void)h; }

/* F32 data that is not 4-byte aligned in the map is copied, not used in place. */
START_TEST(test_unaligned_f32_is_copied) {
    char dir[64];
    copy_model("tiny-f32", dir);
    rewrite_header(dir, make_unaligned, 2); /* data starts at 8 + 8k + 2 */
    Model *m = load_ok(dir, 0);
    ck_assert_ptr_nonnull(model_converted(m));
    ck_assert_uint_eq((uintptr_t)st_find(m->st, "wte.weight")->data % 4, 2);
    ck_assert_uint_eq((uintptr_t)model_weight(m, "wte.weight") % 4, 0);
    ck_assert_int_eq(check_against_sums(m, SUMS "/tiny-f32.sums.json"), 28);
    model_free(m);
    tmpdir_remove(dir);
}
END_TEST

/* ---- conversions ------------------------------------------------------- */

START_TEST(test_f16_bf16_exact) {
    /* little-endian bytes, at an odd address to exercise unaligned reads */
    static const struct {
        uint16_t bits;
        float want;
    } f16[] = {
        {0x0000, 0.0f},         {0x3c00, 1.0f},          {0xc000, -2.0f},       {0x3555, 0.333251953125f},
        {0x7bff, 65504.0f},     {0x0400, 6.103515625e-05f}, /* smallest normal */
        {0x0001, 5.9604644775390625e-08f},                 /* 2^-24, smallest subnormal */
        {0x03ff, 6.097555160522461e-05f},                  /* largest subnormal 1023 * 2^-24 */
        {0x8001, -5.9604644775390625e-08f}, {0x0200, 3.0517578125e-05f},
    };
    size_t n = sizeof f16 / sizeof f16[0];
    unsigned char buf[64];
    float out[32];
    for (size_t i = 0; i < n; i++) {
        buf[1 + 2 * i] = f16[i].bits & 0xff;
        buf[2 + 2 * i] = f16[i].bits >> 8;
    }
    st_to_f32(ST_F16, buf + 1, out, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(out[i] == f16[i].want, "f16 %04x -> %.10g, expected %.10g", f16[i].bits, (double)out[i],
                      (double)f16[i].want);
    /* -0, infinities, NaN */
    uint16_t special[] = {0x8000, 0x7c00, 0xfc00, 0x7e00};
    for (int i = 0; i < 4; i++) {
        buf[2 * i] = special[i] & 0xff;
        buf[2 * i + 1] = special[i] >> 8;
    }
    st_to_f32(ST_F16, buf, out, 4);
    ck_assert(out[0] == 0.0f && signbit(out[0]));
    ck_assert(isinf(out[1]) && out[1] > 0);
    ck_assert(isinf(out[2]) && out[2] < 0);
    ck_assert(isnan(out[3]));

    static const struct {
        uint16_t bits;
        float want;
    } bf16[] = {
        {0x3f80, 1.0f}, {0xc049, -3.140625f}, {0x4780, 65536.0f}, {0x0001, 9.183549615799121e-41f},
        {0x7f7f, 3.3895313892515355e+38f}, {0x3e20, 0.15625f},
    };
    n = sizeof bf16 / sizeof bf16[0];
    for (size_t i = 0; i < n; i++) {
        buf[1 + 2 * i] = bf16[i].bits & 0xff;
        buf[2 + 2 * i] = bf16[i].bits >> 8;
    }
    st_to_f32(ST_BF16, buf + 1, out, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(out[i] == bf16[i].want, "bf16 %04x -> %.10g", bf16[i].bits, (double)out[i]);
    /* F32 from an unaligned source */
    float f[3] = {1.5f, -2.25f, 3e-30f};
    memcpy(buf + 3, f, sizeof f);
    st_to_f32(ST_F32, buf + 3, out, 3);
    ck_assert(out[0] == 1.5f && out[1] == -2.25f && out[2] == 3e-30f);
}
END_TEST

/* Every F16 bit pattern converts like the compiler's own conversion where
 * available: checked here against the closed form sign * 2^(e-15) * (1+m/1024). */
START_TEST(test_f16_all_patterns) {
    unsigned char buf[2];
    for (uint32_t b = 0; b < 0x10000; b++) {
        buf[0] = b & 0xff;
        buf[1] = (unsigned char)(b >> 8);
        float got;
        st_to_f32(ST_F16, buf, &got, 1);
        double want = f16_reference((uint16_t)b);
        if (isnan(want)) ck_assert_msg(isnan(got), "%04x", b);
        else ck_assert_msg((double)got == want, "f16 %04x -> %.10g, expected %.10g", b, (double)got, want);
    }
}
END_TEST

/* ---- config and parameter counts --------------------------------------- */

static int cfg_from_text(const char *text, ModelConfig *c, char *err) {
    char dir[64];
    tmp_make(dir);
    write_text(dir, "config.json", text);
    int rc = config_load(path_in(dir, "config.json"), c, err);
    tmpdir_remove(dir);
    return rc;
}

START_TEST(test_config_variants) {
    ModelConfig c;
    char err[PROBE_ERR_LEN];
    /* old-style: n_ctx, no n_inner, no eps, no activation -> defaults */
    ck_assert_msg(cfg_from_text("{\"n_layer\":1,\"n_embd\":8,\"n_head\":2,\"n_ctx\":16,\"vocab_size\":10}", &c, err) == 0,
                  "%s", err);
    ck_assert_int_eq(c.n_positions, 16);
    ck_assert_int_eq(c.n_inner, 32);
    ck_assert_int_eq(c.activation, ACT_GELU_NEW);
    ck_assert(c.layer_norm_epsilon == 1e-5f);
    /* GPT2Config's defaults: scores / sqrt(head size), not by layer */
    ck_assert_int_eq(c.scale_attn_weights, 1);
    ck_assert_int_eq(c.scale_attn_by_layer, 0);
    ck_assert(config_attn_scale(&c, 0) == 0.5f && config_attn_scale(&c, 5) == 0.5f); /* head size 4 */
    ck_assert_msg(cfg_from_text("{\"n_layer\":3,\"n_embd\":8,\"n_head\":2,\"n_ctx\":16,\"vocab_size\":10,"
                                "\"scale_attn_by_inverse_layer_idx\":true,\"reorder_and_upcast_attn\":true,"
                                "\"tie_word_embeddings\":false,\"add_cross_attention\":false}",
                                &c, err) == 0,
                  "%s", err);
    ck_assert_int_eq(c.scale_attn_by_layer, 1);
    ck_assert(config_attn_scale(&c, 0) == 0.5f && config_attn_scale(&c, 2) == 0.5f / 3.0f);
    ck_assert_msg(cfg_from_text("{\"n_layer\":3,\"n_embd\":8,\"n_head\":2,\"n_ctx\":16,\"vocab_size\":10,"
                                "\"scale_attn_weights\":false,\"scale_attn_by_inverse_layer_idx\":true}",
                                &c, err) == 0,
                  "%s", err);
    ck_assert(config_attn_scale(&c, 0) == 1.0f && config_attn_scale(&c, 1) == 0.5f);
    static const struct {
        const char *name;
        Activation act;
    } acts[] = {{"gelu_new", ACT_GELU_NEW}, {"gelu", ACT_GELU}, {"relu", ACT_RELU},
                {"gelu_pytorch_tanh", ACT_GELU_NEW}, {"gelu_fast", ACT_GELU_NEW}};
    for (int i = 0; i < 5; i++) {
        char text[300];
        snprintf(text, sizeof text,
                 "{\"n_layer\":1,\"n_embd\":8,\"n_head\":2,\"n_positions\":16,\"n_ctx\":99,\"vocab_size\":10,"
                 "\"n_inner\":20,\"layer_norm_epsilon\":1e-6,\"activation_function\":\"%s\"}",
                 acts[i].name);
        ck_assert_msg(cfg_from_text(text, &c, err) == 0, "%s", err);
        ck_assert_int_eq(c.activation, acts[i].act);
        ck_assert_int_eq(c.n_positions, 16); /* n_positions wins over n_ctx */
        ck_assert_int_eq(c.n_inner, 20);
        ck_assert(c.layer_norm_epsilon == 1e-6f);
    }
}
END_TEST

START_TEST(test_param_counts_gpt2_small) {
    ModelConfig c = {.n_layer = 12, .n_embd = 768, .n_head = 12, .n_inner = 3072, .n_positions = 1024,
                     .vocab_size = 50257};
    ParamCounts pc = model_param_counts(&c, 1);
    ck_assert_int_eq(pc.ffn, 56669184);
    ck_assert_int_eq(pc.embeddings, 50257 * 768 + 1024 * 768);
    ck_assert_int_eq(pc.attention, 12 * (768 * 2304 + 2304 + 768 * 768 + 768));
    ck_assert_int_eq(pc.layer_norms, 12 * 4 * 768 + 2 * 768);
    ck_assert_int_eq(pc.lm_head, 0);
    ck_assert_int_eq(pc.total, 124439808);
    pc = model_param_counts(&c, 0);
    ck_assert_int_eq(pc.lm_head, 50257 * 768);
    ck_assert_int_eq(pc.total, 124439808 + 50257 * 768);
    /* GPT-2 XL: 1,557,611,200 parameters (tied) */
    ModelConfig xl = {.n_layer = 48, .n_embd = 1600, .n_head = 25, .n_inner = 6400, .n_positions = 1024,
                      .vocab_size = 50257};
    ck_assert_int_eq(model_param_counts(&xl, 1).total, 1557611200);
}
END_TEST

/* A GPT-2-shaped F32 checkpoint whose data section is a hole: the loader
 * validates the header and maps the file but never reads the weights. */
static void write_sparse_gpt2(const char *dir, int L, int C, int P, int V, int lm_head) {
    char path[600], *hdr = malloc(1 << 16);
    size_t k = 0, cap = 1 << 16;
    uint64_t off = 0;
    int F = 4 * C;
    k += (size_t)snprintf(hdr + k, cap - k, "{\"__metadata__\":{\"format\":\"pt\"}");
#define T2(name, a, b)                                                                                             \
    do {                                                                                                           \
        uint64_t sz = (uint64_t)(a) * (uint64_t)(b) * 4;                                                           \
        k += (size_t)snprintf(hdr + k, cap - k, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}", \
                              name, (int)(a), (int)(b), (unsigned long long)off, (unsigned long long)(off + sz));  \
        off += sz;                                                                                                 \
    } while (0)
#define T1(name, a)                                                                                                \
    do {                                                                                                           \
        uint64_t sz = (uint64_t)(a) * 4;                                                                           \
        k += (size_t)snprintf(hdr + k, cap - k, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%llu,%llu]}", \
                              name, (int)(a), (unsigned long long)off, (unsigned long long)(off + sz));            \
        off += sz;                                                                                                 \
    } while (0)
    char n[96];
    T2("wte.weight", V, C);
    T2("wpe.weight", P, C);
    for (int l = 0; l < L; l++) {
#define N(s) (snprintf(n, sizeof n, "h.%d.%s", l, s), n)
        T1(N("ln_1.weight"), C);
        T1(N("ln_1.bias"), C);
        T2(N("attn.c_attn.weight"), C, 3 * C);
        T1(N("attn.c_attn.bias"), 3 * C);
        T2(N("attn.c_proj.weight"), C, C);
        T1(N("attn.c_proj.bias"), C);
        T1(N("ln_2.weight"), C);
        T1(N("ln_2.bias"), C);
        T2(N("mlp.c_fc.weight"), C, F);
        T1(N("mlp.c_fc.bias"), F);
        T2(N("mlp.c_proj.weight"), F, C);
        T1(N("mlp.c_proj.bias"), C);
#undef N
    }
    T1("ln_f.weight", C);
    T1("ln_f.bias", C);
    if (lm_head) T2("lm_head.weight", V, C);
#undef T1
#undef T2
    hdr[k++] = '}';
    while (k % 8) hdr[k++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)k >> (8 * i));
    ck_assert_int_eq(write(fd, len, 8), 8);
    ck_assert_int_eq(write(fd, hdr, k), (ssize_t)k);
    ck_assert_int_eq(ftruncate(fd, (off_t)(8 + k + off)), 0);
    close(fd);
    free(hdr);
    char cfg[400];
    snprintf(cfg, sizeof cfg,
             "{\"activation_function\": \"gelu_new\", \"n_ctx\": %d, \"n_embd\": %d, \"n_head\": 12, "
             "\"n_inner\": null, \"n_layer\": %d, \"n_positions\": %d, \"layer_norm_epsilon\": 1e-05, "
             "\"vocab_size\": %d}\n",
             P, C, L, P, V);
    write_text(dir, "config.json", cfg);
    link_tokenizer(dir);
}

START_TEST(test_info_gpt2_small) {
    char dir[64], out[8192];
    tmp_make(dir);
    write_sparse_gpt2(dir, 12, 768, 1024, 50257, 0);
    ck_assert_int_eq(run_probe(out, sizeof out, "info --model %s", dir), 0);
    ck_assert_msg(strstr(out, "FFN") && strstr(out, "56,669,184"), "%s", out);
    ck_assert_msg(strstr(out, "124,439,808"), "%s", out);
    ck_assert_msg(strstr(out, "39,383,808") && strstr(out, "28,348,416") && strstr(out, "38,400"), "%s", out);
    ck_assert_msg(strstr(out, "45.54%") && strstr(out, "66.63%"), "%s", out); /* of all / non-embedding */
    ck_assert_msg(strstr(out, "tied to wte") && strstr(out, "loaded in"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "info --json --model %s", dir), 0);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    cJSON *p = cJSON_GetObjectItem(j, "params");
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(p, "ffn")->valuedouble, 56669184);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(p, "total")->valuedouble, 124439808);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(p, "non_embedding")->valuedouble, 85056000);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "n_inner")->valueint, 3072);
    ck_assert(fabs(cJSON_GetObjectItem(j, "ffn_share_non_embedding")->valuedouble - 56669184.0 / 85056000) < 1e-6);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "tied")));
    cJSON_Delete(j);
    tmpdir_remove(dir);

    /* untied head: one more row in the table, counted in the total */
    tmp_make(dir);
    write_sparse_gpt2(dir, 2, 768, 1024, 50257, 1);
    ck_assert_int_eq(run_probe(out, sizeof out, "info --model %s", dir), 0);
    ck_assert_msg(strstr(out, "lm_head (untied)") && strstr(out, "38,597,376"), "%s", out);
    tmpdir_remove(dir);
}
END_TEST

START_TEST(test_info_fixture_and_usage) {
    char out[8192];
    ck_assert_int_eq(run_probe(out, sizeof out, "info --model " MODELS "/tiny-f16-prefix"), 0);
    ck_assert_msg(strstr(out, "F16") && strstr(out, "untied") && strstr(out, "activation gelu,"), "%s", out);
    ck_assert_int_eq(run_cmdf(out, sizeof out, "PROBE_MODEL=" MODELS "/tiny-bf16-relu %s info", probe_bin()), 0);
    ck_assert_msg(strstr(out, "BF16") && strstr(out, "relu") && strstr(out, "811,216"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "info --bogus"), 2);
    ck_assert_msg(strstr(out, "--bogus"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "info extra"), 2);
    ck_assert_int_eq(run_probe(out, sizeof out, "info --help"), 0);
    ck_assert(strstr(out, "usage: probe info") != NULL);
}
END_TEST

/* ---- bad input (SPEC 11) ------------------------------------------------ */

typedef struct {
    const char *name;
    void (*setup)(const char *dir); /* corrupts a fresh copy of tiny-f32 */
    const char *file;               /* file named in the message ("" = none) */
    const char *needle1, *needle2;  /* more text the message must contain */
} BadCase;

static const char *st_path_of(const char *dir) { return path_in(dir, "model.safetensors"); }

static void truncate_to(const char *dir, off_t size) { ck_assert_int_eq(truncate(st_path_of(dir), size), 0); }

/* Overwrites n bytes of DIR/model.safetensors at offset off. */
static void patch_weights(const char *dir, off_t off, const void *bytes, size_t n) {
    int fd = open(st_path_of(dir), O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static void bad_missing_dir(const char *dir) { tmpdir_remove(dir); }
static void bad_dir_is_file(const char *dir) {
    tmpdir_remove(dir);
    file_write(dir, "{}", 2);
}
static void bad_no_config(const char *dir) { unlink(path_in(dir, "config.json")); }
static void bad_no_weights(const char *dir) { unlink(st_path_of(dir)); }
static void bad_only_pytorch_bin(const char *dir) {
    unlink(st_path_of(dir));
    write_text(dir, "pytorch_model.bin", "PK");
}
static void bad_weights_dir(const char *dir) {
    unlink(st_path_of(dir));
    ck_assert_int_eq(mkdir(st_path_of(dir), 0755), 0);
}
static void bad_no_vocab(const char *dir) { unlink(path_in(dir, "vocab.json")); }
static void bad_empty_file(const char *dir) { truncate_to(dir, 0); }
static void bad_truncated_header(const char *dir) { truncate_to(dir, 1000); }
static void bad_truncated_data(const char *dir) {
    struct stat sb;
    ck_assert_int_eq(stat(st_path_of(dir), &sb), 0);
    truncate_to(dir, sb.st_size - 4);
}
static void bad_header_len_huge(const char *dir) {
    patch_weights(dir, 0, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
}
static void bad_header_len_small(const char *dir) { patch_weights(dir, 0, "\1\0\0\0\0\0\0\0", 8); }
static void bad_header_not_json(const char *dir) { patch_weights(dir, 8, "[", 1); /* '{' -> '[' */ }
static void bad_header_array(const char *dir) {
    patch_weights(dir, 0, "\10\0\0\0\0\0\0\0", 8);
    patch_weights(dir, 8, "[1, 2]  ", 8);
}

static void e_overlap(cJSON *h) {
    double b, e;
    offsets_of(h, "h.0.ln_1.weight", &b, &e);
    set_offsets(h, "h.0.ln_2.bias", b + 64, e + 64); /* same size, shifted into ln_1.weight */
}
static void e_out_of_range(cJSON *h) {
    double b, e;
    offsets_of(h, "ln_f.bias", &b, &e);
    set_offsets(h, "h.1.mlp.c_fc.bias", e + 1024, e + 1024 + 512);
}
static void e_begin_after_end(cJSON *h) { set_offsets(h, "h.0.ln_1.bias", 200, 100); }
static void e_negative_offset(cJSON *h) { set_offsets(h, "h.0.ln_1.bias", -128, 0); }
static void e_fraction_offset(cJSON *h) { set_offsets(h, "h.0.ln_1.bias", 0.5, 128.5); }
static void e_size_mismatch(cJSON *h) {
    double b, e;
    offsets_of(h, "h.0.ln_1.bias", &b, &e);
    set_offsets(h, "h.0.ln_1.bias", b, e - 4);
}
static void e_wrong_dtype(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "h.1.mlp.c_fc.weight"), "dtype", cJSON_CreateString("I32"));
}
static void e_i64_dtype(cJSON *h) { /* I64 with a shape that matches the byte count */
    cJSON *t = cJSON_GetObjectItem(h, "h.0.mlp.c_fc.bias");
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I64"));
    cJSON_ReplaceItemInObject(t, "shape", cJSON_CreateIntArray((int[]){64}, 1));
}
static void e_unknown_dtype(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "wpe.weight"), "dtype", cJSON_CreateString("Q4_K"));
}
static void e_wrong_shape(cJSON *h) { /* same element count, wrong shape */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "h.1.attn.c_proj.weight"), "shape",
                              cJSON_CreateIntArray((int[]){16, 64}, 2));
}
static void e_transposed(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "h.0.mlp.c_fc.weight"), "shape",
                              cJSON_CreateIntArray((int[]){128, 32}, 2));
}
static void e_shape_overflow(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "h.0.ln_1.bias"), "shape",
                              cJSON_CreateDoubleArray((double[]){4294967296.0, 4294967296.0, 4294967296.0}, 3));
}
static void e_too_many_dims(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "h.0.ln_1.bias"), "shape",
                              cJSON_CreateIntArray((int[]){1, 1, 1, 1, 1, 1, 1, 1, 32}, 9));
}
static void e_missing_tensor(cJSON *h) { cJSON_DeleteItemFromObject(h, "h.1.mlp.c_proj.bias"); }
static void e_missing_wte(cJSON *h) { cJSON_DeleteItemFromObject(h, "wte.weight"); }
static void e_duplicate(cJSON *h) {
    cJSON_AddItemToObject(h, "ln_f.bias", cJSON_Duplicate(cJSON_GetObjectItem(h, "ln_f.bias"), 1));
}
static void e_not_object(cJSON *h) { cJSON_ReplaceItemInObject(h, "ln_f.bias", cJSON_CreateNumber(3)); }
static void e_control_name(cJSON *h) {
    cJSON_AddItemToObject(h, "evil\nname", cJSON_Duplicate(cJSON_GetObjectItem(h, "ln_f.bias"), 1));
}
static void e_control_dtype(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "wpe.weight"), "dtype", cJSON_CreateString("F\n32"));
}
static void e_no_offsets(cJSON *h) { cJSON_DeleteItemFromObject(cJSON_GetObjectItem(h, "ln_f.bias"), "data_offsets"); }
static void e_lm_head_bad(cJSON *h) { /* an lm_head whose shape is not [V, C], in h.1.attn.bias's bytes */
    double b, e;
    offsets_of(h, "h.1.attn.bias", &b, &e);
    cJSON_DeleteItemFromObject(h, "h.1.attn.bias");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray((int[]){128, 32}, 2));
    cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray((double[]){b, e}, 2));
    cJSON_AddItemToObject(h, "lm_head.weight", t);
}

#define HDR(fn)                                                                                                    \
    static void bad_##fn(const char *dir) { rewrite_header(dir, e_##fn, 0); }
HDR(overlap)
HDR(out_of_range)
HDR(begin_after_end)
HDR(negative_offset)
HDR(fraction_offset)
HDR(size_mismatch)
HDR(wrong_dtype)
HDR(i64_dtype)
HDR(unknown_dtype)
HDR(wrong_shape)
HDR(transposed)
HDR(shape_overflow)
HDR(too_many_dims)
HDR(missing_tensor)
HDR(missing_wte)
HDR(duplicate)
HDR(not_object)
HDR(no_offsets)
HDR(control_name)
HDR(control_dtype)
HDR(lm_head_bad)

static void cfg_replace(const char *dir, const char *from, const char *to) {
    const char *p = path_in(dir, "config.json");
    size_t n;
    char *text = file_read(p, &n);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "'%s' not in config.json", from);
    char *out = malloc(n + strlen(to) + 1);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    file_write(p, out, strlen(out));
    free(out);
    free(text);
}
static void bad_cfg_json(const char *dir) { cfg_replace(dir, "\"n_layer\": 2,", "\"n_layer\": 2,,"); }
static void bad_cfg_empty(const char *dir) { write_text(dir, "config.json", ""); }
static void bad_cfg_missing_key(const char *dir) { cfg_replace(dir, "\"n_layer\": 2,", ""); }
static void bad_cfg_missing_vocab(const char *dir) { cfg_replace(dir, "\"vocab_size\": 50257", "\"x\": 1"); }
static void bad_cfg_activation(const char *dir) { cfg_replace(dir, "\"gelu_new\"", "\"swish\""); }
static void bad_cfg_activation_nl(const char *dir) { cfg_replace(dir, "\"gelu_new\"", "\"gelu\\nnew\""); }
static void bad_cfg_activation_type(const char *dir) { cfg_replace(dir, "\"gelu_new\"", "7"); }
static void bad_cfg_heads(const char *dir) { cfg_replace(dir, "\"n_head\": 4", "\"n_head\": 5"); }
static void bad_cfg_zero_layers(const char *dir) { cfg_replace(dir, "\"n_layer\": 2", "\"n_layer\": 0"); }
static void bad_cfg_string_embd(const char *dir) { cfg_replace(dir, "\"n_embd\": 32", "\"n_embd\": \"32\""); }
static void bad_cfg_float_inner(const char *dir) { cfg_replace(dir, "\"n_inner\": null", "\"n_inner\": 127.5"); }
static void bad_cfg_huge(const char *dir) { cfg_replace(dir, "\"n_layer\": 2", "\"n_layer\": 1e300"); }
static void bad_cfg_eps(const char *dir) { cfg_replace(dir, "1e-05", "-1"); }
static void bad_cfg_not_object(const char *dir) { write_text(dir, "config.json", "[1, 2, 3]\n"); }
/* config.json that disagrees with the weights: the shape check catches it */
static void bad_cfg_vs_weights(const char *dir) { cfg_replace(dir, "\"n_embd\": 32", "\"n_embd\": 64"); }
static void bad_cfg_more_layers(const char *dir) { cfg_replace(dir, "\"n_layer\": 2", "\"n_layer\": 3"); }
static void bad_cfg_inner(const char *dir) { cfg_replace(dir, "\"n_inner\": null", "\"n_inner\": 64"); }
static void bad_cfg_scale_type(const char *dir) {
    cfg_replace(dir, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": true, \"scale_attn_weights\": \"yes\"");
}
static void bad_cfg_cross(const char *dir) {
    cfg_replace(dir, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": true, \"add_cross_attention\": true");
}


#define ST "model.safetensors"
#define CF "config.json"
static const BadCase bad_cases[] = {
    {"missing dir", bad_missing_dir, "", "cannot open model directory", "No such file or directory"},
    {"dir is a file", bad_dir_is_file, "", "cannot open model directory", "Not a directory"},
    {"missing config.json", bad_no_config, CF, "No such file or directory", NULL},
    {"missing model.safetensors", bad_no_weights, ST, "No such file or directory", NULL},
    {"pytorch_model.bin instead of model.safetensors", bad_only_pytorch_bin, ST, "has pytorch_model.bin",
     "save_pretrained(DIR, safe_serialization=True)"},
    {"model.safetensors is a directory", bad_weights_dir, ST, "directory", NULL},
    {"missing vocab.json", bad_no_vocab, "vocab.json", NULL, NULL},
    {"empty file", bad_empty_file, ST, "truncated", NULL},
    {"truncated in the header", bad_truncated_header, ST, "past end of file", NULL},
    {"truncated in the data", bad_truncated_data, ST, "'ln_f.bias'", "past end of data"},
    {"header length past the file end", bad_header_len_huge, ST, "header length 18446744073709551615",
     "past end of file"},
    {"header length too small", bad_header_len_small, ST, "header length 1", NULL},
    {"header not JSON", bad_header_not_json, ST, "not a JSON object", NULL},
    {"header a JSON array", bad_header_array, ST, "not a JSON object", NULL},
    {"overlapping offsets", bad_overlap, ST, "'h.0.ln_2.bias'", "overlap tensor 'h.0.ln_1.weight'"},
    {"offsets out of range", bad_out_of_range, ST, "'h.1.mlp.c_fc.bias'", "past end of data"},
    {"offsets begin after end", bad_begin_after_end, ST, "'h.0.ln_1.bias'", "[200,100]"},
    {"negative offset", bad_negative_offset, ST, "'h.0.ln_1.bias'", "non-negative integers"},
    {"fractional offset", bad_fraction_offset, ST, "'h.0.ln_1.bias'", "non-negative integers"},
    {"size does not match shape", bad_size_mismatch, ST, "'h.0.ln_1.bias'", "needs 128"},
    {"wrong dtype I32", bad_wrong_dtype, ST, "'h.1.mlp.c_fc.weight'", "dtype I32"},
    {"wrong dtype I64", bad_i64_dtype, ST, "'h.0.mlp.c_fc.bias'", "dtype I64"},
    {"unknown dtype", bad_unknown_dtype, ST, "'wpe.weight'", "unknown dtype 'Q4_K'"},
    {"wrong shape", bad_wrong_shape, ST, "'h.1.attn.c_proj.weight'", "shape [16, 64] (expected [32, 32]"},
    {"transposed weight", bad_transposed, ST, "'h.0.mlp.c_fc.weight'", "shape [128, 32] (expected [32, 128]"},
    {"shape product overflows", bad_shape_overflow, ST, "'h.0.ln_1.bias'", "more than 2^64"},
    {"too many dimensions", bad_too_many_dims, ST, "'h.0.ln_1.bias'", "9 dimensions"},
    {"missing tensor", bad_missing_tensor, ST, "missing tensor 'h.1.mlp.c_proj.bias'", NULL},
    {"missing wte", bad_missing_wte, ST, "missing tensor 'wte.weight'", NULL},
    {"duplicate tensor", bad_duplicate, ST, "'ln_f.bias'", "appears twice"},
    {"entry not an object", bad_not_object, ST, "'ln_f.bias'", "not a JSON object"},
    {"tensor name with a newline", bad_control_name, ST, "control characters", NULL},
    {"dtype with a newline", bad_control_dtype, ST, "'wpe.weight'", "unknown dtype '(unprintable)'"},
    {"entry without offsets", bad_no_offsets, ST, "'ln_f.bias'", "data_offsets"},
    {"lm_head of the wrong shape", bad_lm_head_bad, ST, "'lm_head.weight'", "shape [128, 32] (expected [50257, 32]"},
    {"config.json bad JSON", bad_cfg_json, CF, "not a JSON object", NULL},
    {"config.json empty", bad_cfg_empty, CF, "not a JSON object", NULL},
    {"config.json an array", bad_cfg_not_object, CF, "not a JSON object", NULL},
    {"config.json missing n_layer", bad_cfg_missing_key, CF, "missing key 'n_layer'", NULL},
    {"config.json missing vocab_size", bad_cfg_missing_vocab, CF, "missing key 'vocab_size'", NULL},
    {"config.json bad activation", bad_cfg_activation, CF, "activation_function 'swish'", "gelu_new, gelu or relu"},
    {"config.json activation with a newline", bad_cfg_activation_nl, CF, "activation_function '(unprintable)'", NULL},
    {"config.json activation not a string", bad_cfg_activation_type, CF, "'activation_function'", NULL},
    {"config.json n_embd % n_head", bad_cfg_heads, CF, "not divisible by n_head 5", NULL},
    {"config.json n_layer 0", bad_cfg_zero_layers, CF, "'n_layer'", NULL},
    {"config.json n_embd a string", bad_cfg_string_embd, CF, "'n_embd'", NULL},
    {"config.json n_inner fractional", bad_cfg_float_inner, CF, "'n_inner'", NULL},
    {"config.json n_layer huge", bad_cfg_huge, CF, "'n_layer'", NULL},
    {"config.json negative epsilon", bad_cfg_eps, CF, "'layer_norm_epsilon'", NULL},
    {"config.json n_embd disagrees with the weights", bad_cfg_vs_weights, ST, "'wte.weight'",
     "expected [50257, 64]"},
    {"config.json more layers than the weights", bad_cfg_more_layers, ST, "missing tensor 'h.2.ln_1.weight'", NULL},
    {"config.json n_inner disagrees", bad_cfg_inner, ST, "'h.0.mlp.c_fc.weight'", "expected [32, 64]"},
    {"config.json scale_attn_weights a string", bad_cfg_scale_type, CF, "'scale_attn_weights' must be true or false",
     NULL},
    {"config.json add_cross_attention", bad_cfg_cross, CF, "add_cross_attention", "not supported"},
};
#define N_BAD (int)(sizeof bad_cases / sizeof bad_cases[0])

START_TEST(test_bad_input) {
    const BadCase *bc = &bad_cases[_i];
    char dir[64], file[700], err[PROBE_ERR_LEN], out[8192];
    copy_model("tiny-f32", dir);
    bc->setup(dir);
    if (bc->file[0]) snprintf(file, sizeof file, "'%s/%s'", dir, bc->file);
    else snprintf(file, sizeof file, "'%s'", dir);
    err[0] = '\0';
    Model *m = model_load(dir, err);
    ck_assert_msg(m == NULL, "%s: loaded", bc->name);
    ck_assert_msg(err[0] && !strchr(err, '\n'), "%s: error is not one line: '%s'", bc->name, err);
    ck_assert_msg(strstr(err, file), "%s: error does not name %s: %s", bc->name, file, err);
    ck_assert_msg(!bc->needle1 || strstr(err, bc->needle1), "%s: no '%s' in: %s", bc->name, bc->needle1, err);
    ck_assert_msg(!bc->needle2 || strstr(err, bc->needle2), "%s: no '%s' in: %s", bc->name, bc->needle2, err);

    ck_assert_int_eq(run_probe(out, sizeof out, "info --model %s", dir), 1);
    size_t len = strlen(out);
    ck_assert_msg(len > 0 && out[len - 1] == '\n' && !memchr(out, '\n', len - 1), "%s: not one line: %s", bc->name,
                  out);
    ck_assert_msg(!strncmp(out, "probe info: ", 12) && strstr(out, err), "%s: printed '%s', expected '%s'", bc->name, out,
                  err);
    tmpdir_remove(dir); /* a directory, the file of bad_dir_is_file, or nothing */
}
END_TEST

/* The reader alone: names, count, lookups, metadata ignored, empty tensors. */
START_TEST(test_reader_basics) {
    char err[PROBE_ERR_LEN];
    SafeTensors *st = st_open(MODELS "/tiny-f16-prefix/model.safetensors", err);
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(st_count(st), 2 + 3 * 13 + 2 + 1); /* with attn.bias buffers and lm_head */
    ck_assert_str_eq(st_path(st), MODELS "/tiny-f16-prefix/model.safetensors");
    ck_assert_ptr_null(st_find(st, "__metadata__"));
    const StTensor *t = st_find(st, "transformer.h.2.mlp.c_fc.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, ST_F16);
    ck_assert_str_eq(t->dtype_name, "F16");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 48);
    ck_assert_int_eq(t->shape[1], 96);
    ck_assert_int_eq(t->numel, 48 * 96);
    ck_assert_uint_eq(t->nbytes, 48 * 96 * 2);
    t = st_find(st, "transformer.h.0.attn.bias");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_int_eq(t->shape[3], 64);
    for (int i = 0; i < st_count(st); i++) ck_assert_ptr_eq(st_find(st, st_at(st, i)->name), st_at(st, i));
    ck_assert_ptr_null(st_at(st, st_count(st)));
    st_close(st);
    st_close(NULL);
    model_free(NULL);

    /* a hand-written file: empty tensors share an offset, scalars, metadata */
    char dir[64];
    tmp_make(dir);
    const char *hdr = "{\"__metadata__\":{\"a\":\"b\"},\"e1\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                      "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[4,6]},"
                      "\"e2\":{\"dtype\":\"F16\",\"shape\":[2,0],\"data_offsets\":[4,4]},"
                      "\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}";
    size_t hl = strlen(hdr);
    unsigned char buf[512] = {0};
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, hl);
    unsigned char data[6] = {1, 2, 3, 4, 0x80, 0x3f};
    memcpy(buf + 8 + hl, data, 6);
    const char *path = file_write(path_in(dir, "a.safetensors"), buf, 8 + hl + 6);
    st = st_open(path, err);
    ck_assert_msg(st != NULL, "%s", err);
    ck_assert_int_eq(st_count(st), 4);
    t = st_find(st, "s");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(t->numel, 1);
    float v;
    st_to_f32(t->dtype, t->data, &v, 1);
    ck_assert(v == 1.0f);
    ck_assert_int_eq(st_find(st, "e1")->numel, 0);
    ck_assert_int_eq(st_find(st, "x")->dtype, ST_OTHER);
    ck_assert_uint_eq(st_file_size(st), 8 + hl + 6);
    st_close(st);
    tmpdir_remove(dir);
}
END_TEST

/* A NaN or Inf anywhere in a weight is refused at load with one line
 * naming the tensor and the index (before: NaN activations, then NULLs and a
 * NOT NULL failure at the end of a whole recording). F32 used in place and
 * F16 converted. */
START_TEST(test_non_finite_weights) {
    static const struct {
        const char *model, *tensor;
        int index, width;
        uint32_t bits;
        const char *want;
    } cases[] = {
        {"tiny-f32", "h.0.mlp.c_fc.bias", 17, 4, 0x7fc00000u, "tensor 'h.0.mlp.c_fc.bias' holds NaN at index 17"},
        {"tiny-f32", "wte.weight", 0, 4, 0xff800000u, "tensor 'wte.weight' holds -Inf at index 0"},
        {"tiny-f16-prefix", "transformer.h.1.attn.c_proj.weight", 5, 2, 0x7c00u,
         "tensor 'transformer.h.1.attn.c_proj.weight' holds +Inf at index 5"},
    };
    char dir[64], out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        copy_model(cases[i].model, dir);
        tensor_patch(dir, cases[i].tensor, cases[i].index, &cases[i].bits, cases[i].width); /* little-endian */
        int rc = run_probe(out, sizeof out, "info --model '%s'", dir);
        ck_assert_msg(rc == 1 && strstr(out, cases[i].want) && strstr(out, "model.safetensors"), "exit %d: %s", rc,
                      out);
        ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
        tmpdir_remove(dir);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("loader");
    case_add(s, "fixtures", 60,
             (const TTest *[]){test_tiny_f32, test_tiny_f16_prefix_untied, test_tiny_bf16_relu,
                               test_unaligned_f32_is_copied, test_f16_bf16_exact, test_f16_all_patterns,
                               test_config_variants, test_param_counts_gpt2_small, test_info_gpt2_small,
                               test_info_fixture_and_usage, test_reader_basics, test_non_finite_weights, NULL});
    TCase *bad = case_add(s, "bad input", 60, (const TTest *[]){NULL});
    tcase_add_loop_test(bad, test_bad_input, 0, N_BAD);
    return run_suite(s);
}
