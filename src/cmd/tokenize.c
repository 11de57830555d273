/* cmd_tokenize.c — `probe tokenize FILE|-`: GPT-2 BPE ids of a text.
 *
 *   probe tokenize notes.txt            -> [2025, 318, 257, 1332]
 *   echo '[15496, 995]' | probe tokenize --decode -   -> Hello world
 *
 * No <|endoftext|> is added; the literal text "<|endoftext|>" is ordinary
 * text (as in encoder.py). The tokenizer is DIR/vocab.json + DIR/merges.txt
 * of the model directory. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "tokenizer.h"
#include "util.h"

static const char *usage_text =
    "usage: probe tokenize [--model DIR] FILE|-\n"
    "       probe tokenize --decode [--model DIR] IDS.json|-\n\n"
    "Prints the GPT-2 token ids of FILE (- = stdin) as a JSON array (no BOS);\n"
    "with --decode, reads a JSON array of ids and writes the decoded bytes.\n\n"
    "  --decode      ids -> text (byte-exact inverse)\n"
    "  --model DIR   model directory with vocab.json and merges.txt\n"
    "                (default: $PROBE_MODEL, else the bundled models/demo)\n"
    "  -h, --help    this help\n";

static int write_ids(const TokBuf *b) {
    char num[16];
    putchar('[');
    for (size_t i = 0; i < b->n; i++) {
        int k = snprintf(num, sizeof num, i ? ", %d" : "%d", (int)b->ids[i]);
        fwrite(num, 1, (size_t)k, stdout);
    }
    puts("]");
    return fflush(stdout) || ferror(stdout) ? -1 : 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int decode = 0;
    /* -h as well as --help: the usage text lists both */
    const CliOption opts[] = {CLI_OPT_SET("decode", &decode), CLI_OPT_STRING("model", &model),
                              {.name = "help", .kind = CLI_HELP, .letter = 'h'}, CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (args.n != 1) return cli_usage_error("give exactly one FILE (or - for stdin)");
    const char *input = args.arg[0];

    char err[PROBE_ERR_LEN], vocab[PATH_MAX], merges[PATH_MAX];
    const char *dir = model_dir_resolve(model);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    Tokenizer *tok = tok_load(vocab, merges, err);
    if (!tok) {
        print_error(err);
        return PROBE_EXIT_RUNTIME;
    }

    rc = PROBE_EXIT_RUNTIME;
    if (decode) {
        int32_t *ids = NULL;
        int n = 0;
        char *text = NULL;
        size_t len = 0;
        if (ids_read_json(input, &ids, &n, err) || tok_decode(tok, ids, (size_t)n, &text, &len, err)) {
            print_error(err);
        } else if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
            print_error("cannot write to stdout");
        } else {
            rc = PROBE_EXIT_OK;
        }
        free(ids);
        free(text);
    } else {
        char *text = NULL;
        size_t len = 0;
        TokBuf b = {0};
        if (file_read_all(input, &text, &len, err)) {
            print_error(err);
        } else if (tok_encode(tok, text, len, &b)) {
            print_error("out of memory tokenizing");
        } else if (write_ids(&b)) {
            print_error("cannot write to stdout");
        } else {
            rc = PROBE_EXIT_OK;
        }
        tok_buf_free(&b);
        free(text);
    }
    tok_free(tok);
    return rc;
}
