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
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablate.h"
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
    "ablation_summary ranks conditions by delta loss.\n";

/* ---- options ------------------------------------------------------------- */

typedef struct {
    ConditionSpec spec;
    int n_kinds;           /* condition options given: exactly one is valid */
    int mean_mode, no_db, bos, json, quiet, split_set;
    long run, stats_run, ctx; /* 0 = not given */
    SplitMode split;
    const char *db, *model, *corpus;
} AblateOptions;

/* Records a condition option (the same one twice counts once). */
static void set_kind(AblateOptions *o, ConditionKind kind, const char *list, int *seen) {
    if (!seen[kind]) o->n_kinds++;
    seen[kind] = 1;
    o->spec = (ConditionSpec){kind, list};
}

/* The getopt loop. Returns -1 when the command should go on, else the exit
 * code (--help, or a usage error already printed). */
static int parse_args(int argc, char **argv, AblateOptions *o) {
    enum { O_NOFFN = 1, O_LAYERS, O_NEURONS, O_SWEEP, O_MODE, O_STATS, O_RUN, O_DB, O_NODB, O_CTX, O_SPLIT,
           O_NOBOS, O_MODEL, O_JSON, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"no-ffn", no_argument, 0, O_NOFFN},         {"layers", required_argument, 0, O_LAYERS},
        {"neurons", required_argument, 0, O_NEURONS}, {"sweep", required_argument, 0, O_SWEEP},
        {"mode", required_argument, 0, O_MODE},       {"stats-run", required_argument, 0, O_STATS},
        {"run", required_argument, 0, O_RUN},         {"db", required_argument, 0, O_DB},
        {"no-db", no_argument, 0, O_NODB},            {"ctx", required_argument, 0, O_CTX},
        {"split", required_argument, 0, O_SPLIT},     {"no-bos", no_argument, 0, O_NOBOS},
        {"model", required_argument, 0, O_MODEL},     {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    int seen[COND_SWEEP_LAYERS + 1] = {0}, c;
    *o = (AblateOptions){.bos = 1, .split = SPLIT_PARAGRAPH, .db = "probe.db"};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_NOFFN: set_kind(o, COND_NO_FFN, NULL, seen); break;
        case O_LAYERS: set_kind(o, COND_LAYERS, optarg, seen); break;
        case O_NEURONS: set_kind(o, COND_NEURONS, optarg, seen); break;
        case O_SWEEP:
            if (strcmp(optarg, "layers")) return cli_usage_error("--sweep must be layers, not '%s'", optarg);
            set_kind(o, COND_SWEEP_LAYERS, NULL, seen);
            break;
        case O_MODE:
            if (strcmp(optarg, "zero") && strcmp(optarg, "mean"))
                return cli_usage_error("--mode must be zero or mean, not '%s'", optarg);
            o->mean_mode = !strcmp(optarg, "mean");
            break;
        case O_STATS:
            if (cli_parse_count("--stats-run", optarg, 1, INT32_MAX, &o->stats_run)) return PROBE_EXIT_USAGE;
            break;
        case O_RUN:
            if (cli_parse_run(optarg, &o->run)) return PROBE_EXIT_USAGE;
            break;
        case O_DB: o->db = optarg; break;
        case O_NODB: o->no_db = 1; break;
        case O_CTX:
            if (cli_parse_count("--ctx", optarg, 2, 1 << 20, &o->ctx)) return PROBE_EXIT_USAGE;
            break;
        case O_SPLIT:
            if (cli_parse_split(optarg, &o->split)) return PROBE_EXIT_USAGE;
            o->split_set = 1;
            break;
        case O_NOBOS: o->bos = 0; break;
        case O_MODEL: o->model = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind < argc) o->corpus = argv[optind++];
    if (optind < argc) return cli_extra_argument(argv[optind]);
    char err[PROBE_ERR_LEN];
    if (store_env_check(err)) return cli_usage_error("%s", err);
    return -1;
}

/* parse_args, then the checks between options. Same return as parse_args. */
static int parse_options(int argc, char **argv, AblateOptions *o) {
    int rc = parse_args(argc, argv, o);
    if (rc >= 0) return rc;
    if (o->n_kinds != 1)
        return cli_usage_error("give exactly one of --no-ffn, --layers LIST, --neurons LIST, --sweep layers");
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
    printf("\n%-*s  %8s  %8s  %8s  %7s  %9s  %10s  %8s  %7s\n", w, "condition", "base CE", "abl CE", "dloss",
           "+/- se", "base ppl", "abl ppl", "KL", "top-1");
    int worst = -1;
    double worst_d = -INFINITY;
    for (int i = 0; i < cs->n; i++) {
        AblateFigures f;
        ablate_figures(&cs->c[i].tot, &f);
        printf("%-*s  %8.4f  %8.4f  %+8.4f  %7.4f  %9.2f  %10.2f  %8.4f  %6.2f%%\n", w, cs->c[i].label, f.base_ce,
               f.abl_ce, f.dloss, f.dloss_se, f.base_ppl, f.abl_ppl, f.kl, 100.0 * f.agreement);
        if (f.dloss > worst_d) {
            worst_d = f.dloss;
            worst = i;
        }
    }
    printf("\nCE: mean next-token cross-entropy, nats/token; dloss = abl CE - base CE; se: its standard\n"
           "error over tokens; KL: mean KL(baseline || ablated), nats/token; top-1: tokens whose most\n"
           "likely next token is unchanged.\n");
    if (cs->n > 1 && worst >= 0) printf("largest loss increase: %s (%+.4f nats/token)\n", cs->c[worst].label, worst_d);
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

static int print_json(const Report *r, const Conditions *cs, int n_layer) {
    const AblationRecord *a = &r->rec;
    cJSON *root = cJSON_CreateObject();
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
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) return -1;
    puts(s);
    cJSON_free(s);
    return 0;
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
static int store_results(Store *s, const AblationRecord *rec, const Conditions *cs, const Tokenizer *tk, int n_layer,
                         int64_t *id, char *err) {
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
    return ablation_writer_commit(w, id, err);
fail:
    ablation_writer_abort(w);
    return -1;
}

/* Mean mode: rebuilds cs with every ablated neuron at its mean recorded in
 * the database (run stats_id, or the latest complete run of the model). */
static int use_means(Store *s, const Model *m, const ConditionSpec *spec, long stats_id, Conditions *cs,
                     int64_t *stats_run, char *err) {
    int L = m->cfg.n_layer, F = m->cfg.n_inner, rc = -1;
    float *means = calloc((size_t)L * F, sizeof *means);
    uint8_t *need = calloc((size_t)L, 1);
    if (!means || !need) {
        err_set(err, "out of memory");
        goto done;
    }
    conditions_layers_needed(cs, L, need);
    if (ablation_means_load(s, m->checksum, stats_id, L, F, need, means, stats_run, err)) goto done;
    conditions_free(cs);
    rc = conditions_build(cs, spec, &m->cfg, means, err);
done:
    free(means);
    free(need);
    return rc;
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
    if (!src || !(a = ablator_new(m, ctx, err))) goto done;
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

int cmd_ablate(int argc, char **argv) {
    AblateOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;

    char err[PROBE_ERR_LEN];
    const char *dir = model_dir_resolve(o.model);
    Conditions cs = {0};
    Store *store = NULL;
    rc = PROBE_EXIT_RUNTIME;
    Model *m = model_load(dir, err); /* the tokenizer also names stored tokens */
    if (!m) goto fail;
    const ModelConfig *cfg = &m->cfg;
    int ctx = o.ctx ? (int)o.ctx : cfg->n_positions;
    if (ctx > cfg->n_positions) {
        rc = cli_usage_error("--ctx %d out of range 2..%d (the model's n_positions)", ctx, cfg->n_positions);
        goto done;
    }
    /* specs are checked before any database or corpus work */
    if (conditions_build(&cs, &o.spec, cfg, NULL, err)) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (!o.no_db && !(store = store_open(o.db, STORE_WRITE, err))) goto fail;
    Report r = {.rec = {.model_dir = dir, .model_checksum = m->checksum, .source_run_id = o.run, .ctx = ctx,
                        .mean_mode = o.mean_mode, .kind = condition_kind_name(o.spec.kind), .spec = o.spec.list},
                .db_path = o.db};
    if (o.mean_mode && use_means(store, m, &o.spec, o.stats_run, &cs, &r.rec.stats_run_id, err)) goto fail;
    if (measure(m, store, &o, ctx, &cs, &r, err)) goto fail;
    if (r.rec.tokens == 0) {
        err_set(err, "no predicted tokens in '%s' (every document has at most one token)", r.rec.source);
        goto fail;
    }
    /* The figures are printed whether or not storing them worked: a full
     * disk or a database locked too long must not throw the computation
     * away. Storing is one transaction, so a failure stores nothing. */
    char store_err[PROBE_ERR_LEN] = "";
    int stored = !store || store_results(store, &r.rec, &cs, m->tok, cfg->n_layer, &r.ablation_id, store_err) == 0;
    if (o.json ? print_json(&r, &cs, cfg->n_layer) : (print_table(&r, &cs), 0)) {
        err_set(err, "out of memory");
        goto fail;
    }
    fflush(stdout);
    if (!stored) {
        rc = cli_error(PROBE_EXIT_RUNTIME, "%s; the figures above were not stored (rerun with --no-db, or once the "
                       "database is writable)", store_err);
        goto done;
    }
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    print_error(err);
    rc = PROBE_EXIT_RUNTIME;
done:
    conditions_free(&cs);
    store_close(store);
    model_free(m);
    return rc;
}
