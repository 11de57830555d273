/* merge.c — `probe merge`: the shards of a recording (`probe record --shard
 * I/N`, one database each) combined into one run, the one a single
 * recording of the whole corpus gives.
 *
 *   probe merge --db all.db shard1.db shard2.db shard3.db
 *
 * Why the result is that run: every document is recorded alone (its own
 * windows), so a token's activations do not depend on which shard recorded
 * it. Documents and tokens are written in corpus order with new row ids
 * (the order a single run assigns them); per-token top-k and full vectors
 * are copied; each neuron's count, min, max and fraction active combine
 * exactly, its histogram adds up, its top examples are the best N of the
 * shards' (every global top-N token is in its shard's top N; ties go to the
 * earlier token, as in a single run), and its mean and variance combine by
 * the parallel formula (Chan et al.), which agrees with a single run's sums
 * to double rounding (~1e-15 relative), not bit for bit. The whole merge is
 * one transaction: interrupted, it leaves OUT as it was. Concept rankings,
 * key-value figures and ablations are per run: run them again on the merged
 * run. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_hist.h"
#include "cli.h"
#include "commands.h"
#include "results.h"
#include "runs.h"
#include "run_docs.h"
#include "shards.h"
#include "store.h"
#include "util.h"

static const char *usage_text =
    "usage: probe merge --db OUT.db SHARD.db [SHARD.db ...]\n"
    "\n"
    "Combines the N shard runs of a recording (probe record CORPUS --shard I/N, one\n"
    "database per shard, e.g. one per cluster node) into one run in OUT.db: the run a\n"
    "single recording of the whole corpus gives. Documents and tokens in corpus order,\n"
    "per-token top-k and full vectors, and per neuron its count, min, max, fraction\n"
    "active, histogram and top examples exactly; its mean and variance by the parallel\n"
    "formula (equal to a single run's to ~1e-15 relative). Every shard 1..N must be\n"
    "given once, complete, with the same model, corpus and options. One transaction:\n"
    "an interrupted merge leaves OUT.db unchanged. Concept rankings, kv and ablations\n"
    "are per run: run them again on the merged run.\n"
    "\n"
    "  --db FILE     the merged database (created when missing)\n"
    "  --quiet       no progress lines\n"
    "  --help        this text\n";

/* (old token row, new token row) of one shard, in increasing old rows */
typedef struct {
    int64_t *old, *now;
    size_t n, cap;
} RowMap;

static int map_add(RowMap *m, int64_t old, int64_t now) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        int64_t *a = realloc(m->old, sizeof *a * cap), *b = a ? realloc(m->now, sizeof *b * cap) : NULL;
        if (a) m->old = a;
        if (!a || !b) return -1;
        m->now = b;
        m->cap = cap;
    }
    m->old[m->n] = old;
    m->now[m->n++] = now;
    return 0;
}

static int64_t map_get(const RowMap *m, int64_t old) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->old[mid] < old) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->old[lo] == old ? m->now[lo] : -1;
}

static int cmp_pair(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Sorts the map by old row (shards are read in document order, which is
 * their row order unless a run was resumed after another one wrote rows). */
static int map_sort(RowMap *m) {
    for (size_t i = 1; i < m->n; i++)
        if (m->old[i] < m->old[i - 1]) {
            int64_t *pairs = malloc(sizeof *pairs * 2 * m->n);
            if (!pairs) return -1;
            for (size_t k = 0; k < m->n; k++) {
                pairs[2 * k] = m->old[k];
                pairs[2 * k + 1] = m->now[k];
            }
            qsort(pairs, m->n, sizeof *pairs * 2, cmp_pair);
            for (size_t k = 0; k < m->n; k++) {
                m->old[k] = pairs[2 * k];
                m->now[k] = pairs[2 * k + 1];
            }
            free(pairs);
            return 0;
        }
    return 0;
}

typedef struct {
    Store *out;
    int64_t row;
    int full;
} BlobCopy;

static int copy_blob(void *user, int layer, const void *blob, size_t len, char *err) {
    BlobCopy *c = user;
    return c->full ? results_add_full(c->out, c->row, layer, blob, len, err)
                   : results_add_topk(c->out, c->row, layer, blob, len, err);
}

/* One example candidate of the merged top N. */
typedef struct {
    double value;
    int64_t row; /* merged token row */
} Cand;

static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->value != y->value) return x->value > y->value ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

typedef struct {
    int n;               /* shards */
    Store **in;
    ShardRun *run;       /* [n], sorted by shard index */
    RowMap *map;         /* [n] */
    RunDocs **docs;      /* [n] */
} Merge;

/* Checks that the shards form one recording. -1 with err naming the file. */
static int check_shards(Merge *g, char *err) {
    const ShardRun *a = &g->run[0];
    for (int i = 0; i < g->n; i++) {
        const ShardRun *r = &g->run[i];
        if (strcmp(r->status, "complete"))
            return err_set(err, "'%s': shard %d/%d is %s; finish it first (probe record ... --shard %d/%d --resume)",
                           g->in[i]->path, r->shard, r->shards, r->status, r->shard, r->shards);
        if (r->shards != a->shards)
            return err_set(err, "'%s' is shard %d/%d but '%s' is shard %d/%d: not the same split", g->in[i]->path,
                           r->shard, r->shards, g->in[0]->path, a->shard, a->shards);
        if (r->model_checksum != a->model_checksum)
            return err_set(err, "'%s' was recorded with another model than '%s' (model checksums differ)",
                           g->in[i]->path, g->in[0]->path);
        if (r->corpus_checksum != a->corpus_checksum)
            return err_set(err, "'%s' was recorded from another corpus than '%s' (corpus checksums differ)",
                           g->in[i]->path, g->in[0]->path);
        if (strcmp(r->options_core, a->options_core))
            return err_set(err, "'%s' was recorded with other options than '%s' (%s vs %s)", g->in[i]->path,
                           g->in[0]->path, r->options_core, a->options_core);
        if (i > 0 && r->shard == g->run[i - 1].shard)
            return err_set(err, "shard %d/%d is given twice: '%s' and '%s'", r->shard, r->shards, g->in[i - 1]->path,
                           g->in[i]->path);
    }
    for (int k = 1; k <= a->shards; k++) {
        int found = 0;
        for (int i = 0; i < g->n; i++) found |= g->run[i].shard == k;
        if (!found) return err_set(err, "shard %d/%d is missing (give all %d shard databases)", k, a->shards, a->shards);
    }
    return 0;
}

/* Documents and tokens in corpus order, with their per-token blobs. */
static int merge_docs(Merge *g, Store *out, int64_t run_id, int64_t *n_tokens, char *err) {
    RunDoc *cur = calloc((size_t)g->n, sizeof *cur);
    int *have = calloc((size_t)g->n, sizeof *have);
    int64_t row;
    int rc = -1;
    if (!cur || !have) {
        err_set(err, "out of memory");
        goto done;
    }
    if (results_next_token_row(out, &row, err)) goto done;
    for (int i = 0; i < g->n; i++)
        if ((have[i] = run_docs_next(g->docs[i], &cur[i], err)) < 0) goto done;
    *n_tokens = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < g->n; i++)
            if (have[i] == 1 && (best < 0 || cur[i].doc_index < cur[best].doc_index)) best = i;
        if (best < 0) break;
        const RunDoc *d = &cur[best];
        int64_t doc_id;
        DocumentRow dr = {.run_id = run_id, .doc_index = d->doc_index, .byte_offset = d->byte_offset,
                          .n_tokens = d->n_tokens, .text = d->text, .text_len = d->text_len, .bytes = d->bytes,
                          .n_bytes = d->n_bytes};
        if (results_add_document(out, &dr, &doc_id, err)) goto done;
        for (int t = 0; t < d->n; t++) {
            const RunDocToken *k = &d->tokens[t];
            int64_t shard_row = d->rows[t];
            TokenRow tr = {.row = row, .run_id = run_id, .doc_id = doc_id, .pos = k->pos, .token_id = d->ids[t],
                           .text = k->text, .text_len = k->text_len, .byte_start = k->byte_start,
                           .byte_end = d->byte_end[t], .char_start = k->char_start, .char_end = k->char_end};
            if (results_add_token(out, &tr, err)) goto done;
            if (map_add(&g->map[best], shard_row, row)) {
                err_set(err, "out of memory");
                goto done;
            }
            BlobCopy c = {out, row, 0};
            if (shard_token_blobs(g->in[best], shard_row, 0, copy_blob, &c, err)) goto done;
            c.full = 1;
            if (shard_token_blobs(g->in[best], shard_row, 1, copy_blob, &c, err)) goto done;
            row++;
            (*n_tokens)++;
        }
        if ((have[best] = run_docs_next(g->docs[best], &cur[best], err)) < 0) goto done;
    }
    for (int i = 0; i < g->n; i++)
        if (map_sort(&g->map[i])) {
            err_set(err, "out of memory");
            goto done;
        }
    rc = 0;
done:
    free(cur);
    free(have);
    return rc;
}

/* The recorded layers of a run: its layers JSON ("[0,1,5]"). */
static int parse_layers(const char *json, int *out, int max) {
    int n = 0;
    for (const char *p = json; *p && n < max; p++)
        if (*p >= '0' && *p <= '9') {
            out[n++] = (int)strtol(p, (char **)&p, 10);
            p--;
        }
    return n;
}

/* Per neuron: the combined statistics, top examples and histogram. */
static int merge_neurons(Merge *g, Store *out, int64_t run_id, char *err) {
    const ShardRun *a = &g->run[0];
    const int F = a->n_inner, N = a->n_examples, B = ACT_HIST_BINS;
    int layers[4096], n_layers = parse_layers(a->layers, layers, 4096), rc = -1;
    ShardLayer *sl = calloc((size_t)g->n, sizeof *sl);
    Cand *cand = malloc(sizeof *cand * (size_t)g->n * N);
    ExampleRow *ex = malloc(sizeof *ex * (size_t)N);
    uint32_t *hist = malloc(sizeof *hist * B);
    NeuronWriter *w = NULL;
    if (!sl || !cand || !ex || !hist) goto oom;
    for (int i = 0; i < g->n; i++)
        if (shard_layer_alloc(&sl[i], F, N, B)) goto oom;
    if (!(w = results_neurons_begin(out, run_id, N, err))) goto done;
    for (int li = 0; li < n_layers; li++) {
        int all_hist = 1;
        for (int i = 0; i < g->n; i++) {
            if (shard_layer_read(g->in[i], g->run[i].id, layers[li], F, N, B, &sl[i], err)) goto done;
            all_hist &= sl[i].has_hist;
        }
        for (int j = 0; j < F; j++) {
            /* count, mean, M2 by the parallel formula, in shard order */
            int64_t n = 0;
            double mean = 0, m2 = 0, lo = INFINITY, hi = -INFINITY, npos = 0;
            int nc = 0;
            for (int i = 0; i < g->n; i++) {
                const ShardLayer *s = &sl[i];
                int64_t nb = s->count[j];
                if (nb > 0) {
                    double mb = s->mean[j], m2b = s->var[j] * (double)nb;
                    if (n == 0) {
                        mean = mb;
                        m2 = m2b;
                    } else {
                        double delta = mb - mean, tot = (double)(n + nb);
                        mean += delta * (double)nb / tot;
                        m2 += m2b + delta * delta * (double)n * (double)nb / tot;
                    }
                    n += nb;
                    lo = s->min[j] < lo ? s->min[j] : lo;
                    hi = s->max[j] > hi ? s->max[j] : hi;
                    npos += round(s->frac[j] * (double)nb);
                }
                for (int e = 0; e < s->n_ex[j]; e++) {
                    int64_t now = map_get(&g->map[i], s->ex_row[(size_t)j * N + e]);
                    if (now < 0) {
                        err_set(err, "'%s': an example of neuron %d:%d is not one of the run's tokens",
                                g->in[i]->path, layers[li], j);
                        goto done;
                    }
                    cand[nc++] = (Cand){s->ex_value[(size_t)j * N + e], now};
                }
            }
            qsort(cand, (size_t)nc, sizeof *cand, cand_cmp);
            int m = nc < N ? nc : N;
            for (int e = 0; e < m; e++) ex[e] = (ExampleRow){cand[e].row, cand[e].value};
            if (all_hist) {
                memset(hist, 0, sizeof *hist * B);
                for (int i = 0; i < g->n; i++)
                    for (int b = 0; b < B; b++) hist[b] += sl[i].hist[(size_t)j * B + b];
            }
            double var = n > 0 ? m2 / (double)n : 0;
            NeuronStatsRow st = {n, mean, var > 0 ? var : 0, lo, hi, n > 0 ? npos / (double)n : 0};
            if (results_neurons_add(w, layers[li], j, &st, ex, m, all_hist ? hist : NULL, B, err)) goto done;
        }
    }
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory merging the neurons of %d shards", g->n);
done:
    results_neurons_end(w);
    for (int i = 0; sl && i < g->n; i++) shard_layer_free(&sl[i]);
    free(sl);
    free(cand);
    free(ex);
    free(hist);
    return rc;
}

static int run_cmp(const void *a, const void *b) {
    const ShardRun *x = a, *y = b;
    return x->shard - y->shard;
}

static void merge_free(Merge *g) {
    for (int i = 0; i < g->n; i++) {
        if (g->docs) run_docs_close(g->docs[i]);
        if (g->run) shard_run_free(&g->run[i]);
        if (g->map) {
            free(g->map[i].old);
            free(g->map[i].now);
        }
        if (g->in) store_close(g->in[i]);
    }
    free(g->in);
    free(g->run);
    free(g->map);
    free(g->docs);
}

/* Opens the shard databases and finds their runs, puts both in shard
 * order and checks that they form one recording. -1 to go on, else the
 * exit code after the error. */
static int merge_open(Merge *g, char **paths, const char *db) {
    char err[PROBE_ERR_LEN];
    g->in = calloc((size_t)g->n, sizeof *g->in);
    g->run = calloc((size_t)g->n, sizeof *g->run);
    g->map = calloc((size_t)g->n, sizeof *g->map);
    g->docs = calloc((size_t)g->n, sizeof *g->docs);
    if (!g->in || !g->run || !g->map || !g->docs) return cli_error(PROBE_EXIT_RUNTIME, "out of memory");
    for (int i = 0; i < g->n; i++) {
        if (!strcmp(paths[i], db)) return cli_usage_error("'%s' is both the output and a shard", db);
        if (!(g->in[i] = store_open(paths[i], STORE_READ, err)) || shard_run_find(g->in[i], 0, &g->run[i], err))
            return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    }
    for (int i = 0; i < g->n; i++)
        for (int k = i + 1; k < g->n; k++)
            if (run_cmp(&g->run[k], &g->run[i]) < 0) {
                ShardRun t = g->run[i];
                g->run[i] = g->run[k];
                g->run[k] = t;
                Store *s = g->in[i];
                g->in[i] = g->in[k];
                g->in[k] = s;
            }
    if (check_shards(g, err)) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    return -1;
}

/* The merged run's OpenBLAS kernels (runs.blas): the first shard's list,
 * then every other shard's names added once each, in shard order, as a
 * resume adds its own (runs_add_blas); unknown (NULL) when a shard's are,
 * which runs_add_blas keeps. */
static int merged_blas_add(const Merge *g, Store *out, int64_t run_id, char *err) {
    for (int i = 1; i < g->n; i++) {
        const char *p = g->run[i].blas;
        while (p && *p) {
            size_t len = strcspn(p, ",");
            char name[64];
            int added;
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            if (runs_add_blas(out, run_id, name, &added, err)) return -1;
            p += len + (p[len] == ',');
        }
    }
    return 0;
}

/* The merged run in out, in one transaction: on failure out is rolled
 * back to what it was. 0, or -1 with err. */
static int merge_write(Merge *g, Store *out, const char *db, int quiet, double t0, char *err) {
    const ShardRun *a = &g->run[0];
    RunKey key = {a->model_checksum, a->corpus_checksum, a->options_core};
    RunInfo found;
    int f = runs_find(out, &key, &found, err);
    if (f < 0) return -1;
    if (f == 1)
        return err_set(err, "'%s' already holds this recording (run %" PRId64 ", %s)", db, found.id,
                       run_status_name(found.status));
    int n_docs = 0;
    double seconds = 0;
    for (int i = 0; i < g->n; i++) {
        n_docs += g->run[i].n_docs;
        seconds += g->run[i].seconds;
        if (!(g->docs[i] = run_docs_open(g->in[i], g->run[i].id, RUN_DOCS_FULL, err))) return -1;
    }
    if (store_begin(out, err)) return -1;
    int known = 1;
    for (int i = 0; i < g->n; i++) known &= g->run[i].blas != NULL;
    RunSpec spec = {.key = key, .model_dir = a->model_dir, .model_config = a->model_config,
                    .corpus_path = a->corpus_path, .layers = a->layers, .full_layers = a->full_layers,
                    .n_layer = a->n_layer, .n_inner = a->n_inner, .ctx = a->ctx, .top_k = a->top_k,
                    .n_examples = a->n_examples, .bos = a->bos, .n_docs = n_docs, .corpus_bytes = a->corpus_bytes,
                    .blas = known ? a->blas : NULL};
    int64_t run_id, n_tokens = 0;
    if (runs_create(out, &spec, (long long)getpid(), &run_id, err) || merged_blas_add(g, out, run_id, err))
        goto rollback;
    if (!quiet) cli_error(0, "merging %d shards into run %" PRId64 " of '%s': documents and tokens", g->n, run_id, db);
    if (merge_docs(g, out, run_id, &n_tokens, err)) goto rollback;
    if (!quiet) cli_error(0, "%" PRId64 " tokens; neurons", n_tokens);
    if (merge_neurons(g, out, run_id, err) || results_summarize(out, run_id, err)) goto rollback;
    RunProgress p = {RUN_COMPLETE, n_docs, n_tokens, seconds};
    if (runs_progress(out, run_id, &p, err) || store_commit(out, err)) goto rollback;
    cli_error(0, "run %" PRId64 " complete: %d shards, %d documents, %" PRId64 " tokens merged in %.1f s -> '%s'",
              run_id, g->n, n_docs, n_tokens, now_sec() - t0, db);
    return 0;
rollback:
    store_rollback(out);
    return -1;
}

int cmd_merge(int argc, char **argv) {
    const char *db = NULL;
    int quiet = 0;
    const CliOption opts[] = {CLI_OPT_STRING("db", &db), CLI_OPT_SET("quiet", &quiet), CLI_OPT_END};
    CliArgs shards;
    int rc = cli_parse(argc, argv, usage_text, opts, &shards);
    if (rc >= 0) return rc;
    if (!db) return cli_usage_error("give the merged database with --db OUT.db");
    if (shards.n == 0) return cli_usage_error("give the shard databases to merge");
    if ((rc = cli_check_store_env()) >= 0) return rc;
    char err[PROBE_ERR_LEN];
    Merge g = {.n = shards.n};
    Store *out = NULL;
    double t0 = now_sec();
    if ((rc = merge_open(&g, shards.arg, db)) < 0) {
        if (!(out = store_open(db, STORE_WRITE, err)) || merge_write(&g, out, db, quiet, t0, err))
            rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        else
            rc = PROBE_EXIT_OK;
    }
    merge_free(&g);
    store_close(out);
    return rc;
}
