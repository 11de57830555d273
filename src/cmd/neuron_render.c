/* neuron_render.c — see neuron_render.h. */
#include "neuron_render.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "util.h"

void text_clip(char *out, size_t cap, const char *s, size_t max, int tail) {
    size_t n = s ? strlen(s) : 0, a = 0, b = n;
    if (n > max) {
        if (tail) {
            a = n - max;
            while (a < n && ((unsigned char)s[a] & 0xc0) == 0x80) a++;
        } else {
            b = max;
            while (b > 0 && ((unsigned char)s[b] & 0xc0) == 0x80) b--;
        }
    }
    /* newlines and tabs as spaces; other control characters (ESC, BEL, ...,
     * DEL) escaped as \xNN, so corpus bytes never drive the terminal */
    size_t o = 0;
    for (size_t i = a; i < b; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
        if (ch < 0x20 || ch == 0x7f) {
            if (o + 5 >= cap) break;
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        } else {
            if (o + 2 > cap) break;
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void names(const NeuronRow *r, char name[32], char hook[48]) {
    snprintf(name, 32, "%d:%d", r->layer, r->neuron);
    snprintf(hook, 48, "blocks.%d.mlp.hook_post", r->layer);
}

static void example_print(FILE *out, const NeuronExample *e) {
    char lc[128], t[128], rc[128];
    text_clip(lc, sizeof lc, e->left_context, 32, 1);
    text_clip(t, sizeof t, e->token, 40, 0);
    text_clip(rc, sizeof rc, e->right_context, 20, 0);
    /* "..." where text was cut (token_context keeps 60 bytes before, 30 after) */
    fprintf(out, "      %9.4f  %s%s[[%s]]%s%s\n", e->value, strlen(e->left_context) > 32 ? "..." : "", lc, t, rc,
            strlen(e->right_context) > 20 ? "..." : "");
}

void neuron_table_print(FILE *out, const NeuronRows *rows) {
    fprintf(out, "%4s  %-9s %-24s %9s %9s %9s %7s\n", "rank", "neuron", "hook", "max", "mean", "std", "frac>0");
    for (int i = 0; i < rows->n; i++) {
        const NeuronRow *r = &rows->rows[i];
        char name[32], hook[48];
        names(r, name, hook);
        fprintf(out, "%4d  %-9s %-24s %9.4f %9.4f %9.4f %7.4f\n", i + 1, name, hook, r->max, r->mean,
                r->variance > 0 ? sqrt(r->variance) : 0.0, r->frac_pos);
        for (int k = 0; k < r->n_examples; k++) example_print(out, &r->examples[k]);
    }
}

int neuron_json_add_run(cJSON *obj, const NeuronRun *run) {
    if (!cJSON_AddNumberToObject(obj, "run", (double)run->id) || json_add_text(obj, "status", run->status) ||
        json_add_text(obj, "model", run->model_dir) || json_add_text(obj, "corpus", run->corpus_path) ||
        !cJSON_AddNumberToObject(obj, "tokens", (double)run->n_tokens))
        return -1;
    return 0;
}

static int example_json(cJSON *arr, const NeuronExample *x) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
        cJSON_Delete(e);
        return -1;
    }
    if (!cJSON_AddNumberToObject(e, "rank", x->rank) || !cJSON_AddNumberToObject(e, "value", x->value) ||
        json_add_text(e, "token", x->token) || !cJSON_AddNumberToObject(e, "token_id", x->token_id) ||
        !cJSON_AddNumberToObject(e, "doc", x->doc) || !cJSON_AddNumberToObject(e, "pos", x->pos) ||
        json_add_text(e, "left_context", x->left_context) || json_add_text(e, "right_context", x->right_context))
        return -1;
    return 0;
}

static int row_json(cJSON *arr, const NeuronRow *r, int rank) {
    cJSON *o = cJSON_CreateObject(), *exs;
    char name[32], hook[48];
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return -1;
    }
    names(r, name, hook);
    double v[] = {r->count, r->mean, r->variance, r->min, r->max, r->frac_pos};
    static const char *keys[] = {"count", "mean", "variance", "min", "max", "frac_pos"};
    if (!cJSON_AddNumberToObject(o, "rank", rank) || !cJSON_AddNumberToObject(o, "layer", r->layer) ||
        !cJSON_AddNumberToObject(o, "neuron", r->neuron) || !cJSON_AddStringToObject(o, "name", name) ||
        !cJSON_AddStringToObject(o, "hook", hook))
        return -1;
    for (int k = 0; k < 6; k++)
        if (!cJSON_AddNumberToObject(o, keys[k], v[k])) return -1;
    if (!(exs = cJSON_AddArrayToObject(o, "examples"))) return -1;
    for (int k = 0; k < r->n_examples; k++)
        if (example_json(exs, &r->examples[k])) return -1;
    return 0;
}

void neuron_examples_print(FILE *out, const NeuronRow *r) {
    for (int k = 0; k < r->n_examples; k++) example_print(out, &r->examples[k]);
}

int neuron_json_add_examples(cJSON *obj, const NeuronRow *r) {
    cJSON *exs = cJSON_AddArrayToObject(obj, "examples");
    if (!exs) return -1;
    for (int k = 0; k < r->n_examples; k++)
        if (example_json(exs, &r->examples[k])) return -1;
    return 0;
}

int neuron_json_add_rows(cJSON *arr, const NeuronRows *rows) {
    if (!arr) return -1;
    for (int i = 0; i < rows->n; i++)
        if (row_json(arr, &rows->rows[i], i + 1)) return -1;
    return 0;
}
