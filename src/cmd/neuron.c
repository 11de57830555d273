/* neuron.c — `probe neuron L:N`: one neuron's card.
 *
 *   probe neuron 5:123
 *   probe neuron blocks.5.mlp.hook_post --neuron 123 --json
 *
 * Statistics with a small histogram of its activations, its top examples
 * (identical contexts collapsed with a count), tokens from lower bands of
 * its distribution (a few windows replayed: analysis/neuron_sample.h), what
 * its value writes through the unembedding (both variants: stored by
 * `probe kv`, else computed here), and, where stored, its concept scores,
 * key-value figures and ablations (db/neuron_card.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_hist.h"
#include "cli.h"
#include "commands.h"
#include "concept_store.h"
#include "kv_store.h"
#include "neuron_card.h"
#include "neuron_query.h"
#include "neuron_render.h"
#include "neuron_sample.h"
#include "store.h"
#include "util.h"
#include "value_proj.h"

static const char *usage_text =
    "usage: probe neuron L:N [options]          (or: probe neuron L N)\n"
    "       probe neuron blocks.L.mlp.hook_post --neuron N [options]\n"
    "\n"
    "A neuron's card from a recorded run: its statistics and a histogram of its\n"
    "activations, its top examples (identical contexts collapsed, with a count),\n"
    "tokens from lower bands of its distribution (q50-q90, q90-q99, above q99: a few\n"
    "windows of the run replayed), its value's promoted and suppressed tokens (raw\n"
    "W_U.v and through ln_f's gain), and, where the database holds them, its scores\n"
    "in concept rankings, its key-value figures (probe kv) and ablations of it.\n"
    "\n"
    "  --db FILE       database (default probe.db)\n"
    "  --run ID        recorded run (default: the latest complete run)\n"
    "  --neuron N      the neuron, with a TransformerLens hook name as the argument\n"
    "  --examples N    distinct top contexts to show (default 8)\n"
    "  --model DIR     the run's model (default: the directory it was recorded from)\n"
    "  --no-color      brackets instead of colour for the token, even on a terminal\n"
    "  --json          JSON for programs instead of the card\n"
    "  --help          this text\n";

typedef struct {
    const char *db, *model, *spec;
    long run, neuron_opt, examples;
    int json, color;
} NeuronOptions;

/* "L:N" or "blocks.L.mlp.hook_post" (with --neuron): 0 and *layer, *neuron. */
static int parse_spec(const char *spec, long neuron_opt, long *layer, long *neuron) {
    char *end;
    if (!strncmp(spec, "blocks.", 7)) {
        long l = strtol(spec + 7, &end, 10);
        if (end == spec + 7 || strcmp(end, ".mlp.hook_post") || l < 0)
            return cli_usage_error("'%s' is not a neuron hook: use blocks.L.mlp.hook_post with --neuron N", spec);
        if (neuron_opt < 0) return cli_usage_error("%s names a layer: add --neuron N", spec);
        *layer = l;
        *neuron = neuron_opt;
        return 0;
    }
    long l = strtol(spec, &end, 10);
    if (end == spec || *end != ':' || l < 0)
        return cli_usage_error("'%s' is not a neuron: write L:N (layer:neuron, 0-based), e.g. 5:123", spec);
    const char *p = end + 1;
    long n = strtol(p, &end, 10);
    if (end == p || *end || n < 0)
        return cli_usage_error("'%s' is not a neuron: write L:N (layer:neuron, 0-based), e.g. 5:123", spec);
    if (neuron_opt >= 0) return cli_usage_error("--neuron goes with a hook name, not with L:N");
    *layer = l;
    *neuron = n;
    return 0;
}

static int parse_options(int argc, char **argv, NeuronOptions *o) {
    enum { O_DB = 1, O_RUN, O_NEURON, O_EXAMPLES, O_MODEL, O_NOCOLOR, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},           {"run", required_argument, 0, O_RUN},
        {"neuron", required_argument, 0, O_NEURON},   {"examples", required_argument, 0, O_EXAMPLES},
        {"model", required_argument, 0, O_MODEL},     {"no-color", no_argument, 0, O_NOCOLOR},
        {"json", no_argument, 0, O_JSON},             {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    *o = (NeuronOptions){.db = "probe.db", .run = -1, .neuron_opt = -1, .examples = 8, .color = 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_RUN:
            if (cli_parse_run(optarg, &o->run)) return PROBE_EXIT_USAGE;
            break;
        case O_NEURON:
            if (cli_parse_count("--neuron", optarg, 0, 1 << 20, &o->neuron_opt)) return PROBE_EXIT_USAGE;
            break;
        case O_EXAMPLES:
            if (cli_parse_count("--examples", optarg, 1, 1000, &o->examples)) return PROBE_EXIT_USAGE;
            break;
        case O_MODEL: o->model = optarg; break;
        case O_NOCOLOR: o->color = 0; break;
        case O_JSON: o->json = 1; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind >= argc) return cli_usage_error("which neuron? give L:N, e.g. probe neuron 5:123");
    o->spec = argv[optind++];
    /* `probe neuron L N` (SPEC §6) as well as L:N */
    if (optind < argc && !strchr(o->spec, ':') && strncmp(o->spec, "blocks.", 7)) {
        static char joined[64];
        snprintf(joined, sizeof joined, "%.30s:%.30s", o->spec, argv[optind++]);
        o->spec = joined;
    }
    if (optind < argc) return cli_extra_argument(argv[optind]);
    char err[PROBE_ERR_LEN];
    if (store_env_check(err)) return cli_usage_error("%s", err);
    return -1;
}

/* ---- the parts of a card ---------------------------------------------------------- */

typedef struct {
    NeuronExample ex;
    int count; /* identical contexts collapsed into this one */
} Distinct;

/* Collapses examples with the same left context, token and right context. */
static int distinct_examples(NeuronExample *ex, int n, Distinct *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (; k < m; k++)
            if (!strcmp(out[k].ex.token, ex[i].token) && !strcmp(out[k].ex.left_context, ex[i].left_context) &&
                !strcmp(out[k].ex.right_context, ex[i].right_context))
                break;
        if (k < m)
            out[k].count++;
        else
            out[m++] = (Distinct){ex[i], 1};
    }
    return m;
}


static void example_line(const NeuronExample *e, int count, int color) {
    char l[160], t[96], r[96];
    text_clip(l, sizeof l, e->left_context, 40, 1);
    text_clip(t, sizeof t, e->token, 40, 0);
    text_clip(r, sizeof r, e->right_context, 24, 0);
    char times[16] = "";
    if (count > 1) snprintf(times, sizeof times, "x%d", count);
    if (color)
        printf("  %9.4f %4s  %s\x1b[1;7m%s\x1b[0m%s\n", e->value, times, l, t, r);
    else
        printf("  %9.4f %4s  %s[[%s]]%s\n", e->value, times, l, t, r);
}

/* A row of the histogram: the occupied bins in at most 48 columns, log scale. */
static void print_histogram(const uint32_t *h) {
    int lo = -1, hi = -1;
    for (int b = 0; b < ACT_HIST_BINS; b++)
        if (h[b]) {
            if (lo < 0) lo = b;
            hi = b;
        }
    if (lo < 0) return;
    enum { COLS = 48 };
    int span = hi - lo + 1, cols = span < COLS ? span : COLS;
    double col[COLS] = {0}, top = 0;
    for (int b = lo; b <= hi; b++) col[(int64_t)(b - lo) * cols / span] += h[b];
    for (int c = 0; c < cols; c++) {
        col[c] = log1p(col[c]);
        if (col[c] > top) top = col[c];
    }
    static const char *bars[] = {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    double elo, ehi, dummy;
    act_hist_edges(lo, &elo, &dummy);
    act_hist_edges(hi, &dummy, &ehi);
    printf("  histogram (log counts, %d of 1024 bins): %.3g ", span, elo);
    for (int c = 0; c < cols; c++) printf("%s", bars[top > 0 ? (int)lround(col[c] / top * 8) : 0]);
    printf(" %.3g\n", isfinite(ehi) ? ehi : elo);
}

/* The value at quantile q from the histogram: the lower edge of the bin
 * where the cumulative count passes q (a bound, not an interpolation). */
static double hist_quantile(const uint32_t *h, double q) {
    uint64_t total = 0, cum = 0;
    for (int b = 0; b < ACT_HIST_BINS; b++) total += h[b];
    for (int b = 0; b < ACT_HIST_BINS; b++) {
        cum += h[b];
        if ((double)cum >= q * (double)total) {
            double lo, hi;
            act_hist_edges(b, &lo, &hi);
            return lo;
        }
    }
    return INFINITY;
}

static void print_tokens(const char *what, const ValueToken *v, char **text, int n) {
    printf("    %-10s", what);
    for (int i = 0; i < n; i++) {
        char t[64];
        text_clip(t, sizeof t, text[i], 24, 0);
        if (v[i].count > 1)
            printf(" '%s'(x%d ids) %+.2f", t, v[i].count, v[i].logit);
        else
            printf(" '%s' %+.2f", t, v[i].logit);
    }
    printf("\n");
}

enum { K_VALUE = 8, MAX_EX = 256 };

typedef struct {
    ValueToken tok[2][2][K_VALUE]; /* [variant][promoted, suppressed] */
    char *text[2][2][K_VALUE];
    int n[2][2];
    int stored; /* from value_tokens (probe kv) rather than computed here */
} Values;

static void values_free(Values *v) {
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < v->n[a][b]; i++) free(v->text[a][b][i]);
}

/* The value tokens of the neuron: stored by `probe kv`, else computed here
 * (its one row of logits). */
static int values_get(Store *s, Model *m, int layer, int neuron, Values *v, char *err) {
    static const char *var[2] = {"raw", "ln_f"}, *dir[2] = {"promoted", "suppressed"};
    memset(v, 0, sizeof *v);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (value_tokens_load(s, m->checksum, layer, neuron, var[a], dir[b], v->tok[a][b], v->text[a][b], K_VALUE,
                                  &v->n[a][b], err))
                return -1;
    if (v->n[0][0] > 0 && v->n[1][0] > 0) {
        v->stored = 1;
        return 0;
    }
    values_free(v);
    memset(v, 0, sizeof *v);
    ValueVocab *vv = value_vocab_new(m, err);
    if (!vv) return -1;
    int rc = -1;
    /* this neuron alone: one row of logits */
    ValueToken *top = malloc(sizeof *top * K_VALUE), *bot = malloc(sizeof *bot * K_VALUE);
    if (!top || !bot) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int a = 0; a < 2; a++) {
        ValueLayer vl = {.first = neuron, .count = 1, .k = K_VALUE, .top = top, .bottom = bot};
        if (value_project_layer(m, vv, layer, a ? VALUE_LNF : VALUE_RAW, &vl, err)) goto done;
        for (int b = 0; b < 2; b++) {
            const ValueToken *src = b ? bot : top;
            for (int i = 0; i < K_VALUE && src[i].id >= 0; i++) {
                size_t len = 0;
                const char *bytes = tok_token_bytes(m->tok, src[i].id, &len);
                char *t = malloc(len + 1);
                if (!t) {
                    err_set(err, "out of memory");
                    goto done;
                }
                memcpy(t, bytes ? bytes : "", bytes ? len : 0);
                t[bytes ? len : 0] = '\0';
                v->tok[a][b][i] = src[i];
                v->text[a][b][v->n[a][b]++] = t;
            }
        }
    }
    rc = 0;
done:
    free(top);
    free(bot);
    value_vocab_free(vv);
    return rc;
}

static void json_example(cJSON *arr, const NeuronExample *e, int count) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    cJSON_AddNumberToObject(o, "value", e->value);
    json_add_text(o, "token", e->token);
    cJSON_AddNumberToObject(o, "token_id", e->token_id);
    cJSON_AddNumberToObject(o, "doc", e->doc);
    cJSON_AddNumberToObject(o, "pos", e->pos);
    json_add_text(o, "left_context", e->left_context);
    json_add_text(o, "right_context", e->right_context);
    if (count) cJSON_AddNumberToObject(o, "count", count);
}

static void json_real(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

int cmd_neuron(int argc, char **argv) {
    NeuronOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    long layer = 0, neuron = 0;
    if (parse_spec(o.spec, o.neuron_opt, &layer, &neuron)) return PROBE_EXIT_USAGE;
    char err[PROBE_ERR_LEN];
    Store *s = NULL;
    Model *m = NULL;
    NeuronRun run = {0};
    NeuronRows rows = {0};
    NeuronExample *ex = calloc(MAX_EX, sizeof *ex);
    Distinct *dist = calloc(MAX_EX, sizeof *dist);
    uint32_t *hist = malloc(sizeof *hist * ACT_HIST_BINS);
    NeuronExample bandex[3][SAMPLE_PER_BAND_MAX];
    int bandn[3] = {0, 0, 0};
    CardRow concepts[8], ablations[6];
    CardKv kv[2];
    int n_ex = 0, n_concepts = 0, n_abl = 0, n_kv = 0, has_hist = 0;
    Values val = {0};
    rc = PROBE_EXIT_RUNTIME;
    if (!ex || !dist || !hist) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (!(s = store_open(o.db, STORE_READ, err))) goto fail;
    int r = neuron_run_find(s, o.run > 0 ? o.run : 0, &run, err);
    if (r == -2) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (r) goto fail;
    if (layer >= run.n_layer || !neuron_run_has_layer(&run, (int)layer)) {
        rc = cli_usage_error("layer %ld %s run %" PRId64 " (layers %s)", layer,
                             layer >= run.n_layer ? "is out of range for" : "was not recorded in", run.id,
                             run.layers_text);
        goto done;
    }
    ConceptRunInfo info;
    if (concept_run_info(s, run.id, &info, err)) goto fail;
    if (neuron >= info.n_inner) {
        rc = cli_usage_error("neuron %ld out of range 0..%d", neuron, info.n_inner - 1);
        goto done;
    }
    int lay = (int)layer, neu = (int)neuron;
    if (neuron_query_list(s, &run, &lay, &neu, 1, &rows, err)) goto fail;
    if (neuron_query_examples(s, run.id, lay, neu, ex, MAX_EX, &n_ex, err)) goto fail;
    int n_dist = distinct_examples(ex, n_ex, dist);
    if ((has_hist = card_histogram(s, run.id, lay, neu, hist, ACT_HIST_BINS, err)) < 0) goto fail;
    if (card_concepts(s, run.id, lay, neu, concepts, 8, &n_concepts, err) ||
        card_ablations(s, lay, neu, ablations, 6, &n_abl, err) || card_kv(s, run.id, lay, neu, kv, 2, &n_kv, err))
        goto fail;
    if (!(m = model_load(o.model ? o.model : run.model_dir, err))) goto fail;
    if (m->checksum != info.model_checksum) {
        err_set(err, "model '%s' is not the model run %" PRId64 " recorded; pass it with --model", m->dir, run.id);
        goto fail;
    }
    if (values_get(s, m, lay, neu, &val, err)) goto fail;
    /* tokens from lower bands of the distribution */
    double q50 = NAN, q90 = NAN, q99 = NAN;
    if (has_hist) {
        q50 = hist_quantile(hist, 0.5);
        q90 = hist_quantile(hist, 0.9);
        q99 = hist_quantile(hist, 0.99);
        SampleBand bands[3] = {{.lo = q50, .hi = q90}, {.lo = q90, .hi = q99}, {.lo = q99, .hi = INFINITY}};
        if (neuron_sample_bands(s, run.id, m, info.ctx, lay, neu, 16, bands, 3, 2, err)) goto fail;
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < bands[b].n; i++) {
                int got = neuron_query_token(s, run.id, bands[b].doc[i], bands[b].pos[i], bands[b].value[i],
                                             &bandex[b][bandn[b]], err);
                if (got < 0) goto fail;
                if (got == 0) bandn[b]++;
            }
    }
    const NeuronRow *row = &rows.rows[0];
    int color = o.color && isatty(1);
    static const char *band_names[3] = {"q50-q90", "q90-q99", "above q99"};
    if (o.json) {
        cJSON *root = cJSON_CreateObject(), *a;
        char name[32];
        snprintf(name, sizeof name, "%d:%d", lay, neu);
        neuron_json_add_run(root, &run);
        cJSON_AddStringToObject(root, "neuron", name);
        cJSON_AddNumberToObject(root, "layer", lay);
        cJSON_AddNumberToObject(root, "index", neu);
        cJSON *st = cJSON_AddObjectToObject(root, "stats");
        cJSON_AddNumberToObject(st, "count", row->count);
        cJSON_AddNumberToObject(st, "mean", row->mean);
        cJSON_AddNumberToObject(st, "std", row->variance > 0 ? sqrt(row->variance) : 0);
        cJSON_AddNumberToObject(st, "min", row->min);
        cJSON_AddNumberToObject(st, "max", row->max);
        cJSON_AddNumberToObject(st, "frac_pos", row->frac_pos);
        json_real(st, "q50", q50);
        json_real(st, "q90", q90);
        json_real(st, "q99", q99);
        a = cJSON_AddArrayToObject(root, "top_examples");
        for (int i = 0; i < n_dist && i < o.examples; i++) json_example(a, &dist[i].ex, dist[i].count);
        cJSON *bands = cJSON_AddObjectToObject(root, "band_examples");
        for (int b = 0; b < 3; b++) {
            a = cJSON_AddArrayToObject(bands, band_names[b]);
            for (int i = 0; i < bandn[b]; i++) json_example(a, &bandex[b][i], 0);
        }
        cJSON *vals = cJSON_AddObjectToObject(root, "value");
        for (int v = 0; v < 2; v++) {
            cJSON *vo = cJSON_AddObjectToObject(vals, v ? "ln_f" : "raw");
            for (int d = 0; d < 2; d++) {
                a = cJSON_AddArrayToObject(vo, d ? "suppressed" : "promoted");
                for (int i = 0; i < val.n[v][d]; i++) {
                    cJSON *t = cJSON_CreateObject();
                    cJSON_AddItemToArray(a, t);
                    json_add_text(t, "token", val.text[v][d][i]);
                    cJSON_AddNumberToObject(t, "token_id", val.tok[v][d][i].id);
                    cJSON_AddNumberToObject(t, "ids_sharing", val.tok[v][d][i].count);
                    cJSON_AddNumberToObject(t, "logit", val.tok[v][d][i].logit);
                }
            }
        }
        a = cJSON_AddArrayToObject(root, "concepts");
        for (int i = 0; i < n_concepts; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddItemToArray(a, t);
            json_add_text(t, "name", concepts[i].name);
            json_real(t, "auroc", concepts[i].a);
            json_real(t, "auroc_error", concepts[i].b);
            json_real(t, "cohen_d", concepts[i].c);
            cJSON_AddNumberToObject(t, "rank", (double)concepts[i].rank);
            cJSON_AddNumberToObject(t, "of", (double)concepts[i].of);
        }
        a = cJSON_AddArrayToObject(root, "kv");
        for (int i = 0; i < n_kv; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddItemToArray(a, t);
            cJSON_AddStringToObject(t, "variant", kv[i].variant);
            if (kv[i].next_id >= 0)
                cJSON_AddNumberToObject(t, "next_token_id", kv[i].next_id);
            else
                cJSON_AddNullToObject(t, "next_token_id");
            cJSON_AddNumberToObject(t, "value_top_id", kv[i].value_top);
            if (kv[i].agree >= 0)
                cJSON_AddBoolToObject(t, "agree", kv[i].agree);
            else
                cJSON_AddNullToObject(t, "agree");
            json_real(t, "median_rank", kv[i].median_rank);
        }
        a = cJSON_AddArrayToObject(root, "ablations");
        for (int i = 0; i < n_abl; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddItemToArray(a, t);
            json_add_text(t, "label", ablations[i].name);
            cJSON_AddNumberToObject(t, "ablation_id", (double)ablations[i].rank);
            json_real(t, "delta_loss", ablations[i].a);
            json_real(t, "kl", ablations[i].b);
            json_real(t, "top1_agreement", ablations[i].c);
        }
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text) {
            err_set(err, "out of memory");
            goto fail;
        }
        puts(text);
        free(text);
    } else {
        printf("neuron %d:%d  (blocks.%d.mlp.hook_post, neuron %d)  run %" PRId64 ": %s on '%s'\n", lay, neu, lay, neu,
               run.id, run.model_dir, run.corpus_path);
        printf("  %.0f tokens: mean %.4f  std %.4f  min %.4f  max %.4f  active (>0) %.2f%%\n", row->count, row->mean,
               row->variance > 0 ? sqrt(row->variance) : 0.0, row->min, row->max, 100 * row->frac_pos);
        if (has_hist) {
            print_histogram(hist);
            printf("  quantiles (bin edges): q50 %.4g  q90 %.4g  q99 %.4g\n", q50, q90, q99);
        }
        printf("\ntop examples (%d distinct contexts among the %d kept):\n", n_dist, n_ex);
        for (int i = 0; i < n_dist && i < o.examples; i++) example_line(&dist[i].ex, dist[i].count, color);
        if (has_hist) {
            printf("\nfrom lower in its distribution (the first tokens of each band in a few replayed windows):\n");
            for (int b = 0; b < 3; b++) {
                if (!bandn[b]) printf("  %s: none found\n", band_names[b]);
                for (int i = 0; i < bandn[b]; i++) {
                    if (!i) printf("  %s:\n", band_names[b]);
                    example_line(&bandex[b][i], 0, color);
                }
            }
        }
        printf("\nvalue (what it adds to the residual, read through the unembedding%s):\n",
               val.stored ? "; stored by probe kv" : "");
        for (int v = 0; v < 2; v++) {
            printf("  %s\n", v ? "through ln_f's gain, W_U.(g*v):" : "raw, W_U.v:");
            print_tokens("promotes", val.tok[v][0], val.text[v][0], val.n[v][0]);
            print_tokens("suppresses", val.tok[v][1], val.text[v][1], val.n[v][1]);
        }
        if (n_concepts) {
            printf("\nconcepts (latest ranking of each over run %" PRId64 "):\n", run.id);
            for (int i = 0; i < n_concepts; i++)
                printf("  %-28s auroc %.4f+-%.4f  d %+.3f  rank %" PRId64 " of %" PRId64 "\n", concepts[i].name,
                       concepts[i].a, concepts[i].b, concepts[i].c, concepts[i].rank, concepts[i].of);
        }
        if (n_kv) {
            printf("\nkey-value (latest probe kv over run %" PRId64 "):\n", run.id);
            for (int i = 0; i < n_kv; i++) {
                char a[64] = "-", b[64] = "-";
                size_t len = 0;
                const char *bytes;
                if (kv[i].next_id >= 0 && (bytes = tok_token_bytes(m->tok, kv[i].next_id, &len))) {
                    char t[48];
                    memcpy(t, bytes, len < 47 ? len : 47);
                    t[len < 47 ? len : 47] = '\0';
                    text_clip(a, sizeof a, t, 30, 0);
                }
                if ((bytes = tok_token_bytes(m->tok, kv[i].value_top, &len))) {
                    char t[48];
                    memcpy(t, bytes, len < 47 ? len : 47);
                    t[len < 47 ? len : 47] = '\0';
                    text_clip(b, sizeof b, t, 30, 0);
                }
                printf("  %-5s after its top trigger '%s'; its value's top token '%s'%s; median rank of its %d "
                       "triggers' next tokens %.0f\n",
                       kv[i].variant, a, b, kv[i].agree == 1 ? " (agree)" : "", kv[i].triggers, kv[i].median_rank);
            }
        }
        if (n_abl) {
            printf("\nablations stored (newest first):\n");
            for (int i = 0; i < n_abl; i++)
                printf("  ablation %-4" PRId64 " %-20s dloss %+.4f  KL %.4f  top-1 %.2f%%\n", ablations[i].rank,
                       ablations[i].name, ablations[i].a, ablations[i].b, 100 * ablations[i].c);
        }
    }
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
done:
    if (ex) neuron_examples_free(ex, n_ex);
    for (int b = 0; b < 3; b++) neuron_examples_free(bandex[b], bandn[b]);
    card_rows_free(concepts, n_concepts);
    card_rows_free(ablations, n_abl);
    values_free(&val);
    free(ex);
    free(dist);
    free(hist);
    neuron_rows_free(&rows);
    neuron_run_free(&run);
    model_free(m);
    store_close(s);
    return rc;
}
