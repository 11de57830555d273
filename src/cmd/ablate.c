/* ablate.c — `probe ablate`: remove FFNs or neurons and measure what
 * the model loses on a corpus.
 *
 *   probe ablate examples/heldout_mobydick.txt --sweep layers
 *   probe ablate corpus.txt --neurons 5:123,5:456 --mode mean --db probe.db
 *   sqlite3 probe.db 'SELECT * FROM ablation_summary'
 *
 * This file parses the options, wires the parts and prints the results
 * (the causal check of a concept is ablate_concept.c, the neuron sweep's
 * estimates ablate_sweep.c; ablate_cmd.h is what they share):
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
#include "ablate_cmd.h"
#include "ablations.h"
#include "cli.h"
#include "commands.h"
#include "conditions.h"
#include "doc_source.h"
#include "model.h"
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
    "  --layer L             concept: rank and ablate neurons of layer L only;\n"
    "                        --sweep neurons: the layer swept (default every layer)\n"
    "  --drop FLAGS          concept: leave out the probe's words flagged so\n"
    "\n"
    "  --mode zero|mean      zero (default): --neurons and --sweep neurons set the\n"
    "                        post-activation to 0, --no-ffn/--layers/--sweep layers\n"
    "                        drop the FFN output (c_proj and its bias) from the\n"
    "                        residual stream. mean: every ablated neuron (all neurons\n"
    "                        of an ablated layer) is set to its mean recorded in the\n"
    "                        database for this model, so the FFN outputs its mean\n"
    "                        instead of its input-dependent value\n"
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


void ablate_print_table(const Report *r, const Conditions *cs) {
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
int ablate_print_json(const Report *r, const Conditions *cs, int n_layer, const char *extra_key, cJSON *extra) {
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
int ablate_store_results(Store *s, const AblationRecord *rec, const Conditions *cs, const Tokenizer *tk, int n_layer,
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
float *ablate_means_load(Store *s, const Model *m, const uint8_t *need, long stats_id, int64_t *stats_run,
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
    float *means = ablate_means_load(s, m, need, stats_id, stats_run, err);
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
DocSource *ablate_source(const Model *m, Store *store, const AblateOptions *o, char *err) {
    return o->run ? doc_source_run(store, o->run, err) : doc_source_corpus(o->corpus, o->split, m->tok, o->bos, err);
}

void ablate_report_source(Report *r, const AblateOptions *o, const DocSource *src, const AblateCount *count) {
    snprintf(r->source, sizeof r->source, "run:%ld", o->run);
    r->rec.source = o->run ? r->source : o->corpus;
    r->rec.source_checksum = doc_source_checksum(src);
    r->rec.bos = doc_source_bos(src);
    r->rec.documents = count->documents;
    r->rec.tokens = count->tokens;
    r->rec.seconds += count->seconds;
}

int ablate_measure(Model *m, Store *store, const AblateOptions *o, int ctx, Conditions *cs, Report *r, char *err) {
    Ablator *a = NULL;
    Progress *bar = NULL;
    AblateCount count;
    int rc = -1;
    DocSource *src = ablate_source(m, store, o, err);
    if (!src || !(a = ablator_new(m, ctx, err)) || ablator_start_at(a, lowest_layer(cs, m->cfg.n_layer), err))
        goto done;
    bar = progress_new(!o->quiet, 0.0);
    rc = conditions_measure(cs, a, src, ctx, store != NULL, on_progress, bar, &count, err);
    progress_end(bar);
    if (rc) goto done;
    ablate_report_source(r, o, src, &count);
    rc = 0;
done:
    ablator_free(a);
    doc_source_free(src);
    return rc;
}

/* "L:N,L:N,..." of k neurons into a new string. */
char *ablate_neuron_list(const int *layer, const int *neuron, int k) {
    size_t cap = (size_t)k * 24 + 1, w = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; i < k; i++) w += (size_t)snprintf(s + w, cap - w, i ? ",%d:%d" : "%d:%d", layer[i], neuron[i]);
    return s;
}

int cmd_ablate(int argc, char **argv) {
    AblateOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.concept || o.probe || o.words) return ablate_concept_check(&o);

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
            means = need ? ablate_means_load(store, m, need, o.stats_run, &r.rec.stats_run_id, err) : NULL;
            if (!need) err_set(err, "out of memory");
            free(need);
            if (!means) goto fail;
        }
        if (ablate_sweep_estimate(m, store, &o, ctx, means, &sw, &list, &r, err) ||
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
    /* a neuron sweep keeps per-token rows for its first few neurons only:
     * every neuron of a GPT-2 layer over 100k tokens would be 3e8 rows */
    for (int i = SWEEP_TOKENS_KEPT; o.spec.kind == COND_SWEEP_NEURONS && i < cs.n; i++) cs.c[i].skip_tokens = 1;
    if (cs.n && ablate_measure(m, store, &o, ctx, &cs, &r, err)) goto fail;
    if (r.rec.tokens == 0) {
        err_set(err, "no predicted tokens in '%s' (every document has at most one token)", r.rec.source);
        goto fail;
    }
    /* The figures are printed whether or not storing them worked: a full
     * disk or a database locked too long must not throw the computation
     * away. Storing is one transaction, so a failure stores nothing. */
    char store_err[PROBE_ERR_LEN] = "";
    SweepRows rows = {&sw, idx};
    int stored = !store || ablate_store_results(store, &r.rec, &cs, m->tok, cfg->n_layer, NULL, 0, sweep ? &rows : NULL,
                                         &r.ablation_id, store_err) == 0;
    int bad = 0;
    if (o.json)
        bad = ablate_print_json(&r, &cs, cfg->n_layer, "sweep", sweep ? ablate_sweep_json(&sw, idx, &cs) : NULL);
    else {
        if (cs.n) ablate_print_table(&r, &cs);
        if (sweep) ablate_print_sweep(&sw, idx, &cs, cs.n > 20 ? cs.n : 20);
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
