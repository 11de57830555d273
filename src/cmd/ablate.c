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
#include "concept_ablate.h"
#include "concept_rank.h"
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
    "ablation_summary ranks conditions by delta loss.\n";

/* ---- options ------------------------------------------------------------- */

typedef struct {
    ConditionSpec spec;
    int n_kinds;           /* condition options given: exactly one is valid */
    int mean_mode, no_db, bos, json, quiet, split_set;
    long run, stats_run, ctx; /* 0 = not given */
    SplitMode split;
    const char *db, *model, *corpus;
    /* the causal check of a concept (--concept / --probe / --words) */
    const char *concept, *probe, *words, *drop;
    long top, seeds, layer; /* layer -1 = every recorded layer */
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
           O_NOBOS, O_MODEL, O_JSON, O_QUIET, O_HELP, O_CONCEPT, O_PROBE, O_WORDS, O_DROP, O_TOP, O_SEEDS, O_LAYER };
    static const struct option opts[] = {
        {"no-ffn", no_argument, 0, O_NOFFN},         {"layers", required_argument, 0, O_LAYERS},
        {"neurons", required_argument, 0, O_NEURONS}, {"sweep", required_argument, 0, O_SWEEP},
        {"mode", required_argument, 0, O_MODE},       {"stats-run", required_argument, 0, O_STATS},
        {"run", required_argument, 0, O_RUN},         {"db", required_argument, 0, O_DB},
        {"no-db", no_argument, 0, O_NODB},            {"ctx", required_argument, 0, O_CTX},
        {"split", required_argument, 0, O_SPLIT},     {"no-bos", no_argument, 0, O_NOBOS},
        {"model", required_argument, 0, O_MODEL},     {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, O_HELP},
        {"concept", required_argument, 0, O_CONCEPT}, {"probe", required_argument, 0, O_PROBE},
        {"words", required_argument, 0, O_WORDS},     {"drop", required_argument, 0, O_DROP},
        {"top", required_argument, 0, O_TOP},         {"seeds", required_argument, 0, O_SEEDS},
        {"layer", required_argument, 0, O_LAYER},     {0, 0, 0, 0}};
    int seen[COND_SWEEP_LAYERS + 1] = {0}, c;
    *o = (AblateOptions){.bos = 1, .split = SPLIT_PARAGRAPH, .db = "probe.db", .top = -1, .seeds = -1, .layer = -1};
    int concept_seen = 0;
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
        case O_CONCEPT: o->concept = optarg; break;
        case O_PROBE: o->probe = optarg; break;
        case O_WORDS: o->words = optarg; break;
        case O_DROP: o->drop = optarg; break;
        case O_TOP:
            if (cli_parse_count("--top", optarg, 1, 10000, &o->top)) return PROBE_EXIT_USAGE;
            break;
        case O_SEEDS:
            if (cli_parse_count("--seeds", optarg, 1, 1000, &o->seeds)) return PROBE_EXIT_USAGE;
            break;
        case O_LAYER:
            if (cli_parse_layer(optarg, &o->layer)) return PROBE_EXIT_USAGE;
            break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (o->concept || o->probe || o->words) {
        if (!!o->concept + !!o->probe + !!o->words > 1) return cli_usage_error("give one of --concept, --probe and --words");
        concept_seen = 1;
        o->n_kinds++;
    }
    (void)concept_seen;
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
        return cli_usage_error("give exactly one of --no-ffn, --layers LIST, --neurons LIST, --sweep layers, "
                               "--concept NAME (or --probe FILE, --words LIST)");
    int concept = o->concept || o->probe || o->words;
    if (!concept && (o->top >= 0 || o->seeds >= 0 || o->layer >= 0 || o->drop))
        return cli_usage_error("--top, --seeds, --layer and --drop apply to --concept, --probe or --words");
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

/* A small figure with its significant digits: 4 decimals while that keeps
 * two of them, else scientific notation (-4.90e-05, never -0.0000). */
static const char *sig(char *buf, size_t cap, double x, int plus) {
    if (x == 0 || fabs(x) >= 0.00995 || !isfinite(x))
        snprintf(buf, cap, plus ? "%+.4f" : "%.4f", x);
    else
        snprintf(buf, cap, plus ? "%+.2e" : "%.2e", x);
    return buf;
}

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
               sig(d, sizeof d, f.dloss, 1), sig(se, sizeof se, f.dloss_se, 0), f.base_ppl, f.abl_ppl,
               sig(kl, sizeof kl, f.kl, 0), 100.0 * f.agreement);
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
        printf("largest loss increase: %s (%s nats/token)\n", cs->c[worst].label, sig(wd, sizeof wd, worst_d, 1));
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

static int print_json(const Report *r, const Conditions *cs, int n_layer, cJSON *extra) {
    const AblationRecord *a = &r->rec;
    cJSON *root = cJSON_CreateObject();
    if (extra) cJSON_AddItemToObject(root, "concept", extra);
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
                         ConceptAblationRow *extra, int n_extra, int64_t *id, char *err) {
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
    printf("%-20s  %19s  %19s  %19s\n", "concept's top", sig(x1, sizeof x1, sp[0].dloss_in, 1),
           sig(x2, sizeof x2, sp[0].dloss_after, 1), sig(x3, sizeof x3, sp[0].dloss_out, 1));
    char lab[64], a[96], b[96], d[96];
    snprintf(lab, sizeof lab, "random, %d seed%s", nr, nr > 1 ? "s" : "");
    snprintf(a, sizeof a, "%s +- %s", sig(y1, sizeof y1, mean_of(din, nr), 1), sig(y2, sizeof y2, sd_of(din, nr), 0));
    snprintf(b, sizeof b, "%s +- %s", sig(y1, sizeof y1, mean_of(dafter, nr), 1),
             sig(y2, sizeof y2, sd_of(dafter, nr), 0));
    snprintf(d, sizeof d, "%s +- %s", sig(y1, sizeof y1, mean_of(dout, nr), 1), sig(y2, sizeof y2, sd_of(dout, nr), 0));
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
        for (int q = 0; q < 6; q++) {
            if (isfinite(v[q]))
                cJSON_AddNumberToObject(e, keys[q], v[q]);
            else
                cJSON_AddNullToObject(e, keys[q]);
        }
        cJSON_AddItemToArray(arr, e);
    }
    return o;
}

/* --concept / --probe / --words: rank (and store the ranking), ablate the
 * top K and the random sets over the recorded run, split by concept. */
static int concept_check(AblateOptions *o) {
    char err[PROBE_ERR_LEN], layers_json[8192], store_err[PROBE_ERR_LEN] = "";
    int rc = PROBE_EXIT_RUNTIME, usage, k = (int)o->top, n_sets = 1 + (int)o->seeds;
    Concept *c = NULL;
    Store *store = NULL;
    Model *m = NULL;
    NeuronRun run = {0};
    ConceptScore *sc = NULL;
    ConceptTokens ct = {0};
    Conditions cs = {0};
    float *means = NULL;
    uint8_t *need = NULL;
    int *tl = NULL, *tn = NULL, *rn = NULL;
    char **lists = calloc((size_t)n_sets, sizeof *lists);
    ConceptSplit *sp = calloc((size_t)n_sets, sizeof *sp);
    ConceptAblationRow *rows = calloc((size_t)n_sets, sizeof *rows);
    if (!lists || !sp || !rows) goto oom;
    if (concept_open(o->concept, o->probe, o->words, o->drop, &c, &usage, err)) {
        rc = usage ? cli_usage_error("%s", err) : cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        goto done;
    }
    if (!(store = store_open(o->db, STORE_WRITE, err))) goto fail;
    int r = neuron_run_find(store, o->run, &run, err);
    if (r == -2) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (r) goto fail;
    if (strcmp(run.status, "complete")) {
        err_set(err, "run %" PRId64 " is %s: finish it first (probe record --resume)", run.id, run.status);
        goto fail;
    }
    if (o->layer >= 0 && (o->layer >= run.n_layer || !neuron_run_has_layer(&run, (int)o->layer))) {
        rc = cli_usage_error("layer %ld was not recorded in run %" PRId64 " (layers %s)", o->layer, run.id,
                             run.layers_text);
        goto done;
    }
    const char *dir = o->model ? o->model : run.model_dir;
    if (!(m = model_load(dir, err))) goto fail;
    const int L = m->cfg.n_layer, F = m->cfg.n_inner;
    int ctx = o->ctx ? (int)o->ctx : m->cfg.n_positions;
    if (ctx > m->cfg.n_positions) {
        rc = cli_usage_error("--ctx %d out of range 2..%d (the model's n_positions)", ctx, m->cfg.n_positions);
        goto done;
    }
    /* 1. the ranking (stored like top-neurons --concept) */
    size_t n_sc;
    ConceptTotals t;
    int64_t concept_run = 0;
    if (concept_rank_compute(store, &run, m, c, o->layer, o->drop, o->quiet, &sc, &n_sc, &t, &concept_run,
                             layers_json, sizeof layers_json, store_err, err))
        goto fail;
    if (!concept_run) {
        err_set(err, "%s (storing the concept ranking)", store_err);
        goto fail;
    }
    if ((size_t)k > n_sc / 2) {
        rc = cli_usage_error("--top %d: at most half of the %zu neurons ranked", k, n_sc);
        goto done;
    }
    concept_scores_sort(sc, n_sc, CONCEPT_BY_AUROC);
    /* 2. the sets: the top K, and K random neurons of the same layers per seed */
    tl = malloc(sizeof *tl * (size_t)k);
    tn = malloc(sizeof *tn * (size_t)k);
    rn = malloc(sizeof *rn * (size_t)k);
    if (!tl || !tn || !rn) goto oom;
    for (int i = 0; i < k; i++) {
        tl[i] = sc[i].layer;
        tn[i] = sc[i].neuron;
    }
    if (!(lists[0] = neuron_list(tl, tn, k))) goto oom;
    for (int s = 1; s < n_sets; s++) {
        if (concept_random_neurons(tl, tn, k, F, (uint64_t)s, rn)) {
            err_set(err, "too few neurons in the ranked layers for %d random ones", k);
            goto fail;
        }
        if (!(lists[s] = neuron_list(tl, rn, k))) goto oom;
    }
    if (o->mean_mode) {
        means = calloc((size_t)L * F, sizeof *means);
        need = calloc((size_t)L, 1);
        if (!means || !need) goto oom;
        for (int i = 0; i < k; i++) need[tl[i]] = 1;
        int64_t stats_run = 0;
        if (ablation_means_load(store, m->checksum, o->stats_run, L, F, need, means, &stats_run, err)) goto fail;
        o->stats_run = stats_run;
    }
    for (int s = 0; s < n_sets; s++) {
        ConditionSpec spec = {COND_NEURONS, lists[s]};
        if (conditions_build(&cs, &spec, &m->cfg, means, err)) goto fail;
        if (s == 0)
            snprintf(cs.c[s].label, sizeof cs.c[s].label, "concept %s: top %d", c->name, k);
        else
            snprintf(cs.c[s].label, sizeof cs.c[s].label, "random %d (seed %d)", k, s);
    }
    /* 3. measure on the run's tokens, and split by concept */
    if (concept_tokens_load(store, run.id, c, &ct, err)) goto fail;
    o->run = run.id;
    Report rep = {.rec = {.model_dir = dir, .model_checksum = m->checksum, .source_run_id = run.id, .ctx = ctx,
                          .mean_mode = o->mean_mode, .kind = condition_kind_name(COND_NEURONS), .spec = lists[0],
                          .stats_run_id = o->stats_run},
                  .db_path = o->db};
    if (measure(m, store, o, ctx, &cs, &rep, err)) goto fail;
    for (int s = 0; s < n_sets; s++) {
        concept_split(&cs.c[s], &ct, &sp[s]);
        rows[s] = (ConceptAblationRow){.concept_run_id = concept_run, .idx = s, .random = s > 0, .seed = s,
                                       .neurons = lists[s], .tokens_in = sp[s].n_in, .tokens_after = sp[s].n_after,
                                       .tokens_out = sp[s].n_out, .dloss_in = sp[s].dloss_in, .kl_in = sp[s].kl_in,
                                       .dloss_after = sp[s].dloss_after, .kl_after = sp[s].kl_after,
                                       .dloss_out = sp[s].dloss_out, .kl_out = sp[s].kl_out};
    }
    if (sp[0].n_in == 0) {
        err_set(err, "no predicted token of run %" PRId64 " is a concept token", run.id);
        goto fail;
    }
    int stored = store_results(store, &rep.rec, &cs, m->tok, L, rows, n_sets, &rep.ablation_id, store_err) == 0;
    if (o->json) {
        if (print_json(&rep, &cs, L, concept_json(c, concept_run, k, sp, rows, n_sets))) goto oom;
    } else {
        print_table(&rep, &cs);
        print_concept(c, concept_run, k, sp, n_sets);
    }
    fflush(stdout);
    if (!stored) {
        rc = cli_error(PROBE_EXIT_RUNTIME, "%s; the figures above were not stored", store_err);
        goto done;
    }
    rc = PROBE_EXIT_OK;
    goto done;
oom:
    err_set(err, "out of memory");
fail:
    rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
done:
    for (int s = 0; lists && s < n_sets; s++) free(lists[s]);
    free(lists);
    free(sp);
    free(rows);
    free(tl);
    free(tn);
    free(rn);
    free(means);
    free(need);
    free(sc);
    conditions_free(&cs);
    concept_tokens_free(&ct);
    neuron_run_free(&run);
    model_free(m);
    store_close(store);
    concept_free(c);
    return rc;
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
    int stored =
        !store || store_results(store, &r.rec, &cs, m->tok, cfg->n_layer, NULL, 0, &r.ablation_id, store_err) == 0;
    if (o.json ? print_json(&r, &cs, cfg->n_layer, NULL) : (print_table(&r, &cs), 0)) {
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
