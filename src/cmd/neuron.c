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
    *o = (NeuronOptions){.db = "probe.db", .run = -1, .neuron_opt = -1, .examples = 8, .color = 1};
    const CliOption opts[] = {CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_RUN(&o->run),
                              CLI_OPT_COUNT("neuron", &o->neuron_opt, 0, 1 << 20),
                              CLI_OPT_COUNT("examples", &o->examples, 1, 1000),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_CLEAR("no-color", &o->color),
                              CLI_OPT_SET("json", &o->json),
                              CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (args.n == 0) return cli_usage_error("which neuron? give L:N, e.g. probe neuron 5:123");
    o->spec = args.arg[0];
    int used = 1;
    /* `probe neuron L N` (SPEC §6) as well as L:N */
    if (args.n > 1 && !strchr(o->spec, ':') && strncmp(o->spec, "blocks.", 7)) {
        static char joined[64];
        snprintf(joined, sizeof joined, "%.30s:%.30s", o->spec, args.arg[used++]);
        o->spec = joined;
    }
    if (used < args.n) return cli_extra_argument(args.arg[used]);
    return cli_check_store_env();
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

static void print_tokens(const char *what, const ValueToken *v, char *const *text, int n) {
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

/* ---- gathering the card ------------------------------------------------------------- */

static const char *band_names[3] = {"q50-q90", "q90-q99", "above q99"};

/* Everything a card shows, gathered before anything is printed. */
typedef struct {
    NeuronRun run;
    int layer, neuron;
    NeuronRows rows;  /* the neuron's statistics: rows.rows[0] */
    NeuronExample *ex; /* [MAX_EX] its top examples, n_ex of them */
    Distinct *dist;    /* [MAX_EX] the same with identical contexts collapsed, n_dist */
    int n_ex, n_dist;
    uint32_t *hist; /* [ACT_HIST_BINS], when has_hist */
    int has_hist;
    double q50, q90, q99; /* from the histogram; NAN without one */
    NeuronExample band[3][SAMPLE_PER_BAND_MAX];
    int n_band[3];
    CardRow concepts[8], ablations[6];
    CardKv kv[2];
    int n_concepts, n_abl, n_kv;
    Values val;
} Card;

static void card_free(Card *c) {
    if (c->ex) neuron_examples_free(c->ex, c->n_ex);
    for (int b = 0; b < 3; b++) neuron_examples_free(c->band[b], c->n_band[b]);
    card_rows_free(c->concepts, c->n_concepts);
    card_rows_free(c->ablations, c->n_abl);
    values_free(&c->val);
    free(c->ex);
    free(c->dist);
    free(c->hist);
    neuron_rows_free(&c->rows);
    neuron_run_free(&c->run);
}

/* The run, and the neuron checked against it (usage errors: a layer or
 * neuron the run does not have). -1 to go on, else the exit code after the
 * error. */
static int card_find(Store *s, const NeuronOptions *o, long layer, long neuron, Card *c, ConceptRunInfo *info) {
    char err[PROBE_ERR_LEN];
    int rc = cli_find_run(s, o->run, &c->run);
    if (rc >= 0) return rc;
    if (layer >= c->run.n_layer || !neuron_run_has_layer(&c->run, (int)layer))
        return cli_usage_error("layer %ld %s run %" PRId64 " (layers %s)", layer,
                               layer >= c->run.n_layer ? "is out of range for" : "was not recorded in", c->run.id,
                               c->run.layers_text);
    if (concept_run_info(s, c->run.id, info, err)) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (neuron >= info->n_inner) return cli_usage_error("neuron %ld out of range 0..%d", neuron, info->n_inner - 1);
    c->layer = (int)layer;
    c->neuron = (int)neuron;
    return -1;
}

/* What the database holds of the neuron: statistics, examples, histogram,
 * concept scores, ablations, key-value figures. */
static int card_stored(Store *s, Card *c, char *err) {
    const int64_t run = c->run.id;
    const int lay = c->layer, neu = c->neuron;
    if (neuron_query_list(s, &c->run, &lay, &neu, 1, &c->rows, err) ||
        neuron_query_examples(s, run, lay, neu, c->ex, MAX_EX, &c->n_ex, err))
        return -1;
    c->n_dist = distinct_examples(c->ex, c->n_ex, c->dist);
    if ((c->has_hist = card_histogram(s, run, lay, neu, c->hist, ACT_HIST_BINS, err)) < 0) return -1;
    if (card_concepts(s, run, lay, neu, c->concepts, 8, &c->n_concepts, err) ||
        card_ablations(s, lay, neu, c->ablations, 6, &c->n_abl, err) ||
        card_kv(s, run, lay, neu, c->kv, 2, &c->n_kv, err))
        return -1;
    return 0;
}

/* Tokens from lower bands of the distribution (bounded by the histogram's
 * quantiles), found by replaying a few windows of the run. */
static int card_bands(Store *s, Model *m, int ctx, Card *c, char *err) {
    c->q50 = c->q90 = c->q99 = NAN;
    if (!c->has_hist) return 0;
    c->q50 = hist_quantile(c->hist, 0.5);
    c->q90 = hist_quantile(c->hist, 0.9);
    c->q99 = hist_quantile(c->hist, 0.99);
    SampleBand bands[3] = {{.lo = c->q50, .hi = c->q90}, {.lo = c->q90, .hi = c->q99}, {.lo = c->q99, .hi = INFINITY}};
    if (neuron_sample_bands(s, c->run.id, m, ctx, c->layer, c->neuron, 16, bands, 3, 2, err)) return -1;
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < bands[b].n; i++) {
            int got = neuron_query_token(s, c->run.id, bands[b].doc[i], bands[b].pos[i], bands[b].value[i],
                                         &c->band[b][c->n_band[b]], err);
            if (got < 0) return -1;
            if (got == 0) c->n_band[b]++;
        }
    return 0;
}

/* ---- the card as JSON ------------------------------------------------------------- */

static void json_card_values(cJSON *root, const Values *val) {
    cJSON *vals = cJSON_AddObjectToObject(root, "value");
    for (int v = 0; v < 2; v++) {
        cJSON *vo = cJSON_AddObjectToObject(vals, v ? "ln_f" : "raw");
        for (int d = 0; d < 2; d++) {
            cJSON *a = cJSON_AddArrayToObject(vo, d ? "suppressed" : "promoted");
            for (int i = 0; i < val->n[v][d]; i++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddItemToArray(a, t);
                json_add_text(t, "token", val->text[v][d][i]);
                cJSON_AddNumberToObject(t, "token_id", val->tok[v][d][i].id);
                cJSON_AddNumberToObject(t, "ids_sharing", val->tok[v][d][i].count);
                cJSON_AddNumberToObject(t, "logit", val->tok[v][d][i].logit);
            }
        }
    }
}

/* concepts, kv, ablations */
static void json_card_figures(cJSON *root, const Card *c) {
    cJSON *a = cJSON_AddArrayToObject(root, "concepts");
    for (int i = 0; i < c->n_concepts; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(a, t);
        json_add_text(t, "name", c->concepts[i].name);
        json_add_real(t, "auroc", c->concepts[i].a);
        json_add_real(t, "auroc_error", c->concepts[i].b);
        json_add_real(t, "cohen_d", c->concepts[i].c);
        cJSON_AddNumberToObject(t, "rank", (double)c->concepts[i].rank);
        cJSON_AddNumberToObject(t, "of", (double)c->concepts[i].of);
    }
    a = cJSON_AddArrayToObject(root, "kv");
    for (int i = 0; i < c->n_kv; i++) {
        const CardKv *k = &c->kv[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(a, t);
        cJSON_AddStringToObject(t, "variant", k->variant);
        if (k->next_id >= 0)
            cJSON_AddNumberToObject(t, "next_token_id", k->next_id);
        else
            cJSON_AddNullToObject(t, "next_token_id");
        cJSON_AddNumberToObject(t, "value_top_id", k->value_top);
        if (k->agree >= 0)
            cJSON_AddBoolToObject(t, "agree", k->agree);
        else
            cJSON_AddNullToObject(t, "agree");
        json_add_real(t, "median_rank", k->median_rank);
    }
    a = cJSON_AddArrayToObject(root, "ablations");
    for (int i = 0; i < c->n_abl; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(a, t);
        json_add_text(t, "label", c->ablations[i].name);
        cJSON_AddNumberToObject(t, "ablation_id", (double)c->ablations[i].rank);
        json_add_real(t, "delta_loss", c->ablations[i].a);
        json_add_real(t, "kl", c->ablations[i].b);
        json_add_real(t, "top1_agreement", c->ablations[i].c);
    }
}

/* 0, or -1 when out of memory. */
static int print_card_json(const Card *c, long examples) {
    const NeuronRow *row = &c->rows.rows[0];
    cJSON *root = cJSON_CreateObject(), *a;
    char name[32];
    snprintf(name, sizeof name, "%d:%d", c->layer, c->neuron);
    neuron_json_add_run(root, &c->run);
    cJSON_AddStringToObject(root, "neuron", name);
    cJSON_AddNumberToObject(root, "layer", c->layer);
    cJSON_AddNumberToObject(root, "index", c->neuron);
    cJSON *st = cJSON_AddObjectToObject(root, "stats");
    cJSON_AddNumberToObject(st, "count", row->count);
    cJSON_AddNumberToObject(st, "mean", row->mean);
    cJSON_AddNumberToObject(st, "std", row->variance > 0 ? sqrt(row->variance) : 0);
    cJSON_AddNumberToObject(st, "min", row->min);
    cJSON_AddNumberToObject(st, "max", row->max);
    cJSON_AddNumberToObject(st, "frac_pos", row->frac_pos);
    json_add_real(st, "q50", c->q50);
    json_add_real(st, "q90", c->q90);
    json_add_real(st, "q99", c->q99);
    a = cJSON_AddArrayToObject(root, "top_examples");
    for (int i = 0; i < c->n_dist && i < examples; i++) json_example(a, &c->dist[i].ex, c->dist[i].count);
    cJSON *bands = cJSON_AddObjectToObject(root, "band_examples");
    for (int b = 0; b < 3; b++) {
        a = cJSON_AddArrayToObject(bands, band_names[b]);
        for (int i = 0; i < c->n_band[b]; i++) json_example(a, &c->band[b][i], 0);
    }
    json_card_values(root, &c->val);
    json_card_figures(root, c);
    return cli_print_json(root);
}

/* ---- the card as text --------------------------------------------------------------- */

/* Token id's text for a kv line, clipped, into out[64]; out is left as it
 * is when the id has no token. */
static void kv_token_text(const Model *m, int id, char *out) {
    size_t len = 0;
    const char *bytes = tok_token_bytes(m->tok, id, &len);
    if (!bytes) return;
    char t[48];
    memcpy(t, bytes, len < 47 ? len : 47);
    t[len < 47 ? len : 47] = '\0';
    text_clip(out, 64, t, 30, 0);
}

/* concepts, kv, ablations: each only when the database holds some */
static void print_card_figures(const Card *c, const Model *m) {
    if (c->n_concepts) {
        printf("\nconcepts (latest ranking of each over run %" PRId64 "):\n", c->run.id);
        for (int i = 0; i < c->n_concepts; i++) {
            const CardRow *x = &c->concepts[i];
            printf("  %-28s auroc %.4f+-%.4f  d %+.3f  rank %" PRId64 " of %" PRId64 "\n", x->name, x->a, x->b, x->c,
                   x->rank, x->of);
        }
    }
    if (c->n_kv) {
        printf("\nkey-value (latest probe kv over run %" PRId64 "):\n", c->run.id);
        for (int i = 0; i < c->n_kv; i++) {
            const CardKv *k = &c->kv[i];
            char a[64] = "-", b[64] = "-";
            if (k->next_id >= 0) kv_token_text(m, k->next_id, a);
            kv_token_text(m, k->value_top, b);
            printf("  %-5s after its top trigger '%s'; its value's top token '%s'%s; median rank of its %d "
                   "triggers' next tokens %.0f\n",
                   k->variant, a, b, k->agree == 1 ? " (agree)" : "", k->triggers, k->median_rank);
        }
    }
    if (c->n_abl) {
        printf("\nablations stored (newest first):\n");
        for (int i = 0; i < c->n_abl; i++) {
            const CardRow *a = &c->ablations[i];
            char d[32], kl[32];
            cli_small(d, sizeof d, a->a, 1);
            if (isnan(a->b)) /* a neuron sweep's first-order estimate */
                printf("  ablation %-4" PRId64 " %-24s dloss %s (first-order estimate)\n", a->rank, a->name, d);
            else
                printf("  ablation %-4" PRId64 " %-24s dloss %s  KL %s  top-1 %.2f%%\n", a->rank, a->name, d,
                       cli_small(kl, sizeof kl, a->b, 0), 100 * a->c);
        }
    }
}

static void print_card(const Card *c, const Model *m, long examples, int color) {
    const NeuronRow *row = &c->rows.rows[0];
    const int lay = c->layer, neu = c->neuron;
    printf("neuron %d:%d  (blocks.%d.mlp.hook_post, neuron %d)  run %" PRId64 ": %s on '%s'\n", lay, neu, lay, neu,
           c->run.id, c->run.model_dir, c->run.corpus_path);
    printf("  %.0f tokens: mean %.4f  std %.4f  min %.4f  max %.4f  active (>0) %.2f%%\n", row->count, row->mean,
           row->variance > 0 ? sqrt(row->variance) : 0.0, row->min, row->max, 100 * row->frac_pos);
    if (c->has_hist) {
        print_histogram(c->hist);
        printf("  quantiles (bin edges): q50 %.4g  q90 %.4g  q99 %.4g\n", c->q50, c->q90, c->q99);
    }
    printf("\ntop examples (%d distinct contexts among the %d kept):\n", c->n_dist, c->n_ex);
    for (int i = 0; i < c->n_dist && i < examples; i++) example_line(&c->dist[i].ex, c->dist[i].count, color);
    if (c->has_hist) {
        printf("\nfrom lower in its distribution (the first tokens of each band in a few replayed windows):\n");
        for (int b = 0; b < 3; b++) {
            if (!c->n_band[b]) printf("  %s: none found\n", band_names[b]);
            for (int i = 0; i < c->n_band[b]; i++) {
                if (!i) printf("  %s:\n", band_names[b]);
                example_line(&c->band[b][i], 0, color);
            }
        }
    }
    printf("\nvalue (what it adds to the residual, read through the unembedding%s):\n",
           c->val.stored ? "; stored by probe kv" : "");
    for (int v = 0; v < 2; v++) {
        printf("  %s\n", v ? "through ln_f's gain, W_U.(g*v):" : "raw, W_U.v:");
        print_tokens("promotes", c->val.tok[v][0], c->val.text[v][0], c->val.n[v][0]);
        print_tokens("suppresses", c->val.tok[v][1], c->val.text[v][1], c->val.n[v][1]);
    }
    print_card_figures(c, m);
}

/* ---- the command ----------------------------------------------------------------- */

int cmd_neuron(int argc, char **argv) {
    NeuronOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    long layer = 0, neuron = 0;
    if (parse_spec(o.spec, o.neuron_opt, &layer, &neuron)) return PROBE_EXIT_USAGE;
    char err[PROBE_ERR_LEN];
    Store *s = NULL;
    Model *m = NULL;
    ConceptRunInfo info;
    Card c = {.ex = calloc(MAX_EX, sizeof *c.ex), .dist = calloc(MAX_EX, sizeof *c.dist),
              .hist = malloc(sizeof *c.hist * ACT_HIST_BINS)};
    if (!c.ex || !c.dist || !c.hist) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (!(s = store_open(o.db, STORE_READ, err))) goto fail;
    if ((rc = card_find(s, &o, layer, neuron, &c, &info)) >= 0) goto done;
    if (card_stored(s, &c, err)) goto fail;
    if (!(m = model_load(o.model ? o.model : c.run.model_dir, err))) goto fail;
    if (m->checksum != info.model_checksum) {
        err_set(err, "model '%s' is not the model run %" PRId64 " recorded; pass it with --model", m->dir, c.run.id);
        goto fail;
    }
    if (values_get(s, m, c.layer, c.neuron, &c.val, err) || card_bands(s, m, info.ctx, &c, err)) goto fail;
    if (o.json) {
        if (print_card_json(&c, o.examples)) {
            err_set(err, "out of memory");
            goto fail;
        }
    } else {
        print_card(&c, m, o.examples, o.color && isatty(1));
    }
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
done:
    card_free(&c);
    model_free(m);
    store_close(s);
    return rc;
}
