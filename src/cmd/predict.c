/* cmd_predict.c — `probe predict "text"`: the top next-token predictions,
 * the user's quick check that a model loaded right.
 *
 *   $ probe predict "It is a truth universally"
 *     1  0.8123  " acknowledged"
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "logits.h"
#include "topk.h"
#include "model.h"
#include "utf8.h"
#include "util.h"

static const char *usage_text =
    "usage: probe predict [options] TEXT\n"
    "\n"
    "Prints the most likely next tokens after TEXT with their probabilities.\n"
    "Only the last n_positions tokens are used when TEXT is longer.\n"
    "\n"
    "  --top N        how many predictions (default 10)\n"
    "  --no-bos       do not prepend <|endoftext|>\n"
    "  --json         JSON output\n"
    "  --model DIR    model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --help         this text\n";

/* Prints token bytes as a JSON/C-style quoted string. With json, the bytes
 * of a token that holds part of a character (or an invalid byte) print as
 * U+FFFD (their text form, utf8.h), so that the output is valid UTF-8; the
 * table prints them as they are. */
static void print_quoted(const char *s, size_t n, int json) {
    putchar('"');
    for (size_t i = 0; i < n;) {
        int kept;
        size_t len = utf8_unit(s + i, n - i, &kept);
        unsigned char c = (unsigned char)s[i];
        if (json && !kept && c != 0) fputs(UTF8_REPLACEMENT, stdout); /* NUL: an escape below */
        else if (len > 1) fwrite(s + i, 1, len, stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
        else putchar(c);
        i += len;
    }
    putchar('"');
}

int cmd_predict(int argc, char **argv) {
    const char *model_opt = NULL;
    long top = 10;
    int bos = 1, json = 0;
    const CliOption opts[] = {CLI_OPT_COUNT("top", &top, 1, 1000), CLI_OPT_CLEAR("no-bos", &bos),
                              CLI_OPT_SET("json", &json), CLI_OPT_STRING("model", &model_opt), CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (args.n != 1) return cli_usage_error("give exactly one TEXT argument");
    const char *text = args.arg[0];

    char err[PROBE_ERR_LEN];
    Model *m = model_load(model_dir_resolve(model_opt), err);
    if (!m) {
        print_error(err);
        return PROBE_EXIT_RUNTIME;
    }
    int V = m->cfg.vocab_size, P = m->cfg.n_positions;
    rc = PROBE_EXIT_RUNTIME;
    TokBuf b = {0};
    float *logits = NULL;
    int32_t *order = NULL;
    float *topv = NULL;
    int32_t *ids = NULL;
    if (tok_encode(m->tok, text, strlen(text), &b)) goto oom;
    /* window: [BOS] + the last tokens of the text, at most P in all */
    int n_text = (int)b.n, keep = n_text;
    if (keep > P - bos) keep = P - bos;
    int T = keep + bos;
    if (T == 0) {
        print_error("empty text and --no-bos: nothing to predict from");
        rc = PROBE_EXIT_USAGE;
        goto done;
    }
    ids = malloc(sizeof *ids * (size_t)T);
    if (!ids) goto oom;
    if (bos) ids[0] = TOK_EOT;
    if (keep) memcpy(ids + bos, b.ids + (n_text - keep), sizeof *ids * (size_t)keep); /* b.ids is NULL for "" */
    logits = malloc(sizeof(float) * (size_t)T * V);
    order = malloc(sizeof(int32_t) * (size_t)top);
    topv = malloc(sizeof(float) * (size_t)top);
    if (!logits || !order || !topv) goto oom;
    if (model_forward(m, ids, T, NULL, logits, err)) {
        print_error(err);
        goto done;
    }
    const float *row = logits + (size_t)(T - 1) * V;
    double lse = logits_logsumexp(row, V);
    if (!isfinite(lse)) { /* finite weights can still overflow: never print nan */
        print_error("the model's logits are not finite for this text (the forward pass overflows)");
        goto done;
    }
    int n = 0; /* partial selection of the top N, ties to the lower id */
    for (int v = 0; v < V; v++)
        if (n < top || row[v] > topv[n - 1]) n = topk_insert(topv, order, n, (int)top, row[v], v);
    if (json) printf("[");
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *bytes = tok_token_bytes(m->tok, order[i], &len);
        double p = exp((double)row[order[i]] - lse);
        if (json) {
            printf("%s{\"rank\": %d, \"id\": %d, \"prob\": %.6g, \"token\": ", i ? ", " : "", i + 1, order[i], p);
            print_quoted(bytes ? bytes : "", bytes ? len : 0, json);
            printf("}");
        } else {
            printf("%3d  %.4f  %6d  ", i + 1, p, order[i]);
            print_quoted(bytes ? bytes : "", bytes ? len : 0, json);
            printf("\n");
        }
    }
    if (json) printf("]\n");
    rc = PROBE_EXIT_OK;
    goto done;
oom:
    print_error("out of memory");
done:
    tok_buf_free(&b);
    free(ids);
    free(logits);
    free(order);
    free(topv);
    model_free(m);
    return rc;
}
