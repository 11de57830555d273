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
    *o = (KvOptions){.db = "probe.db", .run = -1, .layer = -1, .triggers = 25, .top = 10, .seed = 1};
    const CliOption opts[] = {CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_RUN(&o->run),
                              CLI_OPT_LAYER(&o->layer),
                              CLI_OPT_COUNT("triggers", &o->triggers, 1, 64),
                              CLI_OPT_COUNT("top", &o->top, 1, 100),
                              CLI_OPT_COUNT("seed", &o->seed, 0, INT32_MAX),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_SET("json", &o->json),
                              CLI_OPT_SET("quiet", &o->quiet),
                              CLI_OPT_END};
    int rc = cli_parse(argc, argv, usage_text, opts, NULL);
    return rc >= 0 ? rc : cli_check_store_env();
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
            json_add_real(x, "agreement", l->agreement);
            json_add_real(x, "mean_rank", l->mean_rank);
            json_add_real(x, "median_rank", l->median_rank);
            json_add_real(x, "shuffled_agreement", l->shuffled_agreement);
            json_add_real(x, "shuffled_mean_rank", l->shuffled_mean_rank);
            json_add_real(x, "shuffled_median_rank", l->shuffled_median_rank);
        }
    }
    return cli_print_json(root);
fail:
    cJSON_Delete(root);
    return -1;
}

/* What the command holds between its phases. */
typedef struct {
    Store *s;
    Model *m;
    ValueVocab *vv;
    NeuronRun run;
    LayerResult *res; /* [n_layers] */
    int n_layers;
    char layers_json[8192];
} Kv;

static void kv_free(Kv *k) {
    for (int i = 0; k->res && i < k->n_layers; i++) result_free(&k->res[i]);
    free(k->res);
    value_vocab_free(k->vv);
    neuron_run_free(&k->run);
    model_free(k->m);
    store_close(k->s);
}

/* The database, the run and its model, with the options checked against
 * them before any work. -1 to go on, else the exit code after the error. */
static int kv_open(const KvOptions *o, Kv *k) {
    char err[PROBE_ERR_LEN];
    int rc;
    if (!(k->s = store_open(o->db, STORE_WRITE, err))) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if ((rc = cli_find_run(k->s, o->run, &k->run)) >= 0 || (rc = cli_run_complete(&k->run)) >= 0 ||
        (rc = cli_run_recorded_layer(&k->run, o->layer)) >= 0)
        return rc;
    ConceptRunInfo info;
    if (concept_run_info(k->s, k->run.id, &info, err)) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (o->triggers > info.n_examples)
        return cli_usage_error("--triggers %ld: run %" PRId64 " kept %d examples per neuron", o->triggers, k->run.id,
                               info.n_examples);
    if (!(k->m = model_load(o->model ? o->model : k->run.model_dir, err)))
        return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (k->m->checksum != info.model_checksum)
        return cli_error(PROBE_EXIT_RUNTIME, "model '%s' is not the model run %" PRId64 " recorded (checksums "
                         "differ); pass the run's model with --model", k->m->dir, k->run.id);
    if (!(k->vv = value_vocab_new(k->m, err))) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    return -1;
}

/* Both variants of layer i into lr. next and perm are scratch: [F x N]
 * trigger next tokens, [F] the shuffled pairing. */
static int kv_compute_layer(const KvOptions *o, Kv *k, int i, int32_t *next, int32_t *perm, Progress *bar,
                            char *err) {
    LayerResult *lr = &k->res[i];
    const int F = k->m->cfg.n_inner, N = (int)o->triggers, K = (int)o->top;
    if (kv_next_tokens(k->s, k->run.id, lr->layer, F, N, next, err)) return -1;
    kv_shuffle(F, (uint64_t)o->seed * 1000003u + (uint64_t)lr->layer, perm);
    for (int v = 0; v < 2; v++) {
        lr->n[v] = malloc(sizeof *lr->n[v] * (size_t)F);
        lr->top[v] = malloc(sizeof *lr->top[v] * (size_t)F * K);
        lr->bottom[v] = malloc(sizeof *lr->bottom[v] * (size_t)F * K);
        if (!lr->n[v] || !lr->top[v] || !lr->bottom[v]) return err_set(err, "out of memory");
        if (kv_layer(k->m, k->vv, lr->layer, v ? VALUE_LNF : VALUE_RAW, next, N, perm, K, lr->n[v], &lr->sum[v],
                     lr->top[v], lr->bottom[v], err))
            return -1;
        if (progress_due(bar)) {
            char d[64];
            snprintf(d, sizeof d, "layer %d (%s)", lr->layer, variant_name(v));
            progress_draw(bar, (i * 2.0 + v + 1) / (2.0 * k->n_layers), d);
        }
    }
    return 0;
}

/* Every layer of the command: k->res. 0, or -1 with err. */
static int kv_compute(const KvOptions *o, Kv *k, char *err) {
    const int F = k->m->cfg.n_inner, N = (int)o->triggers;
    int *layers = NULL, rc = -1;
    if (cli_run_layers(&k->run, o->layer, &layers, &k->n_layers, k->layers_json, sizeof k->layers_json))
        return err_set(err, "out of memory");
    k->res = calloc((size_t)k->n_layers, sizeof *k->res);
    int32_t *next = malloc(sizeof *next * (size_t)F * N), *perm = malloc(sizeof *perm * (size_t)F);
    if (!k->res || !next || !perm) {
        err_set(err, "out of memory");
        goto done;
    }
    Progress *bar = progress_new(!o->quiet && isatty(2), 0);
    rc = 0;
    for (int i = 0; i < k->n_layers && !rc; i++) {
        k->res[i].layer = layers[i];
        rc = kv_compute_layer(o, k, i, next, perm, bar, err);
    }
    progress_end(bar);
done:
    free(layers);
    free(next);
    free(perm);
    return rc;
}

/* The run's figures and the model's value tokens, in one transaction: the
 * kv run's id, or 0 with store_err. */
static int64_t kv_store(const KvOptions *o, const Kv *k, double seconds, char *store_err) {
    const int F = k->m->cfg.n_inner, K = (int)o->top;
    int64_t kv_id = 0;
    KvRunRow head = {.run_id = k->run.id, .model_checksum = k->m->checksum, .layers_json = k->layers_json,
                     .triggers = (int)o->triggers, .seed = o->seed, .distinct_rows = value_vocab_distinct(k->vv),
                     .seconds = seconds};
    KvWriter *w = kv_writer_begin(k->s, &head, store_err);
    if (!w) return 0;
    int bad = 0;
    for (int i = 0; i < k->n_layers && !bad; i++)
        for (int v = 0; v < 2 && !bad; v++) {
            const LayerResult *r = &k->res[i];
            bad = kv_writer_layer(w, r->layer, variant_name(v), &r->sum[v], r->n[v], F, store_err) ||
                  kv_writer_values(w, k->m->checksum, r->layer, variant_name(v), r->top[v], r->bottom[v], F, K,
                                   k->m->tok, store_err);
        }
    if (bad)
        kv_writer_abort(w);
    else
        kv_writer_commit(w, &kv_id, store_err);
    return kv_id;
}

int cmd_kv(int argc, char **argv) {
    KvOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    char err[PROBE_ERR_LEN], store_err[PROBE_ERR_LEN] = "";
    Kv k = {0};
    double t0 = now_sec();
    if ((rc = kv_open(&o, &k)) >= 0) goto done;
    if (kv_compute(&o, &k, err)) {
        rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        goto done;
    }
    int64_t kv_id = kv_store(&o, &k, now_sec() - t0, store_err);
    const int N = (int)o.triggers, distinct = value_vocab_distinct(k.vv);
    if (o.json ? print_json(&k.run, k.res, k.n_layers, N, distinct, kv_id)
               : (print_table(&k.run, k.res, k.n_layers, k.m->cfg.n_inner, N, distinct, k.m->tok, kv_id), 0))
        rc = cli_error(PROBE_EXIT_RUNTIME, "out of memory");
    else
        rc = cli_stored(kv_id != 0, store_err, "the figures above were not stored");
done:
    kv_free(&k);
    return rc;
}
