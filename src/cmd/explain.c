/* explain.c — `probe explain "text"`: which parts of the model wrote a
 * prediction's logit (direct logit attribution, analysis/explain.h).
 *
 *   $ probe explain "The cat sat on the" --target " mat"
 *   component            contribution   cumulative
 *   embed                      0.4121       0.4121
 *   attn 0                    -0.0310       0.3811
 *   ffn 0                      1.2093       1.5904
 *       0:512   act  2.113     0.6120
 *   ...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "explain.h"
#include "model.h"
#include "utf8.h"
#include "util.h"

static const char *usage_text =
    "usage: probe explain [options] TEXT\n"
    "\n"
    "Splits the logit of one prediction into what each part of the model wrote\n"
    "into the residual stream: the token + position embeddings, each layer's\n"
    "attention output and FFN output (each with its c_proj bias), ln_f's bias,\n"
    "and each FFN layer's top neurons. Direct logit attribution with ln_f's\n"
    "scale frozen at its value at that position (as TransformerLens): the parts\n"
    "add up to the logit of the forward pass, up to rounding (the residual).\n"
    "A neuron's part is act * ((v - mean(v)) . (ln_f.weight * W_U[target])) / sigma,\n"
    "v its c_proj row, sigma ln_f's std at the position (with epsilon).\n"
    "\n"
    "The window is <|endoftext|> and TEXT's tokens (the last n_positions in all),\n"
    "as in probe predict.\n"
    "\n"
    "  --pos I         position in the window (0 = <|endoftext|>; negative counts\n"
    "                  from the end; default -1, the last token)\n"
    "  --target TOKEN  the token whose logit to explain: a string that is exactly\n"
    "                  one GPT-2 token (\" light\") or an id (#1234); default the\n"
    "                  model's top prediction at the position\n"
    "  --top K         neurons shown per FFN layer (default 5)\n"
    "  --no-bos        do not prepend <|endoftext|>\n"
    "  --json          JSON output\n"
    "  --model DIR     model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --help          this text\n";

typedef struct {
    const char *model, *target, *text;
    long pos, top;
    int bos, json;
} ExplainOptions;

static int parse_pos(const char *arg, void *pos) {
    if (parse_long(arg, -1000000, 1000000, pos) == 0) return 0;
    return cli_usage_error("--pos must be a position (0, 1, ..., or -1 for the last), not '%s'", arg), -1;
}

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int explain_options(int argc, char **argv, ExplainOptions *o) {
    *o = (ExplainOptions){.pos = -1, .top = 5, .bos = 1};
    const CliOption opts[] = {CLI_OPT_CALL("pos", parse_pos, &o->pos),
                              CLI_OPT_STRING("target", &o->target),
                              CLI_OPT_COUNT("top", &o->top, 1, 1000000),
                              CLI_OPT_CLEAR("no-bos", &o->bos),
                              CLI_OPT_SET("json", &o->json),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (args.n != 1) return cli_usage_error("give exactly one TEXT argument");
    o->text = args.arg[0];
    if (!*o->text) return cli_usage_error("empty text: nothing to explain");
    return -1;
}

/* The token id --target names: "#ID", or a string that is one token.
 * Returns the id, or -1 after printing the usage error. */
static int target_resolve(const Model *m, const char *arg) {
    const int V = m->cfg.vocab_size;
    long id;
    if (arg[0] == '#') {
        if (parse_long(arg + 1, 0, V - 1, &id))
            return cli_usage_error("--target '%s' is not a token id #0..#%d", arg, V - 1), -1;
        return (int)id;
    }
    TokBuf b = {0};
    if (tok_encode(m->tok, arg, strlen(arg), &b)) {
        tok_buf_free(&b);
        return cli_error(PROBE_EXIT_RUNTIME, "out of memory"), -1;
    }
    size_t n = b.n;
    id = n == 1 ? b.ids[0] : -1;
    tok_buf_free(&b);
    if (n != 1)
        return cli_usage_error("--target '%s' is %zu GPT-2 tokens, not one (give one token, or an id as #1234)", arg,
                               n), -1;
    if (id >= V) return cli_usage_error("--target '%s' is token %ld, outside the model's vocabulary 0..%d", arg, id, V - 1), -1;
    return (int)id;
}

/* The text form of token id (valid UTF-8, malloc'd); "#id" when the
 * tokenizer has no such token. NULL when out of memory. */
static char *token_text(const Model *m, int id) {
    size_t len;
    const char *bytes = tok_token_bytes(m->tok, id, &len);
    if (bytes) return utf8_text_dup(bytes, len, NULL);
    char buf[32];
    snprintf(buf, sizeof buf, "#%d", id);
    return strdup(buf);
}

/* Prints a token's text form quoted, with control characters escaped. */
static void print_token(const Model *m, int id) {
    char *s = token_text(m, id);
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p < 0x20 || *p == 0x7f) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
    free(s);
}

static void explain_print_table(const Model *m, const int32_t *ids, int T, const Explanation *e) {
    printf("position %d of a window of %d tokens: after ", e->pos, T);
    print_token(m, ids[e->pos]);
    printf(", the logit of ");
    print_token(m, e->target);
    printf(" (#%d)", e->target);
    if (e->target == e->predicted) printf(", the top prediction\n");
    else {
        printf("; the top prediction is ");
        print_token(m, e->predicted);
        printf(" (#%d)\n", e->predicted);
    }
    printf("ln_f scale (std with epsilon) at this position: %.6g\n\n", e->sigma);
    printf("%-28s %12s %12s\n", "component", "contribution", "cumulative");
    printf("%-28s %12s %12s\n", "---------", "------------", "----------");
    double cum = 0;
    char name[64];
    for (int i = 0; i < e->n_parts; i++) {
        const ExplainPart *p = &e->parts[i];
        cum += p->value;
        printf("%-28s %12.4f %12.4f\n", explain_part_name(p, name, sizeof name), p->value, cum);
        if (p->kind != EXPLAIN_FFN) continue;
        const ExplainNeuron *top = e->neurons + (size_t)p->layer * e->top_k;
        for (int k = 0; k < e->top_k; k++) {
            char label[64];
            char nm[32];
            snprintf(nm, sizeof nm, "%d:%d", top[k].layer, top[k].neuron);
            snprintf(label, sizeof label, "  %-10s act %8.3f", nm, top[k].act);
            printf("%-28s %12.4f\n", label, top[k].value);
        }
        printf("%-28s %12.4f\n", "  c_proj bias", e->ffn_bias[p->layer]);
        printf("%-28s %12.4f\n", "  other neurons", e->ffn_rest[p->layer]);
    }
    printf("\n%-28s %12.6f\n", "sum of parts", e->sum);
    printf("%-28s %12.6f\n", "logit (forward pass)", e->logit);
    printf("%-28s %12.3g\n", "residual (logit - sum)", e->logit - e->sum);
}

/* Adds key: {"id": id, "token": text form}; 0, or -1 when out of memory. */
static int json_add_token(cJSON *obj, const char *key, const Model *m, int id) {
    cJSON *t = cJSON_AddObjectToObject(obj, key);
    char *s = token_text(m, id);
    int ok = t && s && cJSON_AddNumberToObject(t, "id", id) && cJSON_AddStringToObject(t, "token", s);
    free(s);
    return ok ? 0 : -1;
}

static int explain_print_json(const Model *m, const int32_t *ids, const Explanation *e) {
    cJSON *root = cJSON_CreateObject(), *parts;
    int ok = root && json_add_text(root, "model", m->dir) == 0 && cJSON_AddNumberToObject(root, "pos", e->pos) &&
             json_add_token(root, "token", m, ids[e->pos]) == 0 && json_add_token(root, "target", m, e->target) == 0 &&
             json_add_token(root, "predicted", m, e->predicted) == 0 &&
             cJSON_AddNumberToObject(root, "logit", e->logit) && cJSON_AddNumberToObject(root, "sum", e->sum) &&
             cJSON_AddNumberToObject(root, "residual", e->logit - e->sum) &&
             cJSON_AddNumberToObject(root, "ln_f_sigma", e->sigma) &&
             (parts = cJSON_AddArrayToObject(root, "parts"));
    double cum = 0;
    char name[64];
    static const char *kinds[] = {"embed", "attn", "ffn", "ln_f_bias"};
    for (int i = 0; ok && i < e->n_parts; i++) {
        const ExplainPart *p = &e->parts[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(parts, o);
        cum += p->value;
        ok = ok && cJSON_AddStringToObject(o, "component", explain_part_name(p, name, sizeof name)) &&
             cJSON_AddStringToObject(o, "kind", kinds[p->kind]) &&
             (p->layer >= 0 ? cJSON_AddNumberToObject(o, "layer", p->layer) : cJSON_AddNullToObject(o, "layer")) &&
             cJSON_AddNumberToObject(o, "value", p->value) && cJSON_AddNumberToObject(o, "cumulative", cum);
        if (!ok || p->kind != EXPLAIN_FFN) continue;
        cJSON *ns = cJSON_AddArrayToObject(o, "neurons");
        ok = ns && cJSON_AddNumberToObject(o, "bias", e->ffn_bias[p->layer]) &&
             cJSON_AddNumberToObject(o, "other_neurons", e->ffn_rest[p->layer]);
        const ExplainNeuron *top = e->neurons + (size_t)p->layer * e->top_k;
        for (int k = 0; ok && k < e->top_k; k++) {
            cJSON *n = cJSON_CreateObject();
            char nm[32];
            snprintf(nm, sizeof nm, "%d:%d", top[k].layer, top[k].neuron);
            ok = n && cJSON_AddItemToArray(ns, n) && cJSON_AddStringToObject(n, "name", nm) &&
                 cJSON_AddNumberToObject(n, "layer", top[k].layer) &&
                 cJSON_AddNumberToObject(n, "neuron", top[k].neuron) &&
                 cJSON_AddNumberToObject(n, "act", top[k].act) && cJSON_AddNumberToObject(n, "value", top[k].value);
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    return text ? 0 : -1;
}

int cmd_explain(int argc, char **argv) {
    ExplainOptions o;
    int rc = explain_options(argc, argv, &o);
    if (rc >= 0) return rc;

    char err[PROBE_ERR_LEN];
    Model *m = model_load(model_dir_resolve(o.model), err);
    if (!m) {
        print_error(err);
        return PROBE_EXIT_RUNTIME;
    }
    const int P = m->cfg.n_positions, F = m->cfg.n_inner;
    TokBuf b = {0};
    int32_t *ids = NULL;
    Explanation e = {0};
    rc = PROBE_EXIT_USAGE;
    int target = -1;
    if (o.target && (target = target_resolve(m, o.target)) < 0) goto done;
    if (o.top > F) {
        rc = cli_usage_error("--top %ld is more than the model's %d neurons per layer", o.top, F);
        goto done;
    }
    rc = PROBE_EXIT_RUNTIME;
    if (tok_encode(m->tok, o.text, strlen(o.text), &b)) goto oom;
    /* window: [BOS] + the last tokens of the text, at most P in all (as predict) */
    int n_text = (int)b.n, keep = n_text < P - o.bos ? n_text : P - o.bos, T = keep + o.bos;
    long pos = o.pos < 0 ? T + o.pos : o.pos;
    if (pos < 0 || pos >= T) {
        rc = cli_usage_error("--pos %ld is outside the window of %d tokens (0..%d, or -%d..-1)", o.pos, T, T - 1, T);
        goto done;
    }
    ids = malloc(sizeof *ids * (size_t)T);
    if (!ids) goto oom;
    if (o.bos) ids[0] = TOK_EOT;
    memcpy(ids + o.bos, b.ids + (n_text - keep), sizeof *ids * (size_t)keep);
    if (explain_run(m, ids, T, (int)pos, target, (int)o.top, &e, err)) {
        print_error(err);
        goto done;
    }
    if (o.json) {
        if (explain_print_json(m, ids, &e)) goto oom;
    } else {
        explain_print_table(m, ids, T, &e);
    }
    rc = PROBE_EXIT_OK;
    goto done;
oom:
    print_error("out of memory");
    rc = PROBE_EXIT_RUNTIME;
done:
    explain_free(&e);
    tok_buf_free(&b);
    free(ids);
    model_free(m);
    return rc;
}
