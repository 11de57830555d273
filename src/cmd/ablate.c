/* ablate.c — `probe ablate`: remove FFNs or neurons and measure what
 * the model loses on a corpus.
 *
 *   probe ablate examples/heldout_mobydick.txt --sweep layers
 *   probe ablate corpus.txt --neurons 5:123,5:456 --mode mean --db probe.db
 *   sqlite3 probe.db 'SELECT * FROM ablation_summary'
 *
 * This file parses the options, wires the parts and prints the results:
 * the conditions and their measurement are analysis/conditions.h (per window
 * one baseline forward shared by every condition, analysis/ablate.h), the
 * documents analysis/doc_source.h (a corpus cut into the same documents and
 * windows as `probe record`, or the tokens of a recorded run), the neuron
 * means and the stored results db/ablations.h (one ablation row, one row per
 * condition, one row per condition and token, in one transaction at the
 * end, so an interrupted run leaves nothing behind). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablate.h"
#include "ablations.h"
#include "cli.h"
#include "commands.h"
#include "concept_ablate.h"
#include "concept_rank.h"
#include "conditions.h"
#include "doc_source.h"
#include "model.h"
#include "neuron_sweep.h"
#include "progress.h"
#include "store.h"
#include "util.h"

static const char *usage_text =
    "usage: probe ablate [CORPUS | --run ID] CONDITION [options]\n"
    "\n"
    "Runs the corpus with and without an intervention and reports, per condition,\n"
    "the baseline and ablated next-token cross-entropy (nats/token), perplexity,\n"
    "delta loss, KL(baseline || ablated) averaged over tokens and the fraction of\n"
    "tokens whose top-1 prediction is unchanged.\n"
    "\n"
    "CONDITION (exactly one):\n"
    "  --no-ffn              remove the FFN of every layer\n"
    "  --layers LIST         remove the FFN of these layers, e.g. 3,5-7 (0-based)\n"
    "  --neurons LIST        ablate these neurons, e.g. 5:123,5:456 (layer:neuron)\n"
    "  --sweep layers        remove each layer's FFN in turn, one row per layer\n"
    "  --sweep neurons [--layer L]\n"
    "                        every neuron of layer L (or of every layer) ablated alone:\n"
    "                        the effect of each is estimated at once by attribution\n"
    "                        patching (one forward and one backward pass per window: the\n"
    "                        gradient of the loss times the change the ablation makes to\n"
    "                        the neuron), then the --verify K neurons with the largest\n"
    "                        estimates are ablated for real, one condition each\n"
    "  --sweep neurons --neurons LIST\n"
    "                        each listed neuron ablated alone, one condition each\n"
    "  --verify K            --sweep neurons: neurons measured exactly (default 10;\n"
    "                        0: estimates only)\n"
    "  --concept NAME | --probe FILE | --words LIST\n"
    "                        the causal check of a concept: ablate the concept's top\n"
    "                        --top K neurons (ranked by AUROC over the recorded run, as\n"
    "                        top-neurons --concept; stored too) and, as controls, K random\n"
    "                        neurons of the same layers for each of --seeds S seeds; reports\n"
    "                        delta loss where the next token is a concept token and elsewhere.\n"
    "                        Runs on a recorded run (--run ID, default the latest complete one)\n"
    "  --top K               concept: neurons to ablate (default 10)\n"
    "  --seeds S             concept: random control sets (default 5)\n"
    "  --layer L             concept: rank and ablate neurons of layer L only\n"
    "  --drop FLAGS          concept: leave out the probe's words flagged so\n"
    "\n"
    "  --mode zero|mean      zero (default): --neurons sets the post-activation to 0,\n"
    "                        --no-ffn/--layers/--sweep drop the FFN output (c_proj and\n"
    "                        its bias) from the residual stream. mean: every ablated\n"
    "                        neuron (all neurons of an ablated layer) is set to its mean\n"
    "                        recorded in the database for this model, so the FFN\n"
    "                        outputs its mean instead of its input-dependent value\n"
    "  --stats-run ID        mean mode: take the means from this recorded run (default:\n"
    "                        the latest complete run of the same model)\n"
    "  CORPUS                text file (documents separated by blank lines), .jsonl with\n"
    "                        a \"text\" field, or - for stdin\n"
    "  --split MODE          paragraph (default), line or file\n"
    "  --run ID              the documents and tokens of recorded run ID in the database\n"
    "                        instead of a corpus file (with its <|endoftext|> setting)\n"
    "  --db FILE             database for the results (default probe.db)\n"
    "  --no-db               do not store the results\n"
    "  --ctx N               context window (default n_positions); longer documents are\n"
    "                        cut into windows as in `probe record`\n"
    "  --no-bos              do not start documents with <|endoftext|>\n"
    "  --model DIR           model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --json                print the results as JSON\n"
    "  --quiet               no progress output\n"
    "  --help                this text\n"
    "\n"
    "Stored in tables ablations, ablation_conditions, ablation_tokens; the view\n"
    "ablation_summary ranks conditions by delta loss. A neuron sweep's estimates are\n"
    "in ablation_neuron_estimates (view neuron_ablation_effects, next to the exact\n"
    "figures of the verified neurons; top-neurons --by ablation ranks by them).\n";

/* ---- options ------------------------------------------------------------- */

typedef struct {
    ConditionSpec spec;
    int n_kinds;           /* condition options given: exactly one is valid */
    int no_ffn, sweep;     /* --no-ffn, --sweep: SWEEP_LAYERS or SWEEP_NEURONS */
    const char *layers, *neurons; /* --layers LIST, --neurons LIST */
    int mean_mode, no_db, bos, json, quiet, split_set;
    long run, stats_run, ctx; /* 0 = not given */
    SplitMode split;
    const char *db, *model, *corpus;
    /* the causal check of a concept (--concept / --probe / --words) */
    const char *concept, *probe, *words, *drop;
    long top, seeds, layer; /* layer -1 = every recorded layer (concept), none (sweep) */
    long verify;            /* --sweep neurons: neurons measured exactly; -1 = not given */
} AblateOptions;

enum { SWEEP_LAYERS = 1, SWEEP_NEURONS = 2 };

static int parse_sweep(const char *arg, void *sweep) {
    if (strcmp(arg, "layers") && strcmp(arg, "neurons"))
        return cli_usage_error("--sweep must be layers or neurons, not '%s'", arg), -1;
    *(int *)sweep = strcmp(arg, "layers") ? SWEEP_NEURONS : SWEEP_LAYERS;
    return 0;
}

static int parse_mode(const char *arg, void *mean_mode) {
    if (strcmp(arg, "zero") && strcmp(arg, "mean"))
        return cli_usage_error("--mode must be zero or mean, not '%s'", arg), -1;
    *(int *)mean_mode = !strcmp(arg, "mean");
    return 0;
}

/* --split, remembering that it was given: it does not go with --run. */
static int parse_split(const char *arg, void *opts) {
    AblateOptions *o = opts;
    if (cli_parse_split(arg, &o->split)) return -1;
    o->split_set = 1;
    return 0;
}

/* The condition options given (each counted once, however often given; the
 * last --layers or --neurons list counts) into o->n_kinds and o->spec. */
static void condition_pick(AblateOptions *o) {
    /* --sweep neurons takes its neurons from --neurons or --layer */
    int listed = o->neurons && o->sweep != SWEEP_NEURONS;
    o->n_kinds = !!o->no_ffn + !!o->layers + listed + !!o->sweep + !!(o->concept || o->probe || o->words);
    if (o->no_ffn) o->spec = (ConditionSpec){COND_NO_FFN, NULL};
    if (o->layers) o->spec = (ConditionSpec){COND_LAYERS, o->layers};
    if (listed) o->spec = (ConditionSpec){COND_NEURONS, o->neurons};
    if (o->sweep == SWEEP_LAYERS) o->spec = (ConditionSpec){COND_SWEEP_LAYERS, NULL};
    if (o->sweep == SWEEP_NEURONS) o->spec = (ConditionSpec){COND_SWEEP_NEURONS, o->neurons};
}

/* The options and the corpus. Returns -1 when the command should go on,
 * else the exit code (--help, or a usage error already printed). */
static int parse_args(int argc, char **argv, AblateOptions *o) {
    *o = (AblateOptions){.bos = 1, .split = SPLIT_PARAGRAPH, .db = "probe.db", .top = -1, .seeds = -1, .layer = -1,
                         .verify = -1};
    const CliOption opts[] = {CLI_OPT_SET("no-ffn", &o->no_ffn),
                              CLI_OPT_STRING("layers", &o->layers),
                              CLI_OPT_STRING("neurons", &o->neurons),
                              CLI_OPT_CALL("sweep", parse_sweep, &o->sweep),
                              CLI_OPT_CALL("mode", parse_mode, &o->mean_mode),
                              CLI_OPT_COUNT("stats-run", &o->stats_run, 1, INT32_MAX),
                              CLI_OPT_RUN(&o->run),
                              CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_SET("no-db", &o->no_db),
                              CLI_OPT_COUNT("ctx", &o->ctx, 2, 1 << 20),
                              CLI_OPT_CALL("split", parse_split, o),
                              CLI_OPT_CLEAR("no-bos", &o->bos),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_SET("json", &o->json),
                              CLI_OPT_SET("quiet", &o->quiet),
                              CLI_OPT_STRING("concept", &o->concept),
                              CLI_OPT_STRING("probe", &o->probe),
                              CLI_OPT_STRING("words", &o->words),
                              CLI_OPT_STRING("drop", &o->drop),
                              CLI_OPT_COUNT("top", &o->top, 1, 10000),
                              CLI_OPT_COUNT("seeds", &o->seeds, 1, 1000),
                              CLI_OPT_LAYER(&o->layer),
                              CLI_OPT_COUNT("verify", &o->verify, 0, 100000),
                              CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (!!o->concept + !!o->probe + !!o->words > 1)
        return cli_usage_error("give one of --concept, --probe and --words");
    condition_pick(o);
    if (args.n > 1) return cli_extra_argument(args.arg[1]);
    if (args.n) o->corpus = args.arg[0];
    return cli_check_store_env();
}

/* parse_args, then the checks between options. Same return as parse_args. */
static int parse_options(int argc, char **argv, AblateOptions *o) {
    int rc = parse_args(argc, argv, o);
    if (rc >= 0) return rc;
    if (o->n_kinds != 1)
        return cli_usage_error("give exactly one of --no-ffn, --layers LIST, --neurons LIST, --sweep layers, "
                               "--sweep neurons, --concept NAME (or --probe FILE, --words LIST)");
    int concept = o->concept || o->probe || o->words, neurons = o->sweep == SWEEP_NEURONS;
    if (neurons && o->neurons && o->layer >= 0)
        return cli_usage_error("--sweep neurons takes --layer L (estimates) or --neurons LIST (each measured), not both");
    if (o->verify >= 0 && !(neurons && !o->neurons))
        return cli_usage_error("--verify applies to --sweep neurons (without --neurons)");
    if (neurons && !o->neurons && o->verify < 0) o->verify = 10;
    if (!concept && (o->top >= 0 || o->seeds >= 0 || (o->layer >= 0 && !neurons) || o->drop))
        return cli_usage_error("--top, --seeds, --layer and --drop apply to --concept, --probe or --words "
                               "(--layer also to --sweep neurons)");
    if (concept) {
        if (o->corpus)
            return cli_usage_error("the concept check runs on a recorded run, where the concept's tokens are known: "
                                   "give --run ID (or nothing: the latest complete run), not a corpus file");
        if (o->no_db) return cli_usage_error("the concept check reads the recorded run; drop --no-db");
        if (o->drop && o->words) return cli_usage_error("--drop applies to probe files, not to --words");
        if (o->split_set || !o->bos) return cli_usage_error("--split and --no-bos apply to a corpus file");
        if (o->top < 0) o->top = 10;
        if (o->seeds < 0) o->seeds = 5;
        return -1;
    }
    if (!!o->corpus + !!o->run != 1) return cli_usage_error("give a CORPUS file or --run ID (not both)");
    if (o->run && (o->split_set || !o->bos))
        return cli_usage_error("--split and --no-bos apply to a corpus file; --run uses the run's documents");
    if (o->stats_run && !o->mean_mode) return cli_usage_error("--stats-run applies to --mode mean");
    if (o->no_db && (o->mean_mode || o->run))
        return cli_usage_error("--mode mean and --run read the database; drop --no-db");
    return -1;
}

/* ---- output ---------------------------------------------------------------- */

/* What is printed: the stored record, and where it was stored. */
typedef struct {
    AblationRecord rec;
    int64_t ablation_id; /* 0 when not stored */
    const char *db_path;
    char source[64];     /* rec.source of a recorded run: "run:ID" */
} Report;

static void print_table(const Report *r, const Conditions *cs) {
    const AblationRecord *a = &r->rec;
    printf("ablation of %s on %s: %" PRId64 " predicted tokens in %d documents, context %d, %s\n", a->model_dir,
           a->source, a->tokens, a->documents, a->ctx, a->mean_mode ? "mean ablation" : "zero ablation");
    if (a->stats_run_id) printf("neuron means from recorded run %" PRId64 "\n", a->stats_run_id);
    int w = 9;
    for (int i = 0; i < cs->n; i++) {
        int n = (int)strlen(cs->c[i].label);
        if (n > w) w = n;
    }
    printf("\n%-*s  %8s  %8s  %9s  %8s  %9s  %10s  %8s  %7s\n", w, "condition", "base CE", "abl CE", "dloss",
           "+/- se", "base ppl", "abl ppl", "KL", "top-1");
    int worst = -1;
    double worst_d = -INFINITY;
    for (int i = 0; i < cs->n; i++) {
        AblateFigures f;
        ablate_figures(&cs->c[i].tot, &f);
        char d[32], se[32], kl[32];
        printf("%-*s  %8.4f  %8.4f  %9s  %8s  %9.2f  %10.2f  %8s  %6.2f%%\n", w, cs->c[i].label, f.base_ce, f.abl_ce,
               cli_small(d, sizeof d, f.dloss, 1), cli_small(se, sizeof se, f.dloss_se, 0), f.base_ppl, f.abl_ppl,
               cli_small(kl, sizeof kl, f.kl, 0), 100.0 * f.agreement);
        if (f.dloss > worst_d) {
            worst_d = f.dloss;
            worst = i;
        }
    }
    printf("\nCE: mean next-token cross-entropy, nats/token; dloss = abl CE - base CE; se: its standard\n"
           "error over tokens; KL: mean KL(baseline || ablated), nats/token; top-1: tokens whose most\n"
           "likely next token is unchanged.\n");
    char wd[32];
    if (cs->n > 1 && worst >= 0)
        printf("largest loss increase: %s (%s nats/token)\n", cs->c[worst].label, cli_small(wd, sizeof wd, worst_d, 1));
    if (r->ablation_id)
        printf("stored as ablation %" PRId64 " in '%s' (SELECT * FROM ablation_summary)\n", r->ablation_id,
               r->db_path);
}

/* One condition as a JSON object, appended to arr. */
static void condition_json(cJSON *arr, const Condition *c, int n_layer) {
    AblateFigures f;
    ablate_figures(&c->tot, &f);
    cJSON *o = cJSON_CreateObject();
    json_add_text(o, "spec", c->label);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < n_layer; l++)
        if (c->layers[l]) cJSON_AddItemToArray(layers, cJSON_CreateNumber(l));
    cJSON_AddNumberToObject(o, "neurons_edited", c->n_edits);
    cJSON_AddNumberToObject(o, "tokens", (double)f.n);
    cJSON_AddNumberToObject(o, "baseline_ce", f.base_ce);
    cJSON_AddNumberToObject(o, "ablated_ce", f.abl_ce);
    cJSON_AddNumberToObject(o, "baseline_ppl", f.base_ppl);
    cJSON_AddNumberToObject(o, "ablated_ppl", f.abl_ppl);
    cJSON_AddNumberToObject(o, "delta_loss", f.dloss);
    cJSON_AddNumberToObject(o, "delta_loss_se", f.dloss_se);
    cJSON_AddNumberToObject(o, "kl", f.kl);
    cJSON_AddNumberToObject(o, "top1_agreement", f.agreement);
    cJSON_AddItemToArray(arr, o);
}

/* extra (may be NULL) is added under the name extra_key. */
static int print_json(const Report *r, const Conditions *cs, int n_layer, const char *extra_key, cJSON *extra) {
    const AblationRecord *a = &r->rec;
    cJSON *root = cJSON_CreateObject();
    if (extra) cJSON_AddItemToObject(root, extra_key, extra);
    char hex[PROBE_CHECKSUM_HEX];
    checksum_hex(a->model_checksum, hex);
    json_add_text(root, "model", a->model_dir);
    cJSON_AddStringToObject(root, "model_checksum", hex);
    json_add_text(root, "source", a->source);
    cJSON_AddNumberToObject(root, "documents", a->documents);
    cJSON_AddNumberToObject(root, "tokens", (double)a->tokens);
    cJSON_AddNumberToObject(root, "ctx", a->ctx);
    cJSON_AddStringToObject(root, "mode", a->mean_mode ? "mean" : "zero");
    if (a->stats_run_id)
        cJSON_AddNumberToObject(root, "stats_run", (double)a->stats_run_id);
    else
        cJSON_AddNullToObject(root, "stats_run");
    cJSON_AddNumberToObject(root, "seconds", a->seconds);
    if (r->ablation_id) {
        cJSON_AddNumberToObject(root, "ablation_id", (double)r->ablation_id);
        json_add_text(root, "database", r->db_path);
    } else {
        cJSON_AddNullToObject(root, "ablation_id");
        cJSON_AddNullToObject(root, "database");
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "conditions");
    for (int i = 0; i < cs->n; i++) condition_json(arr, &cs->c[i], n_layer);
    return cli_print_json(root);
}

/* The progress line (conditions_measure calls it after every window). */
static void on_progress(void *user, const AblateProgress *p) {
    Progress *bar = user;
    if (!progress_due(bar)) return;
    char detail[160], b1[32], b2[32];
    long long rate = (long long)(p->tokens / (p->seconds > 0 ? p->seconds : 1));
    snprintf(detail, sizeof detail, "%d/%d docs  %s tokens  %s tok/s  %d condition%s", p->docs_done + 1, p->n_docs,
             progress_count(b1, p->tokens), progress_count(b2, rate), p->n_conditions, p->n_conditions > 1 ? "s" : "");
    progress_draw(bar, (p->docs_done + (double)p->window / p->n_windows) / p->n_docs, detail);
}

/* ---- wiring ---------------------------------------------------------------- */

/* Writes the record, every condition and its kept token effects. */
/* What a neuron sweep stores besides its conditions: every estimate, and
 * which condition measured each neuron (idx[l * n_inner + j], or -1). */
typedef struct {
    const NeuronSweep *sweep;
    const int *idx;
} SweepRows;

static int store_results(Store *s, const AblationRecord *rec, const Conditions *cs, const Tokenizer *tk, int n_layer,
                         ConceptAblationRow *extra, int n_extra, const SweepRows *sw, int64_t *id, char *err) {
    AblationWriter *w = ablation_writer_begin(s, rec, err);
    if (!w) return -1;
    for (int i = 0; i < cs->n; i++) {
        const Condition *c = &cs->c[i];
        AblateFigures f;
        ablate_figures(&c->tot, &f);
        AblationConditionRecord cr = {.label = c->label, .layer = c->layer, .layers = c->layers, .n_layer = n_layer,
                                      .neurons_edited = c->n_edits, .fig = &f};
        if (ablation_writer_condition(w, &cr, err)) goto fail;
        for (size_t t = 0; t < c->n_eff; t++) {
            size_t len = 0;
            const char *bytes = tok_token_bytes(tk, c->eff[t].token, &len);
            if (ablation_writer_token(w, c->eff_doc[t], &c->eff[t], bytes, len, err)) goto fail;
        }
    }
    for (int i = 0; i < n_extra; i++) {
        extra[i].ablation_id = ablation_writer_id(w);
        if (concept_ablation_add(s, &extra[i], err)) goto fail;
    }
    for (int l = sw ? sw->sweep->first : 0; sw && l <= sw->sweep->last; l++) {
        size_t at = (size_t)l * sw->sweep->n;
        if (ablation_writer_estimates(w, l, sw->sweep->n, sw->sweep->estimate + at, sw->sweep->act_mean + at,
                                      sw->idx + at, err))
            goto fail;
    }
    return ablation_writer_commit(w, id, err);
fail:
    ablation_writer_abort(w);
    return -1;
}

/* Mean mode: the means recorded in the database for this model ([L x F],
 * malloc'd) of the neurons of the layers marked in need, from run stats_id
 * or the latest complete run of the model (*stats_run says which). NULL
 * with err. */
static float *means_load(Store *s, const Model *m, const uint8_t *need, long stats_id, int64_t *stats_run,
                         char *err) {
    const int L = m->cfg.n_layer, F = m->cfg.n_inner;
    float *means = calloc((size_t)L * F, sizeof *means);
    if (!means) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (ablation_means_load(s, m->checksum, stats_id, L, F, need, means, stats_run, err)) {
        free(means);
        return NULL;
    }
    return means;
}

/* Mean mode: rebuilds cs with every ablated neuron at its recorded mean. */
static int use_means(Store *s, const Model *m, const ConditionSpec *spec, long stats_id, Conditions *cs,
                     int64_t *stats_run, char *err) {
    const int L = m->cfg.n_layer;
    uint8_t *need = calloc((size_t)L, 1);
    if (!need) return err_set(err, "out of memory");
    conditions_layers_needed(cs, L, need);
    float *means = means_load(s, m, need, stats_id, stats_run, err);
    free(need);
    if (!means) return -1;
    conditions_free(cs);
    int rc = conditions_build(cs, spec, &m->cfg, means, err);
    free(means);
    return rc;
}

/* The lowest layer any condition changes: each ablated forward can start
 * there from the baseline's residual stream (ablator_start_at). */
static int lowest_layer(const Conditions *cs, int n_layer) {
    int low = n_layer - 1;
    for (int i = 0; i < cs->n; i++) {
        const Condition *c = &cs->c[i];
        for (int l = 0; l < low; l++)
            if (c->layers[l] || c->remove[l]) low = l;
        for (int e = 0; e < c->n_edits; e++)
            if (c->edits[e].layer < low) low = c->edits[e].layer;
    }
    return low;
}

/* Measures the conditions over the documents of o (a corpus or --run) and
 * fills r->rec; the conditions keep their token effects when storing. */
static int measure(Model *m, Store *store, const AblateOptions *o, int ctx, Conditions *cs, Report *r, char *err) {
    Ablator *a = NULL;
    Progress *bar = NULL;
    AblateCount count;
    int rc = -1;
    DocSource *src = o->run ? doc_source_run(store, o->run, err)
                            : doc_source_corpus(o->corpus, o->split, m->tok, o->bos, err);
    if (!src || !(a = ablator_new(m, ctx, err)) || ablator_start_at(a, lowest_layer(cs, m->cfg.n_layer), err))
        goto done;
    bar = progress_new(!o->quiet, 0.0);
    rc = conditions_measure(cs, a, src, ctx, store != NULL, on_progress, bar, &count, err);
    progress_end(bar);
    if (rc) goto done;
    snprintf(r->source, sizeof r->source, "run:%ld", o->run);
    r->rec.source = o->run ? r->source : o->corpus;
    r->rec.source_checksum = doc_source_checksum(src);
    r->rec.bos = doc_source_bos(src);
    r->rec.documents = count.documents;
    r->rec.tokens = count.tokens;
    r->rec.seconds = count.seconds;
    rc = 0;
done:
    ablator_free(a);
    doc_source_free(src);
    return rc;
}

/* ---- the causal check of a concept ------------------------------------------- */

/* "L:N,L:N,..." of k neurons into a new string. */
static char *neuron_list(const int *layer, const int *neuron, int k) {
    size_t cap = (size_t)k * 24 + 1, w = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < k; i++) w += (size_t)snprintf(s + w, cap - w, i ? ",%d:%d" : "%d:%d", layer[i], neuron[i]);
    return s;
}

static double mean_of(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : NAN;
}

static double sd_of(const double *v, int n) {
    if (n < 2) return NAN;
    double m = mean_of(v, n), s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}

/* The split table under the usual one: the concept's neurons against the
 * random sets (mean and sd over seeds). */
static void print_concept(const Concept *c, int64_t concept_run, int k, const ConceptSplit *sp, int n_sets) {
    double din[1000], dafter[1000], dout[1000];
    int nr = n_sets - 1;
    for (int i = 0; i < nr; i++) {
        din[i] = sp[i + 1].dloss_in;
        dafter[i] = sp[i + 1].dloss_after;
        dout[i] = sp[i + 1].dloss_out;
    }
    printf("\nconcept '%s' (ranking %lld): delta loss, nats/token, by the predicted token: a concept token\n"
           "(%lld tokens), the token after one (%lld), elsewhere (%lld)\n\n",
           c->name, (long long)concept_run, (long long)sp[0].n_in, (long long)sp[0].n_after, (long long)sp[0].n_out);
    printf("%-20s  %19s  %19s  %19s\n", "neurons ablated", "on concept tokens", "after them", "elsewhere");
    char x1[32], x2[32], x3[32], y1[32], y2[32];
    printf("%-20s  %19s  %19s  %19s\n", "concept's top", cli_small(x1, sizeof x1, sp[0].dloss_in, 1),
           cli_small(x2, sizeof x2, sp[0].dloss_after, 1), cli_small(x3, sizeof x3, sp[0].dloss_out, 1));
    char lab[64], a[96], b[96], d[96];
    snprintf(lab, sizeof lab, "random, %d seed%s", nr, nr > 1 ? "s" : "");
    snprintf(a, sizeof a, "%s +- %s", cli_small(y1, sizeof y1, mean_of(din, nr), 1), cli_small(y2, sizeof y2, sd_of(din, nr), 0));
    snprintf(b, sizeof b, "%s +- %s", cli_small(y1, sizeof y1, mean_of(dafter, nr), 1),
             cli_small(y2, sizeof y2, sd_of(dafter, nr), 0));
    snprintf(d, sizeof d, "%s +- %s", cli_small(y1, sizeof y1, mean_of(dout, nr), 1), cli_small(y2, sizeof y2, sd_of(dout, nr), 0));
    printf("%-20s  %19s  %19s  %19s\n", lab, a, b, d);
    printf("\n(%d neurons in each set; random sets draw from the same layers as the concept's top %d;\n"
           "+- is the standard deviation over seeds. The ranking and the check use the same run.)\n", k, k);
}

static cJSON *concept_json(const Concept *c, int64_t concept_run, int k, const ConceptSplit *sp,
                           const ConceptAblationRow *rows, int n_sets) {
    cJSON *o = cJSON_CreateObject(), *arr;
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(c->checksum, ck);
    json_add_text(o, "name", c->name);
    cJSON_AddStringToObject(o, "checksum", ck);
    cJSON_AddNumberToObject(o, "concept_run", (double)concept_run);
    cJSON_AddNumberToObject(o, "top", k);
    arr = cJSON_AddArrayToObject(o, "sets");
    for (int i = 0; i < n_sets; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "role", rows[i].random ? "random" : "concept");
        if (rows[i].random)
            cJSON_AddNumberToObject(e, "seed", (double)rows[i].seed);
        else
            cJSON_AddNullToObject(e, "seed");
        cJSON_AddStringToObject(e, "neurons", rows[i].neurons);
        cJSON_AddNumberToObject(e, "tokens_in", (double)sp[i].n_in);
        cJSON_AddNumberToObject(e, "tokens_after", (double)sp[i].n_after);
        cJSON_AddNumberToObject(e, "tokens_out", (double)sp[i].n_out);
        const double v[] = {sp[i].dloss_in, sp[i].dloss_after, sp[i].dloss_out, sp[i].kl_in, sp[i].kl_after,
                            sp[i].kl_out};
        static const char *keys[] = {"dloss_in", "dloss_after", "dloss_out", "kl_in", "kl_after", "kl_out"};
        for (int q = 0; q < 6; q++) json_add_real(e, keys[q], v[q]);
        cJSON_AddItemToArray(arr, e);
    }
    return o;
}

/* What the phases of the causal check of a concept share. */
typedef struct {
    int k, n_sets;            /* k neurons in each set: the concept's top, then one random set per seed */
    Concept *c;
    Store *store;
    NeuronRun run;
    const char *dir;          /* the run's model */
    Model *m;
    int ctx;
    ConceptScore *sc;         /* the ranking, best AUROC first after check_rank */
    size_t n_sc;
    int64_t concept_run;      /* the stored ranking */
    char **lists;             /* [n_sets] each set as "L:N,L:N,..." */
    Conditions cs;            /* one condition per set */
    ConceptTokens ct;
    ConceptSplit *sp;         /* [n_sets] */
    ConceptAblationRow *rows; /* [n_sets] */
    Report rep;
    char store_err[PROBE_ERR_LEN];
} Check;

static void check_free(Check *x) {
    for (int s = 0; x->lists && s < x->n_sets; s++) free(x->lists[s]);
    free(x->lists);
    free(x->sp);
    free(x->rows);
    free(x->sc);
    conditions_free(&x->cs);
    concept_tokens_free(&x->ct);
    neuron_run_free(&x->run);
    model_free(x->m);
    store_close(x->store);
    concept_free(x->c);
}

/* The concept, the run and its model, checked before any work. -1 to go
 * on, else the exit code after the error. */
static int check_open(const AblateOptions *o, Check *x) {
    char err[PROBE_ERR_LEN];
    int usage, rc;
    x->lists = calloc((size_t)x->n_sets, sizeof *x->lists);
    x->sp = calloc((size_t)x->n_sets, sizeof *x->sp);
    x->rows = calloc((size_t)x->n_sets, sizeof *x->rows);
    if (!x->lists || !x->sp || !x->rows) return cli_error(PROBE_EXIT_RUNTIME, "out of memory");
    if (concept_open(o->concept, o->probe, o->words, o->drop, &x->c, &usage, err))
        return usage ? cli_usage_error("%s", err) : cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (!(x->store = store_open(o->db, STORE_WRITE, err))) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if ((rc = cli_find_run(x->store, o->run, &x->run)) >= 0 || (rc = cli_run_complete(&x->run)) >= 0 ||
        (rc = cli_run_recorded_layer(&x->run, o->layer)) >= 0)
        return rc;
    x->dir = o->model ? o->model : x->run.model_dir;
    if (!(x->m = model_load(x->dir, err))) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    x->ctx = o->ctx ? (int)o->ctx : x->m->cfg.n_positions;
    if (x->ctx > x->m->cfg.n_positions)
        return cli_usage_error("--ctx %d out of range 2..%d (the model's n_positions)", x->ctx, x->m->cfg.n_positions);
    return -1;
}

/* 1. The ranking, stored like top-neurons --concept (the check's rows
 * point to it). -1 to go on, else the exit code after the error. */
static int check_rank(const AblateOptions *o, Check *x) {
    char err[PROBE_ERR_LEN], layers_json[8192];
    ConceptTotals t;
    if (concept_rank_compute(x->store, &x->run, x->m, x->c, o->layer, o->drop, o->quiet, &x->sc, &x->n_sc, &t,
                             &x->concept_run, layers_json, sizeof layers_json, x->store_err, err))
        return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (!x->concept_run) return cli_error(PROBE_EXIT_RUNTIME, "%s (storing the concept ranking)", x->store_err);
    if ((size_t)x->k > x->n_sc / 2)
        return cli_usage_error("--top %d: at most half of the %zu neurons ranked", x->k, x->n_sc);
    concept_scores_sort(x->sc, x->n_sc, CONCEPT_BY_AUROC);
    return -1;
}

/* 2. The sets: the top K, and K random neurons of the same layers per
 * seed (the control); one condition each. In mean mode o->stats_run becomes
 * the run the means came from. 0, or -1 with err. */
static int check_sets(AblateOptions *o, Check *x, char *err) {
    const int k = x->k, L = x->m->cfg.n_layer, F = x->m->cfg.n_inner;
    int *tl = malloc(sizeof *tl * (size_t)k), *tn = malloc(sizeof *tn * (size_t)k);
    int *rn = malloc(sizeof *rn * (size_t)k);
    uint8_t *need = NULL;
    float *means = NULL;
    int rc = -1;
    if (!tl || !tn || !rn) goto oom;
    for (int i = 0; i < k; i++) {
        tl[i] = x->sc[i].layer;
        tn[i] = x->sc[i].neuron;
    }
    if (!(x->lists[0] = neuron_list(tl, tn, k))) goto oom;
    for (int s = 1; s < x->n_sets; s++) {
        if (concept_random_neurons(tl, tn, k, F, (uint64_t)s, rn)) {
            err_set(err, "too few neurons in the ranked layers for %d random ones", k);
            goto done;
        }
        if (!(x->lists[s] = neuron_list(tl, rn, k))) goto oom;
    }
    if (o->mean_mode) {
        if (!(need = calloc((size_t)L, 1))) goto oom;
        for (int i = 0; i < k; i++) need[tl[i]] = 1;
        int64_t stats_run = 0;
        if (!(means = means_load(x->store, x->m, need, o->stats_run, &stats_run, err))) goto done;
        o->stats_run = stats_run;
    }
    for (int s = 0; s < x->n_sets; s++) {
        ConditionSpec spec = {COND_NEURONS, x->lists[s]};
        if (conditions_build(&x->cs, &spec, &x->m->cfg, means, err)) goto done;
        Condition *c = &x->cs.c[s];
        if (s == 0)
            snprintf(c->label, sizeof c->label, "concept %s: top %d", x->c->name, k);
        else
            snprintf(c->label, sizeof c->label, "random %d (seed %d)", k, s);
    }
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory");
done:
    free(tl);
    free(tn);
    free(rn);
    free(need);
    free(means);
    return rc;
}

/* 3. Every set measured on the run's tokens, then split by where each
 * predicted token stands to the concept: x->rep, x->sp and x->rows. 0, or
 * -1 with err. */
static int check_measure(AblateOptions *o, Check *x, char *err) {
    if (concept_tokens_load(x->store, x->run.id, x->c, &x->ct, err)) return -1;
    o->run = x->run.id;
    x->rep = (Report){.rec = {.model_dir = x->dir, .model_checksum = x->m->checksum, .source_run_id = x->run.id,
                              .ctx = x->ctx, .mean_mode = o->mean_mode, .kind = condition_kind_name(COND_NEURONS),
                              .spec = x->lists[0], .stats_run_id = o->stats_run},
                      .db_path = o->db};
    if (measure(x->m, x->store, o, x->ctx, &x->cs, &x->rep, err)) return -1;
    for (int s = 0; s < x->n_sets; s++) {
        const ConceptSplit *sp = &x->sp[s];
        concept_split(&x->cs.c[s], &x->ct, &x->sp[s]);
        x->rows[s] = (ConceptAblationRow){.concept_run_id = x->concept_run, .idx = s, .random = s > 0, .seed = s,
                                          .neurons = x->lists[s], .tokens_in = sp->n_in, .tokens_after = sp->n_after,
                                          .tokens_out = sp->n_out, .dloss_in = sp->dloss_in, .kl_in = sp->kl_in,
                                          .dloss_after = sp->dloss_after, .kl_after = sp->kl_after,
                                          .dloss_out = sp->dloss_out, .kl_out = sp->kl_out};
    }
    if (x->sp[0].n_in == 0) return err_set(err, "no predicted token of run %" PRId64 " is a concept token", x->run.id);
    return 0;
}

/* --concept / --probe / --words: rank (and store the ranking), ablate the
 * top K and the random sets over the recorded run, split by concept. */
static int concept_check(AblateOptions *o) {
    char err[PROBE_ERR_LEN];
    Check x = {.k = (int)o->top, .n_sets = 1 + (int)o->seeds};
    int rc;
    if ((rc = check_open(o, &x)) >= 0 || (rc = check_rank(o, &x)) >= 0) goto done;
    if (check_sets(o, &x, err) || check_measure(o, &x, err)) {
        rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        goto done;
    }
    const int L = x.m->cfg.n_layer;
    int stored = store_results(x.store, &x.rep.rec, &x.cs, x.m->tok, L, x.rows, x.n_sets, NULL, &x.rep.ablation_id,
                               x.store_err) == 0;
    if (o->json) {
        if (print_json(&x.rep, &x.cs, L, "concept", concept_json(x.c, x.concept_run, x.k, x.sp, x.rows, x.n_sets))) {
            rc = cli_error(PROBE_EXIT_RUNTIME, "out of memory");
            goto done;
        }
    } else {
        print_table(&x.rep, &x.cs);
        print_concept(x.c, x.concept_run, x.k, x.sp, x.n_sets);
    }
    rc = cli_stored(stored, x.store_err, "the figures above were not stored");
done:
    check_free(&x);
    return rc;
}

/* ---- --sweep neurons [--layer L] ---------------------------------------------- */

static void sweep_layers_text(const NeuronSweep *sw, char *buf, size_t cap) {
    if (sw->first == sw->last)
        snprintf(buf, cap, "layer %d", sw->first);
    else
        snprintf(buf, cap, "layers %d-%d", sw->first, sw->last);
}

/* The estimates of the top `rows` neurons, with the exact figures of those
 * measured (idx[l * n + j] >= 0: that condition of cs). */
static void print_sweep(const NeuronSweep *sw, const int *idx, const Conditions *cs, int rows) {
    int *tl = malloc(sizeof *tl * (size_t)rows), *tn = malloc(sizeof *tn * (size_t)rows);
    char which[48];
    if (!tl || !tn) {
        free(tl);
        free(tn);
        return;
    }
    neuron_sweep_top(sw, rows, tl, tn, &rows);
    sweep_layers_text(sw, which, sizeof which);
    printf("\n%s, every neuron ablated alone: estimated delta loss (attribution patching,\n"
           "first order), measured delta loss where verified; baseline CE %.4f over %lld tokens\n\n",
           which, sw->base_ce, (long long)sw->count.tokens);
    printf("%4s  %9s  %10s  %10s  %9s  %8s  %7s  %10s\n", "rank", "neuron", "estimate", "measured", "+/- se", "KL",
           "top-1", "mean act");
    for (int r = 0; r < rows; r++) {
        size_t at = (size_t)tl[r] * sw->n + tn[r];
        char e[32], d[32] = "", se[32] = "", kl[32] = "", ag[32] = "", name[24];
        cli_small(e, sizeof e, sw->estimate[at], 1);
        if (idx[at] >= 0) {
            AblateFigures f;
            ablate_figures(&cs->c[idx[at]].tot, &f);
            cli_small(d, sizeof d, f.dloss, 1);
            cli_small(se, sizeof se, f.dloss_se, 0);
            cli_small(kl, sizeof kl, f.kl, 0);
            snprintf(ag, sizeof ag, "%.2f%%", 100.0 * f.agreement);
        }
        snprintf(name, sizeof name, "%d:%d", tl[r], tn[r]);
        printf("%4d  %9s  %10s  %10s  %9s  %8s  %7s  %10.4f\n", r + 1, name, e, d, se, kl, ag, sw->act_mean[at]);
    }
    printf("\nestimate: sum over positions of (ablated value - activation) x d loss / d activation,\n"
           "per predicted token; measured: the real ablation of that neuron alone (the rows above).\n");
    free(tl);
    free(tn);
}

/* Every estimate, best first, with the measured delta loss where there is one. */
static cJSON *sweep_json(const NeuronSweep *sw, const int *idx, const Conditions *cs) {
    int total = sw->n * (sw->last - sw->first + 1), k = 0;
    cJSON *o = cJSON_CreateObject();
    int *tl = malloc(sizeof *tl * (size_t)total), *tn = malloc(sizeof *tn * (size_t)total);
    if (!o || !tl || !tn) {
        free(tl);
        free(tn);
        return o;
    }
    neuron_sweep_top(sw, total, tl, tn, &k);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = sw->first; l <= sw->last; l++) cJSON_AddItemToArray(layers, cJSON_CreateNumber(l));
    cJSON_AddNumberToObject(o, "baseline_ce", sw->base_ce);
    cJSON_AddNumberToObject(o, "seconds", sw->count.seconds);
    cJSON *arr = cJSON_AddArrayToObject(o, "neurons");
    for (int r = 0; r < k; r++) {
        size_t at = (size_t)tl[r] * sw->n + tn[r];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", tl[r]);
        cJSON_AddNumberToObject(e, "neuron", tn[r]);
        cJSON_AddNumberToObject(e, "rank", r + 1);
        json_add_real(e, "estimate", sw->estimate[at]);
        json_add_real(e, "act_mean", sw->act_mean[at]);
        if (idx[at] >= 0) {
            AblateFigures f;
            ablate_figures(&cs->c[idx[at]].tot, &f);
            json_add_real(e, "delta_loss", f.dloss);
        } else {
            cJSON_AddNullToObject(e, "delta_loss");
        }
        cJSON_AddItemToArray(arr, e);
    }
    free(tl);
    free(tn);
    return o;
}

/* Progress of the estimate phase (windows_each counts neurons as conditions). */
static void on_sweep_progress(void *user, const AblateProgress *p) {
    Progress *bar = user;
    if (!progress_due(bar)) return;
    char detail[160], b1[32], b2[32];
    long long rate = (long long)(p->tokens / (p->seconds > 0 ? p->seconds : 1));
    snprintf(detail, sizeof detail, "estimating %d neurons: %d/%d docs  %s tokens  %s tok/s", p->n_conditions,
             p->docs_done + 1, p->n_docs, progress_count(b1, p->tokens), progress_count(b2, rate));
    progress_draw(bar, (p->docs_done + (double)p->window / p->n_windows) / p->n_docs, detail);
}

/* The estimate of every neuron of o->layer (or of every layer), then
 * o->spec set to the o->verify neurons with the largest estimates (*list
 * owns the string). means: NULL or [L x F]. 0, or -1 with err. */
static int sweep_estimate(Model *m, Store *store, AblateOptions *o, int ctx, const float *means, NeuronSweep *sw,
                          char **list, char *err) {
    DocSource *src = o->run ? doc_source_run(store, o->run, err)
                            : doc_source_corpus(o->corpus, o->split, m->tok, o->bos, err);
    if (!src) return -1;
    Progress *bar = progress_new(!o->quiet, 0.0);
    int rc = neuron_sweep_estimate(m, src, ctx, (int)o->layer, means, on_sweep_progress, bar, sw, err);
    progress_end(bar);
    doc_source_free(src);
    if (rc) return -1;
    int k = (int)o->verify, *tl = malloc(sizeof *tl * (size_t)(k ? k : 1)), *tn = malloc(sizeof *tn * (size_t)(k ? k : 1));
    if (!tl || !tn) {
        free(tl);
        free(tn);
        return err_set(err, "out of memory");
    }
    neuron_sweep_top(sw, k, tl, tn, &k);
    *list = neuron_list(tl, tn, k);
    free(tl);
    free(tn);
    if (!*list) return err_set(err, "out of memory");
    o->verify = k;
    o->spec = (ConditionSpec){COND_SWEEP_NEURONS, *list};
    return 0;
}

int cmd_ablate(int argc, char **argv) {
    AblateOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.concept || o.probe || o.words) return concept_check(&o);

    char err[PROBE_ERR_LEN];
    const char *dir = model_dir_resolve(o.model);
    Conditions cs = {0};
    Store *store = NULL;
    NeuronSweep sw = {0};
    char *list = NULL, spec[64];
    int *idx = NULL;
    float *means = NULL;
    const int sweep = o.sweep == SWEEP_NEURONS && !o.neurons; /* estimates */
    rc = PROBE_EXIT_RUNTIME;
    Model *m = model_load(dir, err); /* the tokenizer also names stored tokens */
    if (!m) goto fail;
    const ModelConfig *cfg = &m->cfg;
    int ctx = o.ctx ? (int)o.ctx : cfg->n_positions;
    if (ctx > cfg->n_positions) {
        rc = cli_usage_error("--ctx %d out of range 2..%d (the model's n_positions)", ctx, cfg->n_positions);
        goto done;
    }
    if (sweep && o.layer >= cfg->n_layer) {
        rc = cli_usage_error("--layer %ld out of range 0..%d", o.layer, cfg->n_layer - 1);
        goto done;
    }
    /* specs are checked before any database or corpus work */
    if (!sweep && conditions_build(&cs, &o.spec, cfg, NULL, err)) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (!o.no_db && !(store = store_open(o.db, STORE_WRITE, err))) goto fail;
    Report r = {.rec = {.model_dir = dir, .model_checksum = m->checksum, .source_run_id = o.run, .ctx = ctx,
                        .mean_mode = o.mean_mode, .kind = condition_kind_name(o.spec.kind), .spec = o.spec.list},
                .db_path = o.db};
    if (sweep) {
        if (o.mean_mode) {
            uint8_t *need = calloc((size_t)cfg->n_layer, 1);
            for (int l = 0; need && l < cfg->n_layer; l++) need[l] = o.layer < 0 || l == o.layer;
            means = need ? means_load(store, m, need, o.stats_run, &r.rec.stats_run_id, err) : NULL;
            if (!need) err_set(err, "out of memory");
            free(need);
            if (!means) goto fail;
        }
        if (sweep_estimate(m, store, &o, ctx, means, &sw, &list, err) ||
            (o.verify > 0 && conditions_build(&cs, &o.spec, cfg, means, err)))
            goto fail;
        if (o.layer >= 0)
            snprintf(spec, sizeof spec, "sweep neurons --layer %ld --verify %ld", o.layer, o.verify);
        else
            snprintf(spec, sizeof spec, "sweep neurons --verify %ld", o.verify);
        r.rec.spec = spec;
        size_t n_all = (size_t)cfg->n_layer * cfg->n_inner;
        if (!(idx = malloc(sizeof *idx * n_all))) {
            err_set(err, "out of memory");
            goto fail;
        }
        for (size_t j = 0; j < n_all; j++) idx[j] = -1;
        for (int i = 0; i < cs.n; i++) idx[(size_t)cs.c[i].edits[0].layer * cfg->n_inner + cs.c[i].edits[0].neuron] = i;
    } else if (o.mean_mode && use_means(store, m, &o.spec, o.stats_run, &cs, &r.rec.stats_run_id, err)) {
        goto fail;
    }
    if (cs.n && measure(m, store, &o, ctx, &cs, &r, err)) goto fail;
    if (!cs.n) { /* --verify 0: the estimate's count */
        r.rec.source = o.run ? (snprintf(r.source, sizeof r.source, "run:%ld", o.run), r.source) : o.corpus;
        r.rec.documents = sw.count.documents;
        r.rec.tokens = sw.count.tokens;
    }
    if (sweep) r.rec.seconds += sw.count.seconds;
    if (r.rec.tokens == 0) {
        err_set(err, "no predicted tokens in '%s' (every document has at most one token)", r.rec.source);
        goto fail;
    }
    /* The figures are printed whether or not storing them worked: a full
     * disk or a database locked too long must not throw the computation
     * away. Storing is one transaction, so a failure stores nothing. */
    char store_err[PROBE_ERR_LEN] = "";
    SweepRows rows = {&sw, idx};
    int stored = !store || store_results(store, &r.rec, &cs, m->tok, cfg->n_layer, NULL, 0, sweep ? &rows : NULL,
                                         &r.ablation_id, store_err) == 0;
    int bad = 0;
    if (o.json)
        bad = print_json(&r, &cs, cfg->n_layer, "sweep", sweep ? sweep_json(&sw, idx, &cs) : NULL);
    else {
        if (cs.n) print_table(&r, &cs);
        if (sweep) print_sweep(&sw, idx, &cs, cs.n > 20 ? cs.n : 20);
        if (!cs.n && r.ablation_id)
            printf("stored as ablation %" PRId64 " in '%s' (SELECT * FROM neuron_ablation_effects)\n", r.ablation_id,
                   o.db);
    }
    if (bad) {
        err_set(err, "out of memory");
        goto fail;
    }
    rc = cli_stored(stored, store_err,
                    "the figures above were not stored (rerun with --no-db, or once the database is writable)");
    goto done;
fail:
    print_error(err);
    rc = PROBE_EXIT_RUNTIME;
done:
    conditions_free(&cs);
    neuron_sweep_free(&sw);
    free(list);
    free(idx);
    free(means);
    store_close(store);
    model_free(m);
    return rc;
}
