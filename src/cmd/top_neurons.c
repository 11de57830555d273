/* top_neurons.c — `probe top-neurons`: rank recorded neurons by their
 * statistics, or by their selectivity for a concept, each with its top
 * activating tokens in context.
 *
 *   probe top-neurons --db probe.db --layer 5 --by mean --limit 10
 *   probe top-neurons --json | jq '.neurons[0].examples'
 *   probe top-neurons --concept past_tense_verbs --layer 5
 *
 * Parses the options and wires the query (db/neuron_query.h) to a renderer
 * (neuron_render.h): the table, or --json; a concept goes to
 * concept_rank.h. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablations.h"
#include "cli.h"
#include "commands.h"
#include "concept_rank.h"
#include "neuron_query.h"
#include "neuron_render.h"
#include "store.h"
#include "util.h"

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
    "  --by KEY        max (default), mean, or frac; or ablation: the estimated loss\n"
    "                  increase of ablating each neuron alone, from the latest\n"
    "                  `probe ablate --sweep neurons --layer L` of the run's model on\n"
    "                  each layer (measured too where that sweep verified it)\n"
    "  --limit N       neurons to list (default 20)\n"
    "  --json          JSON for programs instead of a table\n"
    "  --help          this text\n"
    "\n"
    "Concepts: rank by selectivity for a concept instead (AUROC of concept tokens\n"
    "against all other tokens, Cohen's d, means, precision of the top examples),\n"
    "replaying only the windows that hold concept tokens; stored in the database\n"
    "(concept_runs, concept_scores, view concept_top_neurons).\n"
    "  --concept NAME  a shipped concept: probes/NAME.json (see probes/README.md)\n"
    "  --probe FILE    a concept probe file of your own (same format)\n"
    "  --words LIST    an ad-hoc concept: comma-separated words, e.g. walked,went\n"
    "  --drop FLAGS    leave out the probe's words flagged so, e.g. participle\n"
    "  --by KEY        auroc (default), d, or precision\n"
    "  --model DIR     the run's model (default: the directory it was recorded from)\n"
    "  --max-error E   the AUROC is bounded from the record-time histograms; a listed\n"
    "                  neuron whose bound exceeds E (default 0.002) gets its exact AUROC\n"
    "                  instead (auroc_error 0), which replays every window of the run\n"
    "                  (a forward pass of the corpus; with --layer only the windows the\n"
    "                  ranking did not replay); 1 never replays\n"
    "  --exact         every listed neuron's AUROC exactly (--max-error 0)\n"
    "  --quiet         no progress bar\n";

typedef struct {
    const char *db;
    long run, layer, limit; /* run, layer: -1 = default */
    NeuronOrder by;
    const char *by_text; /* --by as given: read once the mode is known */
    int json;
    int exact; /* --exact: --max-error 0 */
    int by_ablation; /* --by ablation */
    ConceptRankOptions concept; /* used when --concept/--probe/--words is given */
} TopOptions;

/* --max-error E: a bound on an AUROC, 0..1 */
static int parse_max_error(const char *arg, void *out) {
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= 0 && v <= 1))
        return cli_usage_error("--max-error must be a number from 0 to 1, not '%s'", arg), -1;
    *(double *)out = v;
    return 0;
}

/* Fills *o from argv. Returns -1 when the command should go on, else the
 * exit code (--help, or a usage error already printed). */
static int parse_options(int argc, char **argv, TopOptions *o) {
    *o = (TopOptions){.db = "probe.db", .run = -1, .layer = -1, .limit = 20, .by = NEURON_BY_MAX,
                      .concept.max_error = -1};
    ConceptRankOptions *co = &o->concept;
    const CliOption opts[] = {CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_RUN(&o->run),
                              CLI_OPT_LAYER(&o->layer),
                              CLI_OPT_STRING("by", &o->by_text),
                              CLI_OPT_COUNT("limit", &o->limit, 1, 1000000),
                              CLI_OPT_SET("json", &o->json),
                              CLI_OPT_STRING("concept", &co->concept),
                              CLI_OPT_STRING("probe", &co->probe),
                              CLI_OPT_STRING("words", &co->words),
                              CLI_OPT_STRING("drop", &co->drop),
                              CLI_OPT_STRING("model", &co->model),
                              CLI_OPT_SET("quiet", &co->quiet),
                              CLI_OPT_SET("exact", &o->exact),
                              CLI_OPT_CALL("max-error", parse_max_error, &co->max_error),
                              CLI_OPT_END};
    int rc = cli_parse(argc, argv, usage_text, opts, NULL);
    if (rc >= 0) return rc;
    int n_concepts = !!co->concept + !!co->probe + !!co->words;
    if (n_concepts > 1) return cli_usage_error("give one of --concept, --probe and --words");
    if (n_concepts) {
        if (co->drop && co->words) return cli_usage_error("--drop applies to probe files, not to --words");
        co->db = o->db;
        co->run = o->run;
        co->layer = o->layer;
        co->limit = o->limit;
        co->json = o->json;
        if (o->exact && co->max_error >= 0) return cli_usage_error("give --exact or --max-error, not both");
        co->max_error = o->exact ? 0 : co->max_error >= 0 ? co->max_error : CONCEPT_MAX_ERROR;
        co->by = CONCEPT_BY_AUROC;
        if (o->by_text && concept_order_parse(o->by_text, &co->by))
            return cli_usage_error("--by must be auroc, d or precision with a concept, not '%s'", o->by_text);
    } else {
        if (co->drop || co->model || o->exact || co->max_error >= 0)
            return cli_usage_error("--%s needs --concept, --probe or --words",
                                   co->drop ? "drop" : co->model ? "model" : o->exact ? "exact" : "max-error");
        o->by_ablation = o->by_text && !strcmp(o->by_text, "ablation");
        if (o->by_text && !o->by_ablation && neuron_order_parse(o->by_text, &o->by))
            return cli_usage_error("--by must be max, mean, frac or ablation, not '%s'", o->by_text);
    }
    return cli_check_store_env();
}

static int print_json(const NeuronRun *run, NeuronOrder by, const NeuronRows *rows) {
    cJSON *root = cJSON_CreateObject();
    if (root && !neuron_json_add_run(root, run) && cJSON_AddStringToObject(root, "by", neuron_order_column(by)) &&
        !neuron_json_add_rows(cJSON_AddArrayToObject(root, "neurons"), rows))
        return cli_print_json(root);
    cJSON_Delete(root);
    return -1;
}

static void print_table(const NeuronRun *run, const TopOptions *o, const NeuronRows *rows) {
    printf("run %" PRId64 " (%s): %s on '%s', %" PRId64 " tokens; ranked by %s%s\n\n", run->id, run->status,
           run->model_dir, run->corpus_path, run->n_tokens, neuron_order_column(o->by),
           o->layer >= 0 ? "" : " over all recorded layers");
    neuron_table_print(stdout, rows);
    if (rows->n == 0) printf("(no statistics: the run recorded no tokens)\n");
}

/* --by ablation: the neurons in the order of the latest neuron sweeps'
 * estimates, with their statistics and examples from the run. */
static int list_by_ablation(Store *s, const NeuronRun *run, const TopOptions *o, char *err) {
    AblationNeuronRank *r = NULL;
    NeuronRows rows = {0};
    int n = 0, rc = -1, *layer = NULL, *neuron = NULL;
    if (ablation_neuron_ranking(s, run->id, (int)o->layer, (int)o->limit, &r, &n, err)) goto done;
    if (n == 0) {
        err_set(err, "no neuron sweep of run %" PRId64 "'s model%s in '%s': run `probe ablate CORPUS --sweep neurons "
                "--layer L` first", run->id, o->layer >= 0 ? " on this layer" : "", o->db);
        goto done;
    }
    layer = malloc(sizeof *layer * (size_t)n);
    neuron = malloc(sizeof *neuron * (size_t)n);
    if (!layer || !neuron) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) layer[i] = r[i].layer, neuron[i] = r[i].neuron;
    if (neuron_query_list(s, run, layer, neuron, n, &rows, err)) goto done;
    if (o->json) {
        cJSON *root = cJSON_CreateObject(), *arr;
        if (!root || neuron_json_add_run(root, run) || !cJSON_AddStringToObject(root, "by", "ablation") ||
            !(arr = cJSON_AddArrayToObject(root, "neurons")) || neuron_json_add_rows(arr, &rows)) {
            cJSON_Delete(root);
            err_set(err, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_GetArrayItem(arr, i);
            cJSON_AddNumberToObject(e, "ablation_id", (double)r[i].ablation_id);
            json_add_real(e, "ablation_estimate", r[i].estimate);
            json_add_real(e, "ablation_measured", r[i].measured);
        }
        if (cli_print_json(root)) {
            err_set(err, "out of memory");
            goto done;
        }
    } else {
        printf("run %" PRId64 " (%s): %s on '%s'; ranked by ablation: the estimated loss increase (nats/token)\n"
               "of ablating each neuron alone, from the latest neuron sweep of its layer\n\n",
               run->id, run->status, run->model_dir, run->corpus_path);
        printf("%4s  %9s  %10s  %10s  %8s\n", "rank", "neuron", "estimate", "measured", "ablation");
        for (int i = 0; i < n; i++) {
            char m[32] = "";
            if (!isnan(r[i].measured)) snprintf(m, sizeof m, "%+.3e", r[i].measured);
            printf("%4d  %4d:%-4d  %+10.3e  %10s  %8" PRId64 "\n", i + 1, r[i].layer, r[i].neuron, r[i].estimate, m,
                   r[i].ablation_id);
        }
        printf("\n");
        neuron_table_print(stdout, &rows);
    }
    rc = PROBE_EXIT_OK;
done:
    free(r);
    free(layer);
    free(neuron);
    neuron_rows_free(&rows);
    return rc;
}

/* Checks --layer against the run: -1 when fine, else the usage error's
 * exit code. */
static int check_layer(const NeuronRun *run, long layer) {
    if (layer >= run->n_layer)
        return cli_usage_error("--layer %ld out of range 0..%d (run %" PRId64 ")", layer, run->n_layer - 1, run->id);
    return cli_run_recorded_layer(run, layer);
}

/* Finds the run, checks --layer, queries and prints. Returns the exit code
 * (errors about the run already printed), or -1 with err (a runtime
 * error). */
static int list(Store *s, const TopOptions *o, char *err) {
    NeuronRun run = {0};
    NeuronRows rows = {0};
    int rc;
    if ((rc = cli_find_run(s, o->run, &run)) >= 0 || (rc = check_layer(&run, o->layer)) >= 0) goto done;
    if (!o->json && strcmp(run.status, "complete"))
        cli_error(0, "warning: run %" PRId64 " is %s; statistics cover the tokens recorded so far", run.id, run.status);
    rc = -1;
    if (o->by_ablation) {
        rc = list_by_ablation(s, &run, o, err);
        goto done;
    }
    if (neuron_query_top(s, &run, (int)o->layer, o->by, (int)o->limit, &rows, err)) goto done;
    if (o->json ? print_json(&run, o->by, &rows) : (print_table(&run, o, &rows), 0)) {
        err_set(err, "out of memory");
        goto done;
    }
    rc = PROBE_EXIT_OK;
done:
    neuron_rows_free(&rows);
    neuron_run_free(&run);
    return rc;
}

int cmd_top_neurons(int argc, char **argv) {
    TopOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.concept.concept || o.concept.probe || o.concept.words) return concept_rank(&o.concept);
    char err[PROBE_ERR_LEN];
    Store *s = store_open(o.db, STORE_READ, err);
    rc = s ? list(s, &o, err) : -1;
    store_close(s);
    return rc >= 0 ? rc : cli_error(PROBE_EXIT_RUNTIME, "%s", err);
}
