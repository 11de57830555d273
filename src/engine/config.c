/* config.c — config.json of a Hugging Face GPT-2 checkpoint.
 *
 *   {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_inner": null,
 *    "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-05,
 *    "activation_function": "gelu_new", ...}
 *
 * Required: n_layer, n_embd, n_head, vocab_size and n_positions (older files
 * spell it n_ctx). Defaults as in transformers' GPT2Config: n_inner null or
 * absent = 4 * n_embd, layer_norm_epsilon 1e-5, activation_function
 * gelu_new, scale_attn_weights true, scale_attn_by_inverse_layer_idx false
 * (both change the attention scores: GPT-2 variants such as Stanford CRFM's
 * set the second). add_cross_attention true is refused (the decoder of an
 * encoder-decoder: its cross-attention weights would be ignored).
 * reorder_and_upcast_attn only changes transformers' float precision (probe
 * computes the scores in float32 anyway) and, like every other key
 * (architectures, dropout, task params), is ignored. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

/* Upper bounds keep every size product far from overflow and reject
 * nonsense early; GPT-2 XL is L=48, C=1600, P=1024, V=50257. */
#define CFG_MAX_LAYER 1024
#define CFG_MAX_EMBD 65536
#define CFG_MAX_INNER (1 << 20)
#define CFG_MAX_POSITIONS (1 << 20)
#define CFG_MAX_VOCAB (1 << 24)

/* Reads key as an integer in [1, max]. Absent (or null when null_ok) -> 1
 * with *v untouched; present and valid -> 0; anything else -> -1 with err. */
static int get_int(const char *path, const cJSON *root, const char *key, long max, int null_ok, int *v,
                   char *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || (null_ok && cJSON_IsNull(it))) return 1;
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(d >= 1 && d <= (double)max && d == floor(d))) {
        return err_set(err, "'%s': '%s' must be an integer in [1, %ld]", path, key, max);
    }
    *v = (int)d;
    return 0;
}

static int require_int(const char *path, const cJSON *root, const char *key, long max, int *v, char *err) {
    int rc = get_int(path, root, key, max, 0, v, err);
    if (rc == 1) return err_set(err, "'%s': missing key '%s'", path, key);
    return rc;
}

/* Reads key as a boolean: absent or null -> def; true/false -> its value;
 * anything else -> -1 with err. */
static int get_bool(const char *path, const cJSON *root, const char *key, int def, int *v, char *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        *v = def;
        return 0;
    }
    if (!cJSON_IsBool(it)) return err_set(err, "'%s': '%s' must be true or false", path, key);
    *v = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

float config_attn_scale(const ModelConfig *cfg, int layer) {
    float s = cfg->scale_attn_weights ? 1.0f / sqrtf((float)(cfg->n_embd / cfg->n_head)) : 1.0f;
    return cfg->scale_attn_by_layer ? s / (float)(layer + 1) : s;
}

static const struct {
    const char *name;
    Activation act;
} activations[] = {
    {"gelu_new", ACT_GELU_NEW},
    {"gelu_pytorch_tanh", ACT_GELU_NEW}, /* the same tanh approximation */
    {"gelu_fast", ACT_GELU_NEW},
    {"gelu", ACT_GELU}, /* exact, with erf */
    {"relu", ACT_RELU},
};

int config_load(const char *path, ModelConfig *out, char *err) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    ModelConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = -1;
    if (!root || !cJSON_IsObject(root)) {
        err_set(err, "'%s': not a JSON object (malformed config.json)", path);
        goto done;
    }

    if (require_int(path, root, "n_layer", CFG_MAX_LAYER, &cfg.n_layer, err) ||
        require_int(path, root, "n_embd", CFG_MAX_EMBD, &cfg.n_embd, err) ||
        require_int(path, root, "n_head", CFG_MAX_EMBD, &cfg.n_head, err) ||
        require_int(path, root, "vocab_size", CFG_MAX_VOCAB, &cfg.vocab_size, err))
        goto done;

    int r = get_int(path, root, "n_positions", CFG_MAX_POSITIONS, 0, &cfg.n_positions, err);
    if (r == 1) r = get_int(path, root, "n_ctx", CFG_MAX_POSITIONS, 0, &cfg.n_positions, err);
    if (r == 1) err_set(err, "'%s': missing key 'n_positions' (or 'n_ctx')", path);
    if (r) goto done;

    cfg.n_inner = 4 * cfg.n_embd;
    if (get_int(path, root, "n_inner", CFG_MAX_INNER, 1, &cfg.n_inner, err) < 0) goto done;

    if (cfg.n_embd % cfg.n_head) {
        err_set(err, "'%s': n_embd %d is not divisible by n_head %d", path, cfg.n_embd, cfg.n_head);
        goto done;
    }

    cfg.layer_norm_epsilon = 1e-5f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (eps && !cJSON_IsNull(eps)) {
        double d = cJSON_IsNumber(eps) ? eps->valuedouble : NAN;
        if (!(d > 0 && d < 1)) {
            err_set(err, "'%s': 'layer_norm_epsilon' must be a number in (0, 1)", path);
            goto done;
        }
        cfg.layer_norm_epsilon = (float)d;
    }

    const char *act = "gelu_new";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (a && !cJSON_IsNull(a)) {
        if (!cJSON_IsString(a)) {
            err_set(err, "'%s': 'activation_function' must be a string", path);
            goto done;
        }
        act = a->valuestring;
    }
    size_t i, n_act = sizeof activations / sizeof activations[0];
    for (i = 0; i < n_act; i++)
        if (!strcmp(act, activations[i].name)) break;
    if (i == n_act) {
        err_set(err, "'%s': unsupported activation_function '%.64s' (expected gelu_new, gelu or relu)", path,
                text_printable(act) ? act : "(unprintable)"); /* keep the message on one line */
        goto done;
    }
    cfg.activation = activations[i].act;
    snprintf(cfg.activation_name, sizeof cfg.activation_name, "%s", activations[i].name);

    int cross = 0;
    if (get_bool(path, root, "scale_attn_weights", 1, &cfg.scale_attn_weights, err) ||
        get_bool(path, root, "scale_attn_by_inverse_layer_idx", 0, &cfg.scale_attn_by_layer, err) ||
        get_bool(path, root, "add_cross_attention", 0, &cross, err))
        goto done;
    if (cross) {
        err_set(err, "'%s': add_cross_attention is true: a GPT-2 decoder with cross-attention is not supported",
                path);
        goto done;
    }

    *out = cfg;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}
