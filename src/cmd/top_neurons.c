/* cmd_top_neurons.c — `probe top-neurons`: rank recorded neurons by their
 * statistics, each with its top activating tokens in context.
 *
 *   probe top-neurons --db probe.db --layer 5 --by mean --limit 10
 *   probe top-neurons --json | jq '.neurons[0].examples'
 *
 * Reads neuron_stats (ranked through its (run_id, max|mean|frac_pos) indexes,
 * or the primary key range of one layer) and, per listed neuron, the first 5
 * ranks of neuron_top_examples: no scan over all neurons or tokens. Strings
 * in --json are valid UTF-8 whatever the database holds (json_add_text). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "store.h"
#include "util.h"

#define TOP_EXAMPLES 5

static const char *usage_text =
    "usage: probe top-neurons [options]\n"
    "\n"
    "Ranks the neurons of a recorded run (probe record) by max activation, mean,\n"
    "or fraction of tokens with activation > 0, each with its top 5 activating\n"
    "tokens in context (the token is marked [[like this]]).\n"
    "\n"
    "  --db FILE       database (default probe.db)\n"
    "  --run ID        run to read (default: the latest complete run)\n"
    "  --layer L       one layer (default: all recorded layers)\n"
    "  --by KEY        max (default), mean, or frac\n"
    "  --limit N       neurons to list (default 20)\n"
    "  --json          JSON for programs instead of a table\n"
    "  --help          this text\n";

static int usage_error(const char *msg) {
    fprintf(stderr, "probe top-neurons: %s (see probe top-neurons --help)\n", msg);
    return PROBE_EXIT_USAGE;
}

/* Copies at most max bytes of s (the last ones when tail), cut at UTF-8
 * character boundaries, with newlines and tabs as spaces. */
static void clip(char *out, size_t cap, const char *s, size_t max, int tail) {
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
    size_t o = 0;
    for (size_t i = a; i < b && o + 1 < cap; i++) out[o++] = s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i];
    out[o] = '\0';
}


int cmd_top_neurons(int argc, char **argv) {
    enum { O_DB = 1, O_RUN, O_LAYER, O_BY, O_LIMIT, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},       {"run", required_argument, 0, O_RUN},
        {"layer", required_argument, 0, O_LAYER}, {"by", required_argument, 0, O_BY},
        {"limit", required_argument, 0, O_LIMIT}, {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    const char *db = "probe.db", *by = "max";
    long run = -1, layer = -1, limit = 20;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: db = optarg; break;
        case O_RUN:
            if (parse_long(optarg, 1, 2147483647L, &run)) return usage_error("--run must be a run id");
            break;
        case O_LAYER:
            if (parse_long(optarg, 0, 100000, &layer)) return usage_error("--layer must be a layer number");
            break;
        case O_BY:
            if (strcmp(optarg, "max") && strcmp(optarg, "mean") && strcmp(optarg, "frac"))
                return usage_error("--by must be max, mean or frac");
            by = optarg;
            break;
        case O_LIMIT:
            if (parse_long(optarg, 1, 1000000, &limit)) return usage_error("--limit must be a positive integer");
            break;
        case O_JSON: json = 1; break;
        case O_HELP: fputs(usage_text, stdout); return PROBE_EXIT_OK;
        default: {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
            return usage_error(msg);
        }
        }
    }
    if (optind < argc) {
        char msg[256];
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
        return usage_error(msg);
    }

    char err[PROBE_ERR_LEN];
    int rc = PROBE_EXIT_RUNTIME, usage = 0;
    sqlite3_stmt *st = NULL, *ex = NULL;
    cJSON *root = NULL;
    Store *s = store_open(db, STORE_READ, err);
    if (!s) goto fail;

    /* the run */
    st = store_prepare(s,
                       run > 0 ? "SELECT id, status, n_layer, layers, model_dir, corpus_path, n_tokens "
                                 "FROM runs WHERE id = ?"
                               : "SELECT id, status, n_layer, layers, model_dir, corpus_path, n_tokens "
                                 "FROM runs WHERE status = 'complete' ORDER BY id DESC LIMIT 1",
                       err);
    if (!st) goto fail;
    if (run > 0) sqlite3_bind_int64(st, 1, run);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        if (r != SQLITE_DONE) {
            store_fail(s, r, err);
        } else if (run > 0) {
            err_set(err, "database '%s' has no run %ld", db, run);
            usage = 1;
        } else {
            err_set(err, "database '%s' has no complete run (record one, or pick one with --run)", db);
        }
        goto fail;
    }
    int64_t run_id = sqlite3_column_int64(st, 0);
    char status[16], layers[512], model[1024], corpus[1024];
    snprintf(status, sizeof status, "%s", (const char *)sqlite3_column_text(st, 1));
    int n_layer = sqlite3_column_int(st, 2);
    snprintf(layers, sizeof layers, "%s", (const char *)sqlite3_column_text(st, 3));
    snprintf(model, sizeof model, "%s", (const char *)sqlite3_column_text(st, 4));
    snprintf(corpus, sizeof corpus, "%s", (const char *)sqlite3_column_text(st, 5));
    int64_t n_tokens = sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    st = NULL;
    if (layer >= n_layer) {
        err_set(err, "--layer %ld out of range 0..%d (run %" PRId64 ")", layer, n_layer - 1, run_id);
        usage = 1;
        goto fail;
    }
    if (layer >= 0) {
        char needle[16];
        int hit = 0;
        snprintf(needle, sizeof needle, "%ld", layer);
        for (char *p = layers; (p = strstr(p, needle)) != NULL; p++) {
            char before = p == layers ? '[' : p[-1], after = p[strlen(needle)];
            if ((before == '[' || before == ',') && (after == ']' || after == ',')) hit = 1;
        }
        if (!hit) {
            err_set(err, "layer %ld was not recorded in run %" PRId64 " (layers %s)", layer, run_id, layers);
            usage = 1;
            goto fail;
        }
    }
    if (!json && strcmp(status, "complete"))
        fprintf(stderr, "probe top-neurons: warning: run %" PRId64 " is %s; statistics cover the tokens recorded so far\n",
                run_id, status);

    const char *col = !strcmp(by, "max") ? "max" : !strcmp(by, "mean") ? "mean" : "frac_pos";
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT layer, neuron, count, mean, variance, min, max, frac_pos FROM neuron_stats "
             "WHERE run_id = ?1 %s ORDER BY %s DESC, layer, neuron LIMIT ?3",
             layer >= 0 ? "AND layer = ?2" : "AND ?2 IS NULL", col);
    st = store_prepare(s, sql, err);
    ex = store_prepare(s,
                       "SELECT rank, value, token, token_id, doc_index, pos, left_context, right_context "
                       "FROM neuron_top_examples WHERE run_id = ? AND layer = ? AND neuron = ? "
                       "ORDER BY rank LIMIT " "5",
                       err);
    if (!st || !ex) goto fail;
    sqlite3_bind_int64(st, 1, run_id);
    if (layer >= 0) sqlite3_bind_int(st, 2, (int)layer);
    sqlite3_bind_int(st, 3, (int)limit);

    cJSON *arr = NULL;
    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "run", (double)run_id);
        json_add_text(root, "status", status);
        json_add_text(root, "model", model);
        json_add_text(root, "corpus", corpus);
        cJSON_AddNumberToObject(root, "tokens", (double)n_tokens);
        cJSON_AddStringToObject(root, "by", col);
        arr = cJSON_AddArrayToObject(root, "neurons");
    } else {
        printf("run %" PRId64 " (%s): %s on '%s', %" PRId64 " tokens; ranked by %s%s\n\n", run_id, status, model,
               corpus, n_tokens, col, layer >= 0 ? "" : " over all recorded layers");
        printf("%4s  %-9s %-24s %9s %9s %9s %7s\n", "rank", "neuron", "hook", "max", "mean", "std", "frac>0");
    }
    int rank = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        rank++;
        int l = sqlite3_column_int(st, 0), n = sqlite3_column_int(st, 1);
        double cnt = sqlite3_column_double(st, 2), mean = sqlite3_column_double(st, 3);
        double var = sqlite3_column_double(st, 4), mn = sqlite3_column_double(st, 5);
        double mx = sqlite3_column_double(st, 6), frac = sqlite3_column_double(st, 7);
        char name[32], hook[48];
        snprintf(name, sizeof name, "%d:%d", l, n);
        snprintf(hook, sizeof hook, "blocks.%d.mlp.hook_post", l);
        cJSON *obj = NULL, *exs = NULL;
        if (json) {
            obj = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, obj);
            cJSON_AddNumberToObject(obj, "rank", rank);
            cJSON_AddNumberToObject(obj, "layer", l);
            cJSON_AddNumberToObject(obj, "neuron", n);
            cJSON_AddStringToObject(obj, "name", name);
            cJSON_AddStringToObject(obj, "hook", hook);
            cJSON_AddNumberToObject(obj, "count", cnt);
            cJSON_AddNumberToObject(obj, "mean", mean);
            cJSON_AddNumberToObject(obj, "variance", var);
            cJSON_AddNumberToObject(obj, "min", mn);
            cJSON_AddNumberToObject(obj, "max", mx);
            cJSON_AddNumberToObject(obj, "frac_pos", frac);
            exs = cJSON_AddArrayToObject(obj, "examples");
        } else {
            printf("%4d  %-9s %-24s %9.4f %9.4f %9.4f %7.4f\n", rank, name, hook, mx, mean,
                   var > 0 ? sqrt(var) : 0.0, frac);
        }
        sqlite3_bind_int64(ex, 1, run_id);
        sqlite3_bind_int(ex, 2, l);
        sqlite3_bind_int(ex, 3, n);
        int r2;
        while ((r2 = sqlite3_step(ex)) == SQLITE_ROW) {
            const char *tok = (const char *)sqlite3_column_text(ex, 2);
            const char *left = (const char *)sqlite3_column_text(ex, 6);
            const char *right = (const char *)sqlite3_column_text(ex, 7);
            if (json) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddItemToArray(exs, e);
                cJSON_AddNumberToObject(e, "rank", sqlite3_column_int(ex, 0));
                cJSON_AddNumberToObject(e, "value", sqlite3_column_double(ex, 1));
                json_add_text(e, "token", tok);
                cJSON_AddNumberToObject(e, "token_id", sqlite3_column_int(ex, 3));
                cJSON_AddNumberToObject(e, "doc", sqlite3_column_int(ex, 4));
                cJSON_AddNumberToObject(e, "pos", sqlite3_column_int(ex, 5));
                json_add_text(e, "left_context", left);
                json_add_text(e, "right_context", right);
            } else {
                char lc[128], t[128], rcx[128];
                clip(lc, sizeof lc, left, 32, 1);
                clip(t, sizeof t, tok, 40, 0);
                clip(rcx, sizeof rcx, right, 20, 0);
                /* "..." where text was cut (token_context keeps 60 bytes before, 30 after) */
                size_t ll = left ? strlen(left) : 0, rl = right ? strlen(right) : 0;
                printf("      %9.4f  %s%s[[%s]]%s%s\n", sqlite3_column_double(ex, 1),
                       ll > 32 ? "..." : "", lc, t, rcx, rl > 20 ? "..." : "");
            }
        }
        sqlite3_reset(ex);
        if (r2 != SQLITE_DONE) {
            store_fail(s, r2, err);
            goto fail;
        }
    }
    if (r != SQLITE_DONE) {
        store_fail(s, r, err);
        goto fail;
    }
    if (json) {
        char *text = cJSON_Print(root);
        if (!text) {
            err_set(err, "out of memory");
            goto fail;
        }
        puts(text);
        free(text);
    } else if (rank == 0) {
        printf("(no statistics: the run recorded no tokens)\n");
    }
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "probe top-neurons: %s\n", err);
    rc = usage ? PROBE_EXIT_USAGE : PROBE_EXIT_RUNTIME;
done:
    cJSON_Delete(root);
    sqlite3_finalize(st);
    sqlite3_finalize(ex);
    store_close(s);
    return rc;
}
