/* ablate_concept.c — `probe ablate --concept NAME --top K` (or --probe FILE,
 * --words LIST): the causal check of a concept ranking. Ranks the recorded
 * run's neurons for the concept (stored like top-neurons --concept),
 * ablates the top K and, as controls, K random neurons of the same layers
 * per seed, then splits each condition's delta loss by where the predicted
 * token stands to the concept (analysis/concept_ablate.h). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablate_cmd.h"
#include "cli.h"
#include "concept_ablate.h"
#include "concept_rank.h"
#include "util.h"

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
    if (concept_rank_compute(x->store, &x->run, x->m, x->c, o->layer, o->drop, o->quiet, &x->sc, &x->n_sc, &t, NULL,
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
    if (!(x->lists[0] = ablate_neuron_list(tl, tn, k))) goto oom;
    for (int s = 1; s < x->n_sets; s++) {
        if (concept_random_neurons(tl, tn, k, F, (uint64_t)s, rn)) {
            err_set(err, "too few neurons in the ranked layers for %d random ones", k);
            goto done;
        }
        if (!(x->lists[s] = ablate_neuron_list(tl, rn, k))) goto oom;
    }
    if (o->mean_mode) {
        if (!(need = calloc((size_t)L, 1))) goto oom;
        for (int i = 0; i < k; i++) need[tl[i]] = 1;
        int64_t stats_run = 0;
        if (!(means = ablate_means_load(x->store, x->m, need, o->stats_run, &stats_run, err))) goto done;
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
    if (ablate_measure(x->m, x->store, o, x->ctx, &x->cs, &x->rep, err)) return -1;
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
int ablate_concept_check(AblateOptions *o) {
    char err[PROBE_ERR_LEN];
    Check x = {.k = (int)o->top, .n_sets = 1 + (int)o->seeds};
    int rc;
    if ((rc = check_open(o, &x)) >= 0 || (rc = check_rank(o, &x)) >= 0) goto done;
    if (check_sets(o, &x, err) || check_measure(o, &x, err)) {
        rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        goto done;
    }
    const int L = x.m->cfg.n_layer;
    int stored = ablate_store_results(x.store, &x.rep.rec, &x.cs, x.m->tok, L, x.rows, x.n_sets, NULL, &x.rep.ablation_id,
                               x.store_err) == 0;
    if (o->json) {
        if (ablate_print_json(&x.rep, &x.cs, L, "concept", concept_json(x.c, x.concept_run, x.k, x.sp, x.rows, x.n_sets))) {
            rc = cli_error(PROBE_EXIT_RUNTIME, "out of memory");
            goto done;
        }
    } else {
        ablate_print_table(&x.rep, &x.cs);
        print_concept(x.c, x.concept_run, x.k, x.sp, x.n_sets);
    }
    rc = cli_stored(stored, x.store_err, "the figures above were not stored");
done:
    check_free(&x);
    return rc;
}
