/* concept_rank.c — see concept_rank.h. */
#include "concept_rank.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "concept.h"
#include "concept_score.h"
#include "concept_store.h"
#include "neuron_query.h"
#include "neuron_render.h"
#include "parallel.h"
#include "progress.h"
#include "store.h"
#include "util.h"

int concept_order_parse(const char *s, ConceptOrder *out) {
    if (!strcmp(s, "auroc")) *out = CONCEPT_BY_AUROC;
    else if (!strcmp(s, "d")) *out = CONCEPT_BY_D;
    else if (!strcmp(s, "precision")) *out = CONCEPT_BY_PRECISION;
    else return -1;
    return 0;
}

static const char *order_name(ConceptOrder by) {
    return by == CONCEPT_BY_D ? "cohen_d" : by == CONCEPT_BY_PRECISION ? "precision" : "auroc";
}

/* The probe file of --concept NAME (concept_rank.h says where it looks);
 * -1 with err listing the places tried. */
static int probe_resolve(const char *name, char *out, size_t cap, char *err) {
    size_t n = strlen(name);
    if (strchr(name, '/') || (n > 5 && !strcmp(name + n - 5, ".json"))) {
        snprintf(out, cap, "%s", name);
        return 0;
    }
    char file[256], tried[3][PATH_MAX + 64];
    int nt = 0;
    if (n > 200) return err_set(err, "no concept '%.40s...': the name is too long", name);
    snprintf(file, sizeof file, "probes/%s.json", name);
    const char *env = getenv("PROBE_PROBES");
    if (env && *env) snprintf(tried[nt++], sizeof tried[0], "%.3800s/%s.json", env, name);
    if (repo_path(file, tried[nt], sizeof tried[0]) == 0) nt++;
    snprintf(tried[nt++], sizeof tried[0], "%s", file);
    for (int i = 0; i < nt; i++)
        if (access(tried[i], R_OK) == 0) {
            snprintf(out, cap, "%.4000s", tried[i]);
            return 0;
        }
    return err_set(err, "no concept '%s': %s does not exist (the shipped concepts are in probes/; --probe FILE "
                   "reads any file)", name, tried[0]);
}

static double sort_key(const ConceptScore *s, ConceptOrder by) {
    double v = by == CONCEPT_BY_D ? s->cohen_d : by == CONCEPT_BY_PRECISION ? s->precision : s->auroc;
    return isnan(v) ? -INFINITY : v;
}

static ConceptOrder g_by; /* qsort has no context argument (single-threaded use) */

static int score_cmp(const void *pa, const void *pb) {
    const ConceptScore *a = pa, *b = pb;
    double x = sort_key(a, g_by), y = sort_key(b, g_by);
    if (x != y) return x > y ? -1 : 1;
    /* ties: the other scores, then layer and neuron */
    double ax = sort_key(a, CONCEPT_BY_D), bx = sort_key(b, CONCEPT_BY_D);
    if (ax != bx) return ax > bx ? -1 : 1;
    if (a->layer != b->layer) return a->layer - b->layer;
    return a->neuron - b->neuron;
}

void concept_scores_sort(ConceptScore *sc, size_t n, ConceptOrder by) {
    g_by = by;
    qsort(sc, n, sizeof *sc, score_cmp);
}

int concept_open(const char *concept, const char *probe, const char *words, const char *drop, Concept **out,
                 int *usage, char *err) {
    char path[PATH_MAX + 64];
    *usage = 0;
    if (words) {
        if (concept_from_words(words, out, err) == 0) return 0;
        char msg[PROBE_ERR_LEN];
        snprintf(msg, sizeof msg, "--words: %s", err);
        snprintf(err, PROBE_ERR_LEN, "%s", msg);
        *usage = 1;
        return -1;
    }
    if (concept && probe_resolve(concept, path, sizeof path, err)) {
        *usage = 1;
        return -1;
    }
    ConceptOpts co = {.drop_flags = drop};
    return concept_load(concept ? path : probe, &co, out, err);
}

typedef struct {
    Progress *bar;
} ProgressCtx;

static void on_progress(void *user, int docs, int n_docs, int64_t replayed) {
    ProgressCtx *p = user;
    if (!progress_due(p->bar)) return;
    char detail[96], a[32];
    snprintf(detail, sizeof detail, "%d/%d docs  %s windows replayed", docs, n_docs,
             progress_count(a, (long long)replayed));
    progress_draw(p->bar, n_docs > 0 ? (double)docs / n_docs : 0, detail);
}

typedef struct {
    const Concept *c;
    const NeuronRun *run;
    const ConceptTotals *t;
    int64_t concept_run; /* 0 when not stored */
    const char *layers_json;
} Header;

static int print_json(const Header *h, ConceptOrder by, const ConceptScore *sc, const NeuronRows *rows) {
    cJSON *root = cJSON_CreateObject(), *con, *arr;
    char ck[PROBE_CHECKSUM_HEX];
    checksum_hex(h->c->checksum, ck);
    if (!root || neuron_json_add_run(root, h->run) || !(con = cJSON_AddObjectToObject(root, "concept"))) goto done;
    if (json_add_text(con, "name", h->c->name) || !cJSON_AddStringToObject(con, "checksum", ck) ||
        !cJSON_AddNumberToObject(con, "words", (double)h->c->n_words) ||
        !cJSON_AddNumberToObject(con, "dropped_words", (double)h->c->n_dropped))
        goto done;
    if (h->c->path ? json_add_text(con, "path", h->c->path) != 0 : !cJSON_AddNullToObject(con, "path")) goto done;
    if (h->concept_run)
        cJSON_AddNumberToObject(root, "concept_run", (double)h->concept_run);
    else
        cJSON_AddNullToObject(root, "concept_run");
    cJSON_AddRawToObject(root, "layers", h->layers_json);
    cJSON_AddNumberToObject(root, "concept_tokens", (double)h->t->concept_tokens);
    cJSON_AddNumberToObject(root, "tokens_scored", (double)h->t->tokens);
    cJSON_AddNumberToObject(root, "windows", (double)h->t->windows);
    cJSON_AddNumberToObject(root, "windows_replayed", (double)h->t->windows_replayed);
    cJSON_AddNumberToObject(root, "seconds", h->t->seconds);
    cJSON_AddBoolToObject(root, "histograms", h->t->has_hist);
    cJSON_AddBoolToObject(root, "replay_mismatch", h->t->mismatch);
    cJSON_AddStringToObject(root, "by", order_name(by));
    if (!(arr = cJSON_AddArrayToObject(root, "neurons"))) goto done;
    for (int i = 0; i < rows->n; i++) {
        const ConceptScore *s = &sc[i];
        cJSON *o = cJSON_CreateObject();
        char name[32];
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            goto done;
        }
        snprintf(name, sizeof name, "%d:%d", s->layer, s->neuron);
        cJSON_AddNumberToObject(o, "rank", i + 1);
        cJSON_AddNumberToObject(o, "layer", s->layer);
        cJSON_AddNumberToObject(o, "neuron", s->neuron);
        cJSON_AddStringToObject(o, "name", name);
        json_add_real(o, "auroc", s->auroc);
        json_add_real(o, "auroc_error", s->auroc_error);
        json_add_real(o, "cohen_d", s->cohen_d);
        json_add_real(o, "mean_in", s->mean_in);
        json_add_real(o, "mean_out", s->mean_out);
        json_add_real(o, "sd_in", s->sd_in);
        json_add_real(o, "sd_out", s->sd_out);
        json_add_real(o, "precision", s->precision);
        cJSON_AddNumberToObject(o, "examples_in", s->examples_in);
        cJSON_AddNumberToObject(o, "n_examples", s->examples);
        if (neuron_json_add_examples(o, &rows->rows[i])) goto done;
    }
    return cli_print_json(root);
done:
    cJSON_Delete(root);
    return -1;
}

static void print_table(const Header *h, ConceptOrder by, const ConceptScore *sc, const NeuronRows *rows) {
    char a[32], b[32], ck[PROBE_CHECKSUM_HEX];
    checksum_hex(h->c->checksum, ck);
    printf("concept '%s': %zu words%s%s (checksum %s)\n", h->c->name, h->c->n_words, h->c->path ? " from " : "",
           h->c->path ? h->c->path : "", ck);
    printf("run %" PRId64 " (%s): %s tokens end a concept word of %s (%.2f%%); %" PRId64 " of %" PRId64
           " windows replayed in %.1f s\n",
           h->run->id, h->run->model_dir, progress_count(a, (long long)h->t->concept_tokens),
           progress_count(b, (long long)h->t->tokens), 100.0 * (double)h->t->concept_tokens / (double)h->t->tokens,
           h->t->windows_replayed, h->t->windows, h->t->seconds);
    if (!h->t->has_hist)
        printf("(no AUROC: run %" PRId64 " was recorded before activation histograms; record it again for AUROC)\n",
               h->run->id);
    printf("ranked by %s over layers %s%s\n\n", order_name(by), h->layers_json,
           h->concept_run ? "" : " (not stored)");
    printf("%4s  %-9s %15s %8s %9s %9s %11s\n", "rank", "neuron", "auroc", "d", "mean_in", "mean_out", "precision");
    for (int i = 0; i < rows->n; i++) {
        const ConceptScore *s = &sc[i];
        char name[32], au[32], pr[32];
        snprintf(name, sizeof name, "%d:%d", s->layer, s->neuron);
        if (isnan(s->auroc))
            snprintf(au, sizeof au, "-");
        else
            snprintf(au, sizeof au, "%.4f+-%.4f", s->auroc, s->auroc_error);
        snprintf(pr, sizeof pr, "%d/%d", s->examples_in, s->examples);
        printf("%4d  %-9s %15s %8.3f %9.4f %9.4f %11s\n", i + 1, name, au, s->cohen_d, s->mean_in, s->mean_out, pr);
        neuron_examples_print(stdout, &rows->rows[i]);
    }
}

int concept_rank_compute(Store *s, const NeuronRun *run, Model *m, const Concept *c, long layer, const char *drop,
                         int quiet, ConceptScore **out, size_t *n, ConceptTotals *t, ConceptKeep *keep,
                         int64_t *concept_run, char *layers_json, size_t cap, char *store_err, char *err) {
    int *layers = NULL, n_layers = 0;
    ConceptScore *sc = NULL;
    if (cli_run_layers(run, layer, &layers, &n_layers, layers_json, cap)) return err_set(err, "out of memory");
    size_t n_sc = (size_t)n_layers * (size_t)m->cfg.n_inner;
    if (!(sc = malloc(sizeof *sc * n_sc))) {
        free(layers);
        return err_set(err, "out of memory");
    }
    if (!quiet) cli_note_kernels(run); /* the positives are replayed and matched with the histograms */
    ProgressCtx pc = {progress_new(!quiet && isatty(2), 0)};
    int r = concept_score(s, run->id, m, c, layers, n_layers, sc, t, keep, on_progress, &pc, err);
    progress_end(pc.bar);
    free(layers);
    if (r) {
        free(sc);
        return -1;
    }
    ConceptRunRow head = {.run_id = run->id, .name = c->name, .probe_path = c->path, .dropped_flags = drop,
                          .probe_checksum = c->checksum, .words = (int64_t)c->n_words, .layers_json = layers_json,
                          .concept_tokens = t->concept_tokens, .tokens = t->tokens,
                          .windows_replayed = t->windows_replayed, .windows = t->windows, .seconds = t->seconds};
    if (concept_results_save(s, &head, sc, n_sc, concept_run, store_err)) *concept_run = 0;
    *out = sc;
    *n = n_sc;
    return 0;
}

/* The listed rows (sc[0..n_show)) whose AUROC bound exceeds --max-error get
 * their exact AUROC: one replay of the run for all of them (only those rows'
 * activations are kept), then the listed rows are sorted again and their
 * stored scores updated. Rows without an AUROC (a run recorded before the
 * histograms) keep none. */
static int exact_listed(Store *s, const NeuronRun *run, Model *m, const Concept *c, const ConceptRankOptions *o,
                        ConceptScore *sc, int n_show, const ConceptKeep *keep, int64_t *concept_run, char *store_err,
                        char *err) {
    ConceptScore *sub = malloc(sizeof *sub * (size_t)(n_show > 0 ? n_show : 1));
    if (!sub) return err_set(err, "out of memory");
    int n = 0;
    for (int i = 0; i < n_show; i++)
        if (!isnan(sc[i].auroc) && sc[i].auroc_error > o->max_error) sub[n++] = sc[i];
    if (n == 0) {
        free(sub);
        return 0;
    }
    ConceptTotals te;
    ProgressCtx pc = {progress_new(!o->quiet && isatty(2), 0)};
    int r = concept_score_exact(s, run->id, m, c, sub, n, keep, &te, on_progress, &pc, err);
    progress_end(pc.bar);
    if (r) {
        free(sub);
        return -1;
    }
    for (int i = 0; i < n_show; i++)
        for (int k = 0; k < n; k++)
            if (sc[i].layer == sub[k].layer && sc[i].neuron == sub[k].neuron) sc[i] = sub[k];
    if (!o->json) {
        if (o->max_error > 0)
            cli_error(0, "exact AUROC of the %d listed neurons whose bound exceeds %g: %" PRId64
                      " windows replayed in %.1f s", n, o->max_error, te.windows_replayed, te.seconds);
        else
            cli_error(0, "exact AUROC of the %d listed neurons: %" PRId64 " windows replayed in %.1f s", n,
                      te.windows_replayed, te.seconds);
    }
    if (*concept_run && concept_scores_set_auroc(s, *concept_run, sub, n, store_err)) *concept_run = 0;
    free(sub);
    concept_scores_sort(sc, (size_t)n_show, o->by);
    return 0;
}

int concept_rank(const ConceptRankOptions *o) {
    char err[PROBE_ERR_LEN], layers_json[8192];
    Concept *c = NULL;
    Store *s = NULL;
    Model *m = NULL;
    NeuronRun run = {0};
    NeuronRows rows = {0};
    ConceptKeep keep = {0}; /* the scored layer's activations, for exact_listed (concept_score.h) */
    ConceptScore *sc = NULL;
    int *lay = NULL, *neu = NULL;
    int rc = PROBE_EXIT_RUNTIME;

    int usage;
    if (concept_open(o->concept, o->probe, o->words, o->drop, &c, &usage, err))
        return usage ? cli_usage_error("%s", err) : cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (!(s = store_open(o->db, STORE_WRITE, err))) goto fail;
    if ((rc = cli_find_run(s, o->run, &run)) >= 0 || (rc = cli_run_recorded_layer(&run, o->layer)) >= 0 ||
        (rc = cli_run_complete(&run)) >= 0)
        goto done;
    /* the run's own model unless --model names one (checked by checksum) */
    const char *dir = o->model ? o->model : access(run.model_dir, R_OK) == 0 ? run.model_dir : model_dir_resolve(NULL);
    if (!(m = model_load(dir, err))) goto fail;
    char store_err[PROBE_ERR_LEN] = "";
    int64_t concept_run = 0;
    size_t n_sc;
    ConceptTotals t;
    if (concept_rank_compute(s, &run, m, c, o->layer, o->drop, o->quiet, &sc, &n_sc, &t, &keep, &concept_run,
                             layers_json, sizeof layers_json, store_err, err))
        goto fail;
    concept_scores_sort(sc, n_sc, o->by);
    int n_show = (size_t)o->limit < n_sc ? (int)o->limit : (int)n_sc;
    if (exact_listed(s, &run, m, c, o, sc, n_show, &keep, &concept_run, store_err, err)) goto fail;
    lay = malloc(sizeof *lay * (size_t)n_show);
    neu = malloc(sizeof *neu * (size_t)n_show);
    if (!lay || !neu) goto oom;
    for (int i = 0; i < n_show; i++) {
        lay[i] = sc[i].layer;
        neu[i] = sc[i].neuron;
    }
    if (neuron_query_list(s, &run, lay, neu, n_show, &rows, err)) goto fail;
    Header h = {c, &run, &t, concept_run, layers_json};
    if (o->json ? print_json(&h, o->by, sc, &rows) : (print_table(&h, o->by, sc, &rows), 0)) goto oom;
    fflush(stdout);
    if (t.mismatch)
        cli_error(0, "warning: the replayed activations differ from the recorded ones (another CPU, BLAS or build? "
                  "this replay used OpenBLAS's %s kernels; OPENBLAS_CORETYPE selects the recording's): auroc_error "
                  "may not bound the AUROC", parallel_blas_core());
    rc = cli_stored(concept_run != 0, store_err, "the ranking above was not stored");
    goto done;
oom:
    err_set(err, "out of memory");
fail:
    rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
done:
    free(lay);
    free(neu);
    free(sc);
    concept_keep_free(&keep);
    neuron_rows_free(&rows);
    neuron_run_free(&run);
    model_free(m);
    store_close(s);
    concept_free(c);
    return rc;
}
