/* report.c — `probe report --out DIR`: a static HTML report of a database.
 *
 *   probe report --db demo.db --out report/      # then open report/index.html
 *   probe report --run 2 --top 16 --examples 20 --out /tmp/r
 *
 * Every page is one self-contained file (inline CSS, SVG and a small inline
 * script; no other file, no network), so the folder works from file://
 * offline and can be copied or zipped as it is:
 *
 *   index.html           runs, the model and its FFN share, per-layer summary, links
 *   layer-L.html         every neuron of layer L: sortable, filterable, top tokens
 *   neuron-L-N.html      a neuron: statistics, histogram, top examples as token
 *                        heatmaps, value tokens, concept scores, kv, ablations
 *   concept-ID.html      a concept ranking and its best neurons' examples
 *   ablation-ID.html     an ablation: delta loss per condition, most affected tokens
 *
 * Neuron pages are written for the --top K neurons of each layer by max, by
 * mean and by fraction active, and the 10 best of each stored concept
 * ranking; every other neuron is a row of its layer's table. The heatmaps'
 * per-token activations come from replaying the windows that own the
 * examples' contexts (analysis/report_replay.h: exact, the recorded values
 * bit for bit), or, with --stored or when the run's model cannot be loaded,
 * from what the database stores (token_full, else each token's top-k);
 * every page says which. This file chooses the pages and gathers what they
 * show; report_pages.h writes them. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "concept_store.h"
#include "neuron_query.h"
#include "parallel.h"
#include "report_pages.h"
#include "report_query.h"
#include "report_replay.h"
#include "store.h"
#include "util.h"

static const char *usage_text =
    "usage: probe report --out DIR [options]\n"
    "\n"
    "Writes a static HTML report of a recorded run into DIR (created if missing):\n"
    "index.html (runs, the model and its FFN share, a per-layer summary), one page\n"
    "per layer (every neuron, sortable), neuron pages with token heatmaps of their\n"
    "top examples, activation histograms, value tokens and concept scores, and\n"
    "pages for stored concept rankings and ablations. Self-contained files: open\n"
    "DIR/index.html in a browser, no server or network needed.\n"
    "\n"
    "  --db FILE       database (default probe.db)\n"
    "  --run ID        recorded run (default: the latest complete run)\n"
    "  --out DIR       where to write the pages (required)\n"
    "  --top K         neuron pages per layer for each of max, mean, fraction active\n"
    "                  (default 8; the 10 best of each concept ranking get one too)\n"
    "  --examples N    top examples per neuron page (default 12)\n"
    "  --model DIR     the run's model, to replay the examples' windows (default: the\n"
    "                  directory it was recorded from)\n"
    "  --stored        colour the heatmaps from stored activations (token_full, else\n"
    "                  each token's top-k) instead of replaying windows\n"
    "  --quiet         no summary line\n"
    "  --help          this text\n";

enum { CTX_LEFT = 24, CTX_RIGHT = 8, CONCEPT_TOP = 10 };

static int parse_options(int argc, char **argv, ReportOptions *o) {
    *o = (ReportOptions){.db = "probe.db", .run = -1, .top = 8, .examples = 12};
    const CliOption opts[] = {CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_RUN(&o->run),
                              CLI_OPT_STRING("out", &o->out),
                              CLI_OPT_COUNT("top", &o->top, 0, 1000),
                              CLI_OPT_COUNT("examples", &o->examples, 1, 256),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_SET("stored", &o->stored),
                              CLI_OPT_SET("quiet", &o->quiet),
                              CLI_OPT_END};
    int rc = cli_parse(argc, argv, usage_text, opts, NULL);
    if (rc >= 0) return rc;
    if (!o->out || !*o->out) return cli_usage_error("where to? give --out DIR (the report's folder)");
    return cli_check_store_env();
}

/* ---- choosing the neuron pages and gathering their examples ----------------- */

static int page_add(ReportPages *r, int layer, int neuron, int *cap) {
    if (layer < 0 || layer >= r->L || neuron < 0 || neuron >= r->F || !neuron_run_has_layer(&r->run, layer)) return 0;
    if (r->page_of[layer * r->F + neuron] >= 0) return 0;
    if (r->n_pages == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        ReportNeuronPage *g = realloc(r->pages, sizeof *g * (size_t)nc);
        if (!g) return err_set(r->err, "out of memory");
        r->pages = g;
        *cap = nc;
    }
    r->page_of[layer * r->F + neuron] = r->n_pages;
    r->pages[r->n_pages++] = (ReportNeuronPage){.layer = layer, .neuron = neuron};
    return 0;
}

static int pages_choose(ReportPages *r) {
    int cap = 0;
    for (int i = 0; i < r->run.n_layers; i++)
        for (int by = 0; by < 3 && r->o.top > 0; by++) {
            NeuronRows rows = {0};
            if (neuron_query_top(r->s, &r->run, r->run.layers[i], (NeuronOrder)by, (int)r->o.top, &rows, r->err))
                return -1;
            for (int k = 0; k < rows.n; k++)
                if (page_add(r, rows.rows[k].layer, rows.rows[k].neuron, &cap)) {
                    neuron_rows_free(&rows);
                    return -1;
                }
            neuron_rows_free(&rows);
        }
    for (int c = 0; c < r->n_concepts; c++) {
        ReportConceptRow top[CONCEPT_TOP];
        int n = 0;
        if (report_concept_top(r->s, r->concepts[c].id, top, CONCEPT_TOP, &n, r->err)) return -1;
        for (int k = 0; k < n; k++)
            if (page_add(r, top[k].layer, top[k].neuron, &cap)) return -1;
    }
    return 0;
}

static int pages_examples(ReportPages *r) {
    int cap = (int)r->o.examples;
    NeuronExample *buf = calloc((size_t)cap, sizeof *buf);
    if (!buf) return err_set(r->err, "out of memory");
    for (int p = 0; p < r->n_pages; p++) {
        ReportNeuronPage *pg = &r->pages[p];
        int n = 0;
        if (neuron_query_examples(r->s, r->run.id, pg->layer, pg->neuron, buf, cap, &n, r->err)) goto fail;
        if (!(pg->ex = calloc((size_t)(n ? n : 1), sizeof *pg->ex))) {
            neuron_examples_free(buf, n);
            err_set(r->err, "out of memory");
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            ReportExample *e = &pg->ex[pg->n_ex++];
            e->ex = buf[i];
            e->mark = -1;
            int from = e->ex.pos - CTX_LEFT < 0 ? 0 : e->ex.pos - CTX_LEFT;
            if (report_context(r->s, r->run.id, e->ex.doc, from, e->ex.pos + CTX_RIGHT, &e->tok, &e->n_tok, r->err)) {
                neuron_examples_free(buf + i + 1, n - i - 1);
                goto fail;
            }
            for (int k = 0; k < e->n_tok; k++)
                if (e->tok[k].pos == e->ex.pos) e->mark = k;
        }
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

static void pages_free(ReportPages *r) {
    for (int p = 0; p < r->n_pages; p++) {
        for (int i = 0; i < r->pages[p].n_ex; i++) {
            neuron_examples_free(&r->pages[p].ex[i].ex, 1);
            report_tokens_free(r->pages[p].ex[i].tok, r->pages[p].ex[i].n_tok);
        }
        free(r->pages[p].ex);
    }
    free(r->pages);
}

/* ---- where the activations come from ----------------------------------------- */

static int activations_replay(ReportPages *r) {
    size_t n = 0, k = 0;
    for (int p = 0; p < r->n_pages; p++)
        for (int i = 0; i < r->pages[p].n_ex; i++) n += (size_t)r->pages[p].ex[i].n_tok;
    ReplayWant *w = malloc(sizeof *w * (n ? n : 1));
    if (!w) return err_set(r->err, "out of memory");
    for (int p = 0; p < r->n_pages; p++)
        for (int i = 0; i < r->pages[p].n_ex; i++)
            for (int t = 0; t < r->pages[p].ex[i].n_tok; t++) {
                const ReportToken *x = &r->pages[p].ex[i].tok[t];
                w[k++] = (ReplayWant){.doc = x->doc, .pos = x->pos, .layer = r->pages[p].layer,
                                      .neuron = r->pages[p].neuron};
            }
    if (report_replay(r->s, r->run.id, r->m, r->info.ctx, w, n, &r->rs, r->err)) {
        free(w);
        return -1;
    }
    k = 0;
    for (int p = 0; p < r->n_pages; p++)
        for (int i = 0; i < r->pages[p].n_ex; i++) {
            ReportExample *e = &r->pages[p].ex[i];
            for (int t = 0; t < e->n_tok; t++, k++) {
                e->tok[t].has_value = w[k].done;
                e->tok[t].value = w[k].value;
            }
            if (e->mark >= 0 && e->tok[e->mark].has_value) {
                double got = (float)e->tok[e->mark].value, want = (float)e->ex.value;
                r->checked++;
                r->equal += got == want;
                double rel = fabs(got - want) / (fabs(want) > 0 ? fabs(want) : 1);
                if (rel > r->worst_rel) r->worst_rel = rel;
            }
        }
    free(w);
    r->replayed = 1;
    snprintf(r->differ_why, sizeof r->differ_why,
             "the run was recorded with other BLAS kernels or on another CPU (this replay used OpenBLAS's %.40s "
             "kernels; OPENBLAS_CORETYPE selects the recording's)",
             parallel_blas_core());
    char differ[300] = "";
    if (r->equal < r->checked) /* the same binary, BLAS and CPU give the same bits; other kernels do not */
        snprintf(differ, sizeof differ,
                 " The others differ by at most %.1e of their value: %s.", r->worst_rel, r->differ_why);
    snprintf(r->source, sizeof r->source,
             "Token activations are %s: the %d context windows that own the examples' tokens were run again "
             "as <code>probe record</code> ran them (model %.300s); %d of %d example tokens equal their recorded "
             "value bit for bit.%s",
             r->equal < r->checked ? "recomputed" : "exact", r->rs.windows, r->m->dir, r->equal, r->checked,
             differ);
    return 0;
}

static int activations_stored(ReportPages *r, const char *why) {
    int known = 0, all = 0;
    for (int p = 0; p < r->n_pages; p++)
        for (int i = 0; i < r->pages[p].n_ex; i++) {
            ReportExample *e = &r->pages[p].ex[i];
            for (int t = 0; t < e->n_tok; t++) {
                double v;
                int got = report_stored_activation(r->s, e->tok[t].row, r->pages[p].layer, r->pages[p].neuron, &v,
                                                   r->err);
                if (got < 0) return -1;
                e->tok[t].has_value = got;
                e->tok[t].value = got ? v : NAN;
                known += got;
                all++;
            }
        }
    snprintf(r->source, sizeof r->source,
             "Token activations are stored values (%s): the full fp16 vector where the layer was recorded with "
             "--full, else the token's top-%d neurons; hatched tokens have no stored value for this neuron (it is "
             "not among their top-%d). %d of %d context tokens have a value.",
             why, r->rr->top_k, r->rr->top_k, known, all);
    return 0;
}

/* ---- the command ----------------------------------------------------------------- */

/* The run's model for the replay: 1 loaded, 0 not (why in `why`: the caller
 * falls back to stored activations), -1 when --model names a model that
 * cannot be used. */
static int model_for_replay(ReportPages *r, char *why, size_t cap) {
    const char *dir = r->o.model ? r->o.model : r->run.model_dir;
    char err[PROBE_ERR_LEN];
    r->m = model_load(dir, err);
    if (r->m && r->m->checksum != r->info.model_checksum) {
        snprintf(err, sizeof err, "model '%s' is not the model run %" PRId64 " recorded", dir, r->run.id);
        model_free(r->m);
        r->m = NULL;
    }
    if (r->m) return 1;
    if (r->o.model) return err_set(r->err, "%s", err);
    snprintf(why, cap, "%s", err);
    return 0;
}

int cmd_report(int argc, char **argv) {
    ReportPages r;
    memset(&r, 0, sizeof r);
    int rc = parse_options(argc, argv, &r.o);
    if (rc >= 0) return rc;
    double t0 = now_sec();
    rc = PROBE_EXIT_RUNTIME;
    if (!(r.s = store_open(r.o.db, STORE_READ, r.err))) goto fail;
    if ((rc = cli_find_run(r.s, r.o.run, &r.run)) >= 0) goto done;
    if (concept_run_info(r.s, r.run.id, &r.info, r.err) || report_runs(r.s, &r.runs, &r.n_runs, r.err)) goto fail;
    for (int i = 0; i < r.n_runs; i++)
        if (r.runs[i].id == r.run.id) r.rr = &r.runs[i];
    if (!r.rr) {
        err_set(r.err, "run %" PRId64 " vanished while reading", r.run.id);
        goto fail;
    }
    r.L = r.run.n_layer;
    r.F = r.info.n_inner;
    if (r.L <= 0 || r.F <= 0 || (int64_t)r.L * r.F > (1 << 26)) {
        err_set(r.err, "run %" PRId64 " has an implausible shape: %d layers of %d neurons", r.run.id, r.L, r.F);
        goto fail;
    }
    if (!(r.page_of = malloc(sizeof *r.page_of * (size_t)r.L * (size_t)r.F))) {
        err_set(r.err, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < (int64_t)r.L * r.F; i++) r.page_of[i] = -1;
    if (mkdir(r.o.out, 0777) && errno != EEXIST) {
        err_set(r.err, "cannot create '%s': %s", r.o.out, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (stat(r.o.out, &sb) || !S_ISDIR(sb.st_mode)) {
        err_set(r.err, "'%s' is not a directory", r.o.out);
        goto fail;
    }
    if (report_concepts(r.s, r.run.id, &r.concepts, &r.n_concepts, r.err) ||
        report_ablations(r.s, r.rr->model_checksum, &r.abl, &r.n_abl, r.err) || pages_choose(&r) ||
        pages_examples(&r))
        goto fail;
    char why[PROBE_ERR_LEN + 64] = "--stored";
    int have = r.o.stored ? 0 : model_for_replay(&r, why, sizeof why);
    if (have < 0) goto fail;
    if (!r.o.stored && !have)
        fprintf(stderr, "probe report: cannot replay the examples' windows (%s): the heatmaps use stored activations\n",
                why);
    if (have && !r.o.quiet) cli_note_kernels(&r.run);
    if (have ? activations_replay(&r) : activations_stored(&r, r.o.stored ? "--stored" : "the model was not loaded"))
        goto fail;
    if (report_page_index(&r)) goto fail;
    for (int i = 0; i < r.run.n_layers; i++)
        if (report_page_layer(&r, r.run.layers[i])) goto fail;
    for (int p = 0; p < r.n_pages; p++)
        if (report_page_neuron(&r, &r.pages[p])) goto fail;
    for (int c = 0; c < r.n_concepts; c++)
        if (report_page_concept(&r, &r.concepts[c])) goto fail;
    for (int a = 0; a < r.n_abl; a++)
        if (report_page_ablation(&r, &r.abl[a])) goto fail;
    if (!r.o.quiet) {
        printf("wrote %d pages (%.1f MB) to '%s' in %.1f s: %d layer pages, %d neuron pages, %d concept pages, %d "
               "ablation pages\n",
               r.files, r.bytes / 1e6, r.o.out, now_sec() - t0, r.run.n_layers, r.n_pages, r.n_concepts, r.n_abl);
        if (r.replayed)
            printf("heatmaps: replayed %d windows in %.1f s (exact: %d of %d example tokens equal their recorded "
                   "value%s%s)\n",
                   r.rs.windows, r.rs.seconds, r.equal, r.checked,
                   r.equal < r.checked ? "; the others differ in the last bits: " : "",
                   r.equal < r.checked ? r.differ_why : "");
        else
            printf("heatmaps: stored activations (%s)\n", r.o.stored ? "--stored" : "the model was not loaded");
        printf("open %s/index.html\n", r.o.out);
    }
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    rc = cli_error(PROBE_EXIT_RUNTIME, "%s", r.err);
done:
    pages_free(&r);
    report_concepts_free(r.concepts, r.n_concepts);
    report_ablations_free(r.abl, r.n_abl);
    report_runs_free(r.runs, r.n_runs);
    free(r.page_of);
    neuron_run_free(&r.run);
    model_free(r.m);
    store_close(r.s);
    return rc;
}
