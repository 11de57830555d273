/* kv.c — `probe kv`: Geva et al. 2021's key-value reading of a recorded run.
 *
 *   probe kv                      # every recorded layer of the latest complete run
 *   probe kv --layer 5 --json
 *
 * Per layer and variant (raw W_U·v, and through ln_f's gain), how often a
 * neuron's value promotes the token that follows its top trigger, the
 * ranks of its triggers' next tokens, and the same for a shuffled pairing
 * (analysis/kv.h). Stores the run's figures and the model's value tokens
 * (db/kv_store.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "concept_store.h"
#include "kv.h"
#include "kv_store.h"
#include "neuron_query.h"
#include "neuron_render.h"
#include "progress.h"
#include "store.h"
#include "util.h"
#include "value_proj.h"

static const char *usage_text =
    "usage: probe kv [options]\n"
    "\n"
    "Key-value memories (Geva et al. 2021): reads each FFN neuron's value vector\n"
    "(its row of mlp.c_proj.weight) through the unembedding, raw (W_U.v) and through\n"
    "ln_f's gain (W_U.(g*v)), and asks whether it promotes the token that follows the\n"
    "neuron's top-activating tokens (its triggers) in a recorded run. Per layer:\n"
    "the agreement rate (value's top token == the token after the top-1 trigger), the\n"
    "mean and median rank of every trigger's next token in the value's distribution,\n"
    "and the same with values paired with other neurons' triggers (the shuffled\n"
    "baseline). Stores the figures (kv_runs, kv_layers, kv_neurons) and every\n"
    "neuron's top promoted and suppressed tokens (value_tokens, per model).\n"
    "Vocabulary ids with identical unembedding rows count as one entry.\n"
    "\n"
    "  --db FILE       database (default probe.db)\n"
    "  --run ID        recorded run (default: the latest complete run)\n"
    "  --layer L       one layer (default: every recorded layer)\n"
    "  --triggers N    top examples used as triggers per neuron (default 25, at most\n"
    "                  the run's examples per neuron)\n"
    "  --top K         promoted and suppressed tokens stored per neuron (default 10)\n"
    "  --seed S        seed of the shuffled pairing (default 1)\n"
    "  --model DIR     the run's model (default: the directory it was recorded from)\n"
    "  --json          JSON for programs instead of a table\n"
    "  --quiet         no progress bar\n"
    "  --help          this text\n";

typedef struct {
    const char *db, *model;
    long run, layer, triggers, top, seed;
    int json, quiet;
} KvOptions;

static int parse_options(int argc, char **argv, KvOptions *o) {
    enum { O_DB = 1, O_RUN, O_LAYER, O_TRIG, O_TOP, O_SEED, O_MODEL, O_JSON, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},       {"run", required_argument, 0, O_RUN},
        {"layer", required_argument, 0, O_LAYER}, {"triggers", required_argument, 0, O_TRIG},
        {"top", required_argument, 0, O_TOP},     {"seed", required_argument, 0, O_SEED},
        {"model", required_argument, 0, O_MODEL}, {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},       {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    *o = (KvOptions){.db = "probe.db", .run = -1, .layer = -1, .triggers = 25, .top = 10, .seed = 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_RUN:
            if (cli_parse_run(optarg, &o->run)) return PROBE_EXIT_USAGE;
            break;
        case O_LAYER:
            if (cli_parse_layer(optarg, &o->layer)) return PROBE_EXIT_USAGE;
            break;
        case O_TRIG:
            if (cli_parse_count("--triggers", optarg, 1, 64, &o->triggers)) return PROBE_EXIT_USAGE;
            break;
        case O_TOP:
            if (cli_parse_count("--top", optarg, 1, 100, &o->top)) return PROBE_EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_count("--seed", optarg, 0, INT32_MAX, &o->seed)) return PROBE_EXIT_USAGE;
            break;
        case O_MODEL: o->model = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind < argc) return cli_extra_argument(argv[optind]);
    char err[PROBE_ERR_LEN];
    if (store_env_check(err)) return cli_usage_error("%s", err);
    return -1;
}

static const char *variant_name(int v) { return v ? "ln_f" : "raw"; }

/* Everything computed for one layer. */
typedef struct {
    int layer;
    KvLayer sum[2];     /* per variant */
    KvNeuron *n[2];     /* [F] */
    ValueToken *top[2], *bottom[2]; /* [F x k] */
} LayerResult;

static void result_free(LayerResult *r) {
    for (int v = 0; v < 2; v++) {
        free(r->n[v]);
        free(r->top[v]);
        free(r->bottom[v]);
    }
}



static void print_table(const NeuronRun *run, const LayerResult *res, int n, int F, int triggers, int distinct,
                        const Tokenizer *tok, int64_t kv_id) {
    printf("key-value agreement, run %" PRId64 " (%s): top %d triggers per neuron; %d distinct vocabulary "
           "entries (chance agreement %.2g)\n\n",
           run->id, run->model_dir, triggers, distinct, 1.0 / distinct);
    printf("%5s %8s   %-33s   %-33s\n", "", "", "raw: W_U.v", "ln_f: W_U.(g*v)");
    printf("%5s %8s   %16s %16s   %16s %16s\n", "layer", "neurons", "agree (shuffled)", "med rank (shuf)",
           "agree (shuffled)", "med rank (shuf)");
    for (int i = 0; i < n; i++) {
        const LayerResult *r = &res[i];
        printf("%5d %8d", r->layer, r->sum[0].neurons);
        for (int v = 0; v < 2; v++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%.3f (%.3f)", r->sum[v].agreement, r->sum[v].shuffled_agreement);
            snprintf(b, sizeof b, "%.0f (%.0f)", r->sum[v].median_rank, r->sum[v].shuffled_median_rank);
            printf("   %16s %16s", a, b);
        }
        printf("\n");
    }
    printf("\nagree: the value's top token is the token after the top-1 trigger; med rank: the median rank\n"
           "of each trigger's next token in the value's distribution (1 = its top token); shuffled: values\n"
           "paired with other neurons' triggers, what chance gives in that layer.\n");
    /* a few agreeing neurons (raw), in layer order */
    int shown = 0;
    for (int i = 0; i < n && shown < 8; i++)
        for (int j = 0; j < F && shown < 8; j++) {
            const KvNeuron *k = &res[i].n[0][j];
            if (k->agree != 1) continue;
            size_t len = 0;
            const char *b = tok_token_bytes(tok, k->value_top, &len);
            char raw[64], t[96];
            size_t nb = len < sizeof raw - 1 ? len : sizeof raw - 1;
            memcpy(raw, b ? b : "", b ? nb : 0);
            raw[b ? nb : 0] = '\0';
            text_clip(t, sizeof t, raw, 40, 0);
            if (!shown) printf("\nneurons whose value promotes what follows their top trigger (raw):\n");
            printf("  %d:%-6d promotes [[%s]]; median rank of its %d triggers' next tokens %.0f\n", res[i].layer, j, t,
                   k->n_triggers, k->median_rank);
            shown++;
        }
    if (kv_id) printf("\nstored as kv run %" PRId64 " (SELECT * FROM kv_layers WHERE kv_run_id = %" PRId64 ")\n", kv_id,
                      kv_id);
}

static void json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static int print_json(const NeuronRun *run, const LayerResult *res, int n, int triggers, int distinct, int64_t kv_id) {
    cJSON *root = cJSON_CreateObject(), *arr;
    if (!root || neuron_json_add_run(root, run)) goto fail;
    cJSON_AddNumberToObject(root, "triggers", triggers);
    cJSON_AddNumberToObject(root, "distinct_vocabulary", distinct);
    cJSON_AddNumberToObject(root, "chance_agreement", 1.0 / distinct);
    if (kv_id)
        cJSON_AddNumberToObject(root, "kv_run", (double)kv_id);
    else
        cJSON_AddNullToObject(root, "kv_run");
    if (!(arr = cJSON_AddArrayToObject(root, "layers"))) goto fail;
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "layer", res[i].layer);
        cJSON_AddNumberToObject(o, "neurons", res[i].sum[0].neurons);
        for (int v = 0; v < 2; v++) {
            cJSON *x = cJSON_AddObjectToObject(o, variant_name(v));
            const KvLayer *l = &res[i].sum[v];
            json_num(x, "agreement", l->agreement);
            json_num(x, "mean_rank", l->mean_rank);
            json_num(x, "median_rank", l->median_rank);
            json_num(x, "shuffled_agreement", l->shuffled_agreement);
            json_num(x, "shuffled_mean_rank", l->shuffled_mean_rank);
            json_num(x, "shuffled_median_rank", l->shuffled_median_rank);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return -1;
    puts(text);
    free(text);
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}

int cmd_kv(int argc, char **argv) {
    KvOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    char err[PROBE_ERR_LEN], layers_json[8192];
    Store *s = NULL;
    Model *m = NULL;
    ValueVocab *vv = NULL;
    NeuronRun run = {0};
    LayerResult *res = NULL;
    int32_t *next = NULL, *perm = NULL;
    int n_layers = 0;
    KvWriter *w = NULL;
    rc = PROBE_EXIT_RUNTIME;
    double t0 = now_sec();
    if (!(s = store_open(o.db, STORE_WRITE, err))) goto fail;
    int r = neuron_run_find(s, o.run > 0 ? o.run : 0, &run, err);
    if (r == -2) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (r) goto fail;
    if (strcmp(run.status, "complete")) {
        err_set(err, "run %" PRId64 " is %s: finish it first (probe record --resume)", run.id, run.status);
        goto fail;
    }
    if (o.layer >= 0 && (o.layer >= run.n_layer || !neuron_run_has_layer(&run, (int)o.layer))) {
        rc = cli_usage_error("layer %ld was not recorded in run %" PRId64 " (layers %s)", o.layer, run.id,
                             run.layers_text);
        goto done;
    }
    ConceptRunInfo info;
    if (concept_run_info(s, run.id, &info, err)) goto fail;
    if (o.triggers > info.n_examples) {
        rc = cli_usage_error("--triggers %ld: run %" PRId64 " kept %d examples per neuron", o.triggers, run.id,
                             info.n_examples);
        goto done;
    }
    if (!(m = model_load(o.model ? o.model : run.model_dir, err))) goto fail;
    if (m->checksum != info.model_checksum) {
        err_set(err, "model '%s' is not the model run %" PRId64 " recorded (checksums differ); pass the run's model "
                "with --model", m->dir, run.id);
        goto fail;
    }
    if (!(vv = value_vocab_new(m, err))) goto fail;
    const int F = m->cfg.n_inner, N = (int)o.triggers, k = (int)o.top;
    n_layers = o.layer >= 0 ? 1 : run.n_layers;
    res = calloc((size_t)n_layers, sizeof *res);
    next = malloc(sizeof *next * (size_t)F * N);
    perm = malloc(sizeof *perm * (size_t)F);
    if (!res || !next || !perm) goto oom;
    size_t wlen = (size_t)snprintf(layers_json, sizeof layers_json, "[");
    Progress *bar = progress_new(!o.quiet && isatty(2), 0);
    for (int i = 0; i < n_layers; i++) {
        LayerResult *lr = &res[i];
        lr->layer = o.layer >= 0 ? (int)o.layer : run.layers[i];
        if (wlen < sizeof layers_json)
            wlen += (size_t)snprintf(layers_json + wlen, sizeof layers_json - wlen, i ? ",%d" : "%d", lr->layer);
        if (kv_next_tokens(s, run.id, lr->layer, F, N, next, err)) {
            progress_end(bar);
            goto fail;
        }
        kv_shuffle(F, (uint64_t)o.seed * 1000003u + (uint64_t)lr->layer, perm);
        for (int v = 0; v < 2; v++) {
            lr->n[v] = malloc(sizeof *lr->n[v] * (size_t)F);
            lr->top[v] = malloc(sizeof *lr->top[v] * (size_t)F * k);
            lr->bottom[v] = malloc(sizeof *lr->bottom[v] * (size_t)F * k);
            if (!lr->n[v] || !lr->top[v] || !lr->bottom[v]) {
                progress_end(bar);
                goto oom;
            }
            if (kv_layer(m, vv, lr->layer, v ? VALUE_LNF : VALUE_RAW, next, N, perm, k, lr->n[v], &lr->sum[v],
                         lr->top[v], lr->bottom[v], err)) {
                progress_end(bar);
                goto fail;
            }
            if (progress_due(bar)) {
                char d[64];
                snprintf(d, sizeof d, "layer %d (%s)", lr->layer, variant_name(v));
                progress_draw(bar, (i * 2.0 + v + 1) / (2.0 * n_layers), d);
            }
        }
    }
    progress_end(bar);
    if (wlen < sizeof layers_json) snprintf(layers_json + wlen, sizeof layers_json - wlen, "]");
    /* store: the figures of the run, the model's value tokens */
    char store_err[PROBE_ERR_LEN] = "";
    int64_t kv_id = 0;
    KvRunRow head = {.run_id = run.id, .model_checksum = m->checksum, .layers_json = layers_json, .triggers = N,
                     .seed = o.seed, .distinct_rows = value_vocab_distinct(vv), .seconds = now_sec() - t0};
    if ((w = kv_writer_begin(s, &head, store_err))) {
        int bad = 0;
        for (int i = 0; i < n_layers && !bad; i++)
            for (int v = 0; v < 2 && !bad; v++)
                bad = kv_writer_layer(w, res[i].layer, variant_name(v), &res[i].sum[v], res[i].n[v], F, store_err) ||
                      kv_writer_values(w, m->checksum, res[i].layer, variant_name(v), res[i].top[v], res[i].bottom[v],
                                       F, k, m->tok, store_err);
        if (bad)
            kv_writer_abort(w);
        else
            kv_writer_commit(w, &kv_id, store_err);
        w = NULL;
    }
    if (o.json ? print_json(&run, res, n_layers, N, value_vocab_distinct(vv), kv_id)
               : (print_table(&run, res, n_layers, F, N, value_vocab_distinct(vv), m->tok, kv_id), 0))
        goto oom;
    fflush(stdout);
    if (!kv_id) {
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
    for (int i = 0; res && i < n_layers; i++) result_free(&res[i]);
    free(res);
    free(next);
    free(perm);
    value_vocab_free(vv);
    neuron_run_free(&run);
    model_free(m);
    store_close(s);
    return rc;
}
