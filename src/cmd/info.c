/* cmd_info.c — `probe info`: a model's config and parameter counts by
 * component, with the FFN share. It loads and validates the whole model
 * (weights and tokenizer), so it is also the "does my checkpoint load" check.
 *
 *   $ probe info --model models/gpt2
 *   model        models/gpt2
 *   ...
 *   FFN                              56,669,184    45.54%
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "model.h"
#include "utf8.h"
#include "util.h"

static const char *usage_text =
    "usage: probe info [options]\n"
    "\n"
    "Loads and validates a model (config.json, model.safetensors, vocab.json,\n"
    "merges.txt) and prints its config and parameter counts by component:\n"
    "token + position embeddings, attention, FFN, layer norms, lm_head (when\n"
    "untied), with the FFN share of all and of non-embedding parameters.\n"
    "\n"
    "  --json         JSON output\n"
    "  --model DIR    model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --help         this text\n";

/* 124439808 -> "124,439,808" */
static const char *thousands(int64_t v, char *buf, size_t cap) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t k = 0;
    if (v < 0 && k + 1 < cap) buf[k++] = '-';
    for (int i = 0; i < n && k + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static double pct(int64_t part, int64_t whole) { return whole > 0 ? 100.0 * (double)part / (double)whole : 0; }

/* Prints s as a JSON string literal, in its text form (utf8.h: a path that
 * is not UTF-8 prints with U+FFFD), so that the output is valid UTF-8. */
static void json_str(const char *s) {
    char *text = utf8_text_dup(s, strlen(s), NULL);
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(text ? text : "?"); *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
    free(text);
}

static void print_human(const Model *m, const ParamCounts *pc, const char *dtype, double load_s) {
    const ModelConfig *c = &m->cfg;
    int64_t non_emb = pc->attention + pc->ffn + pc->layer_norms;
    char b[40];
    printf("model        %s\n", m->dir);
    printf("weights      model.safetensors, %s, %s bytes, %d tensors, loaded in %.3f s\n", dtype,
           thousands((int64_t)st_file_size(m->st), b, sizeof b), st_count(m->st), load_s);
    printf("config       n_layer %d, n_embd %d, n_head %d, n_inner %d, n_positions %d, vocab_size %d\n",
           c->n_layer, c->n_embd, c->n_head, c->n_inner, c->n_positions, c->vocab_size);
    printf("             activation %s, layer_norm_epsilon %g, lm_head %s\n", c->activation_name,
           (double)c->layer_norm_epsilon, m->tied ? "tied to wte" : "untied");
    printf("             attention scores q.k%s%s\n", c->scale_attn_weights ? " / sqrt(head size)" : " (unscaled)",
           c->scale_attn_by_layer ? " / (layer + 1)" : "");
    printf("\nparameters                       count    share\n");
    printf("  embeddings (token+position) %14s  %6.2f%%\n", thousands(pc->embeddings, b, sizeof b),
           pct(pc->embeddings, pc->total));
    printf("  attention                   %14s  %6.2f%%\n", thousands(pc->attention, b, sizeof b),
           pct(pc->attention, pc->total));
    printf("  FFN                         %14s  %6.2f%%\n", thousands(pc->ffn, b, sizeof b),
           pct(pc->ffn, pc->total));
    printf("  layer norms                 %14s  %6.2f%%\n", thousands(pc->layer_norms, b, sizeof b),
           pct(pc->layer_norms, pc->total));
    if (!m->tied)
        printf("  lm_head (untied)            %14s  %6.2f%%\n", thousands(pc->lm_head, b, sizeof b),
               pct(pc->lm_head, pc->total));
    printf("  total                       %14s\n", thousands(pc->total, b, sizeof b));
    printf("\nFFN share    %.2f%% of all parameters, %.2f%% of non-embedding parameters (%s)\n",
           pct(pc->ffn, pc->total), pct(pc->ffn, non_emb), thousands(non_emb, b, sizeof b));
}

static void print_json(const Model *m, const ParamCounts *pc, const char *dtype, double load_s) {
    const ModelConfig *c = &m->cfg;
    int64_t non_emb = pc->attention + pc->ffn + pc->layer_norms;
    printf("{\"model\": ");
    json_str(m->dir);
    printf(",\n \"dtype\": \"%s\", \"file_bytes\": %zu, \"tensors\": %d, \"load_seconds\": %.6f,\n", dtype,
           st_file_size(m->st), st_count(m->st), load_s);
    char hex[PROBE_CHECKSUM_HEX];
    checksum_hex(m->checksum, hex);
    printf(" \"checksum\": \"%s\",\n", hex);
    printf(" \"config\": {\"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_inner\": %d, \"n_positions\": %d, "
           "\"vocab_size\": %d, \"layer_norm_epsilon\": %.7g, \"activation_function\": \"%s\", "
           "\"scale_attn_weights\": %s, \"scale_attn_by_inverse_layer_idx\": %s},\n",
           c->n_layer, c->n_embd, c->n_head, c->n_inner, c->n_positions, c->vocab_size,
           (double)c->layer_norm_epsilon, c->activation_name, c->scale_attn_weights ? "true" : "false",
           c->scale_attn_by_layer ? "true" : "false");
    printf(" \"tied\": %s,\n", m->tied ? "true" : "false");
    printf(" \"params\": {\"embeddings\": %lld, \"attention\": %lld, \"ffn\": %lld, \"layer_norms\": %lld, "
           "\"lm_head\": %lld, \"non_embedding\": %lld, \"total\": %lld},\n",
           (long long)pc->embeddings, (long long)pc->attention, (long long)pc->ffn, (long long)pc->layer_norms,
           (long long)pc->lm_head, (long long)non_emb, (long long)pc->total);
    printf(" \"ffn_share\": %.6f, \"ffn_share_non_embedding\": %.6f}\n", pct(pc->ffn, pc->total) / 100,
           pct(pc->ffn, non_emb) / 100);
}

int cmd_info(int argc, char **argv) {
    const char *model_opt = NULL;
    int json = 0;
    const CliOption opts[] = {CLI_OPT_SET("json", &json), CLI_OPT_STRING("model", &model_opt), CLI_OPT_END};
    int rc = cli_parse(argc, argv, usage_text, opts, NULL);
    if (rc >= 0) return rc;

    char err[PROBE_ERR_LEN];
    double t0 = now_sec();
    Model *m = model_load(model_dir_resolve(model_opt), err);
    if (!m) {
        print_error(err);
        return PROBE_EXIT_RUNTIME;
    }
    double load_s = now_sec() - t0;

    /* The dtype the weights are stored in (all GPT-2 checkpoints use one). */
    const StTensor *wte = st_find(m->st, "wte.weight");
    if (!wte) wte = st_find(m->st, "transformer.wte.weight");
    const char *dtype = wte ? wte->dtype_name : "?";

    ParamCounts pc = model_param_counts(&m->cfg, m->tied);
    if (json) print_json(m, &pc, dtype, load_s);
    else print_human(m, &pc, dtype, load_s);
    model_free(m);
    return PROBE_EXIT_OK;
}
