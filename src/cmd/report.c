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
 * every page says which. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "act_hist.h"
#include "cli.h"
#include "commands.h"
#include "concept.h"
#include "concept_store.h"
#include "kv_store.h"
#include "neuron_card.h"
#include "neuron_query.h"
#include "report_html.h"
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

enum { CTX_LEFT = 24, CTX_RIGHT = 8, CONCEPT_TOP = 10, CONCEPT_LIST = 25, CONCEPT_SHOW = 4, CONCEPT_EX = 8, ABL_TOP = 6 };

typedef struct {
    const char *db, *out, *model;
    long run, top, examples;
    int stored, quiet;
} ReportOptions;

typedef struct {
    NeuronExample ex;
    ReportToken *tok; /* its context, tok[mark] the example's own token */
    int n_tok, mark;
} Example;

typedef struct {
    int layer, neuron;
    Example *ex;
    int n_ex;
} Page;

typedef struct {
    ReportOptions o;
    Store *s;
    NeuronRun run;
    ConceptRunInfo info;
    ReportRun *runs;
    int n_runs;
    const ReportRun *rr;
    ReportConcept *concepts;
    int n_concepts;
    ReportAblation *abl;
    int n_abl;
    Page *pages;
    int n_pages, F, L;
    int *page_of; /* [L x F] index into pages, -1 */
    Model *m;
    int replayed, checked, equal; /* examples whose replayed own value was compared / equal */
    ReplayStats rs;
    char source[600]; /* where the heatmaps' activations come from, as a sentence */
    int64_t bytes;
    int files;
    char err[PROBE_ERR_LEN];
} Report;

static int parse_options(int argc, char **argv, ReportOptions *o) {
    enum { O_DB = 1, O_RUN, O_OUT, O_TOP, O_EXAMPLES, O_MODEL, O_STORED, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},       {"run", required_argument, 0, O_RUN},
        {"out", required_argument, 0, O_OUT},     {"top", required_argument, 0, O_TOP},
        {"examples", required_argument, 0, O_EXAMPLES}, {"model", required_argument, 0, O_MODEL},
        {"stored", no_argument, 0, O_STORED},     {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    *o = (ReportOptions){.db = "probe.db", .run = -1, .top = 8, .examples = 12};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_RUN:
            if (cli_parse_run(optarg, &o->run)) return PROBE_EXIT_USAGE;
            break;
        case O_OUT: o->out = optarg; break;
        case O_TOP:
            if (cli_parse_count("--top", optarg, 0, 1000, &o->top)) return PROBE_EXIT_USAGE;
            break;
        case O_EXAMPLES:
            if (cli_parse_count("--examples", optarg, 1, 256, &o->examples)) return PROBE_EXIT_USAGE;
            break;
        case O_MODEL: o->model = optarg; break;
        case O_STORED: o->stored = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind < argc) return cli_extra_argument(argv[optind]);
    if (!o->out || !*o->out) return cli_usage_error("where to? give --out DIR (the report's folder)");
    char err[PROBE_ERR_LEN];
    if (store_env_check(err)) return cli_usage_error("%s", err);
    return -1;
}

/* ---- files ------------------------------------------------------------------ */

static FILE *page_open(Report *r, const char *name, const char *title) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->o.out, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        err_set(r->err, "cannot write '%s': %s", path, strerror(errno));
        return NULL;
    }
    html_begin(f, title);
    return f;
}

static int page_close(Report *r, FILE *f, const char *name) {
    html_end(f);
    long size = ftell(f);
    int bad = ferror(f);
    if (fclose(f) || bad) return err_set(r->err, "cannot write '%s/%s': %s", r->o.out, name, strerror(errno));
    r->bytes += size > 0 ? size : 0;
    r->files++;
    return 0;
}

static void tok_span(FILE *f, const char *text) {
    fputs("<span class=\"tk\">", f);
    html_text(f, text);
    fputs("</span>", f);
}

static void neuron_link(Report *r, FILE *f, int layer, int neuron) {
    if (layer >= 0 && layer < r->L && neuron >= 0 && neuron < r->F && r->page_of[layer * r->F + neuron] >= 0)
        fprintf(f, "<a href=\"neuron-%d-%d.html\">%d:%d</a>", layer, neuron, layer, neuron);
    else
        fprintf(f, "%d:%d", layer, neuron);
}

/* One context as coloured token spans. cmark[i] (may be NULL): token i is a
 * concept token. Values scaled on [lo, hi]. */
static void context_spans(FILE *f, const ReportToken *t, int n, int mark, const uint8_t *cmark, double lo, double hi) {
    fputs("<td class=\"ctx\">", f);
    for (int i = 0; i < n; i++) {
        char c[8];
        const char *cls = i == mark ? (cmark && cmark[i] ? "x cm" : "x") : (cmark && cmark[i] ? "cm" : NULL);
        if (t[i].has_value)
            fprintf(f, "<span%s%s%s style=\"background:%s\" data-v=\"%.9g\" title=\"%.4f\">", cls ? " class=\"" : "",
                    cls ? cls : "", cls ? "\"" : "", html_heat(t[i].value, lo, hi, c), t[i].value, t[i].value);
        else
            fprintf(f, "<span class=\"u%s%s\" title=\"not stored\">", cls ? " " : "", cls ? cls : "");
        /* a token whose character the one before it shows: a thin space keeps its colour visible */
        html_text(f, t[i].token && *t[i].token ? t[i].token : "\xe2\x80\x89");
        fputs("</span>", f);
    }
    fputs("</td>", f);
}

/* ---- choosing the neuron pages and gathering their examples ----------------- */

static int page_add(Report *r, int layer, int neuron, int *cap) {
    if (layer < 0 || layer >= r->L || neuron < 0 || neuron >= r->F || !neuron_run_has_layer(&r->run, layer)) return 0;
    if (r->page_of[layer * r->F + neuron] >= 0) return 0;
    if (r->n_pages == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        Page *g = realloc(r->pages, sizeof *g * (size_t)nc);
        if (!g) return err_set(r->err, "out of memory");
        r->pages = g;
        *cap = nc;
    }
    r->page_of[layer * r->F + neuron] = r->n_pages;
    r->pages[r->n_pages++] = (Page){.layer = layer, .neuron = neuron};
    return 0;
}

static int pages_choose(Report *r) {
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

static int pages_examples(Report *r) {
    int cap = (int)r->o.examples;
    NeuronExample *buf = calloc((size_t)cap, sizeof *buf);
    if (!buf) return err_set(r->err, "out of memory");
    for (int p = 0; p < r->n_pages; p++) {
        Page *pg = &r->pages[p];
        int n = 0;
        if (neuron_query_examples(r->s, r->run.id, pg->layer, pg->neuron, buf, cap, &n, r->err)) goto fail;
        if (!(pg->ex = calloc((size_t)(n ? n : 1), sizeof *pg->ex))) {
            neuron_examples_free(buf, n);
            err_set(r->err, "out of memory");
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            Example *e = &pg->ex[pg->n_ex++];
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

static void pages_free(Report *r) {
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

static int activations_replay(Report *r) {
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
            Example *e = &r->pages[p].ex[i];
            for (int t = 0; t < e->n_tok; t++, k++) {
                e->tok[t].has_value = w[k].done;
                e->tok[t].value = w[k].value;
            }
            if (e->mark >= 0 && e->tok[e->mark].has_value) {
                r->checked++;
                r->equal += (float)e->tok[e->mark].value == (float)e->ex.value;
            }
        }
    free(w);
    r->replayed = 1;
    snprintf(r->source, sizeof r->source,
             "Token activations are exact: the %d context windows that own the examples' tokens were run again "
             "as <code>probe record</code> ran them (model %.300s); %d of %d example tokens equal their recorded "
             "value bit for bit.",
             r->rs.windows, r->m->dir, r->equal, r->checked);
    return 0;
}

static int activations_stored(Report *r, const char *why) {
    int known = 0, all = 0;
    for (int p = 0; p < r->n_pages; p++)
        for (int i = 0; i < r->pages[p].n_ex; i++) {
            Example *e = &r->pages[p].ex[i];
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

/* ---- index.html ---------------------------------------------------------------- */

static void cfg_from_json(const char *text, ModelConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *j = cJSON_Parse(text);
    const char *keys[] = {"n_layer", "n_embd", "n_head", "n_inner", "n_positions", "vocab_size"};
    int *dst[] = {&cfg->n_layer, &cfg->n_embd, &cfg->n_head, &cfg->n_inner, &cfg->n_positions, &cfg->vocab_size};
    for (int i = 0; i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        *dst[i] = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (int)v->valuedouble : 0;
    }
    cJSON_Delete(j);
}

static void thousands(FILE *f, int64_t v) {
    char d[32], o[48];
    int n = snprintf(d, sizeof d, "%" PRId64, v < 0 ? -v : v), k = 0;
    if (v < 0) o[k++] = '-';
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) o[k++] = ',';
        o[k++] = d[i];
    }
    o[k] = '\0';
    fputs(o, f);
}

/* The latest zero-mode layer sweep of the run's model: its conditions' delta
 * loss per layer into dl[L] (NAN where none); 1 when there is one. */
static int sweep_by_layer(Report *r, double *dl, int64_t *id) {
    for (int l = 0; l < r->L; l++) dl[l] = NAN;
    for (int a = r->n_abl - 1; a >= 0; a--) {
        if (strcmp(r->abl[a].kind, "sweep-layers") || strcmp(r->abl[a].mode, "zero")) continue;
        ReportCondition *c;
        int n;
        if (report_conditions(r->s, r->abl[a].id, &c, &n, r->err)) return -1;
        for (int i = 0; i < n; i++)
            if (c[i].layer >= 0 && c[i].layer < r->L) dl[c[i].layer] = c[i].delta_loss;
        report_conditions_free(c, n);
        *id = r->abl[a].id;
        return 1;
    }
    return 0;
}

static int write_index(Report *r) {
    FILE *f = page_open(r, "index.html", "probe report");
    if (!f) return -1;
    const ReportRun *rr = r->rr;
    fputs("<h1>probe report: ", f);
    html_text(f, r->o.db);
    fprintf(f, "</h1>\n<p class=\"note\">Run %" PRId64 " of this database: ", rr->id);
    html_text(f, rr->model_dir);
    fputs(" on ", f);
    html_text(f, rr->corpus_path);
    fputs(". The recorded activation is the FFN post-activation (after GELU, before c_proj), TransformerLens "
          "<code>blocks.L.mlp.hook_post</code>.</p>\n<h2>Runs</h2>\n<table><thead><tr><th>run</th><th class=\"l\">"
          "status</th><th class=\"l\">model</th><th class=\"l\">corpus</th><th>documents</th><th>tokens</th>"
          "<th class=\"l\">layers</th><th class=\"l\">started</th><th>seconds</th></tr></thead><tbody>\n",
          f);
    for (int i = 0; i < r->n_runs; i++) {
        const ReportRun *x = &r->runs[i];
        fprintf(f, "<tr%s><td>%s%" PRId64 "%s</td><td class=\"l\">", x == rr ? " id=\"this-run\"" : "",
                x == rr ? "<b>" : "", x->id, x == rr ? "</b>" : "");
        html_text(f, x->status);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->model_dir);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->corpus_path);
        fprintf(f, "</td><td>%" PRId64 "</td><td class=\"n-tokens\">", x->n_docs);
        thousands(f, x->n_tokens);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->layers);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->started_at);
        fprintf(f, "</td><td>%.1f</td></tr>\n", x->seconds);
    }
    fputs("</tbody></table>\n", f);
    /* the model */
    ModelConfig cfg;
    cfg_from_json(rr->model_config, &cfg);
    ParamCounts pc = model_param_counts(&cfg, r->m ? r->m->tied : 1);
    int64_t non_emb = pc.attention + pc.ffn + pc.layer_norms;
    fprintf(f, "<h2>Model</h2>\n<div class=\"cards\"><div class=\"card\"><table><tbody>"
               "<tr><th class=\"l\">layers</th><td>%d</td></tr><tr><th class=\"l\">n_embd</th><td>%d</td></tr>"
               "<tr><th class=\"l\">heads</th><td>%d</td></tr><tr><th class=\"l\">FFN neurons per layer</th>"
               "<td>%d</td></tr><tr><th class=\"l\">context</th><td>%d</td></tr><tr><th class=\"l\">vocabulary</th>"
               "<td>%d</td></tr><tr><th class=\"l\">checksum</th><td>",
            cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_inner, cfg.n_positions, cfg.vocab_size);
    html_text(f, rr->model_checksum);
    fputs("</td></tr></tbody></table></div>\n<div class=\"card\"><table><thead><tr><th class=\"l\">parameters</th>"
          "<th>count</th><th>share</th></tr></thead><tbody>\n",
          f);
    const char *names[] = {"embeddings (wte + wpe)", "attention", "FFN", "layer norms", "lm_head (untied)"};
    int64_t counts[] = {pc.embeddings, pc.attention, pc.ffn, pc.layer_norms, pc.lm_head};
    for (int i = 0; i < 5; i++) {
        if (i == 4 && !counts[i]) continue;
        fprintf(f, "<tr%s><td class=\"l\">%s</td><td>", i == 2 ? " id=\"ffn-row\"" : "", names[i]);
        thousands(f, counts[i]);
        fprintf(f, "</td><td>%.2f%%</td></tr>\n", pc.total ? 100.0 * counts[i] / pc.total : 0);
    }
    fputs("<tr><th class=\"l\">total</th><th>", f);
    thousands(f, pc.total);
    fprintf(f, "</th><th></th></tr></tbody></table><p>FFN share: <b id=\"ffn-share\">%.2f%%</b> of all parameters, "
               "<b id=\"ffn-share-non-emb\">%.2f%%</b> of non-embedding parameters.%s</p></div></div>\n",
            pc.total ? 100.0 * pc.ffn / pc.total : 0, non_emb ? 100.0 * pc.ffn / non_emb : 0,
            r->m ? "" : " (lm_head counted as tied to wte, as in GPT-2: the model was not loaded)");
    /* layers */
    ReportLayer *lay = calloc((size_t)r->L, sizeof *lay);
    double *dl = calloc((size_t)r->L, sizeof *dl), *frac = calloc((size_t)r->L, sizeof *frac),
           *zero = calloc((size_t)r->L, sizeof *zero);
    char(*labels)[24] = calloc((size_t)r->L, 24);
    const char **lp = calloc((size_t)r->L, sizeof *lp);
    int64_t sweep_id = 0;
    int has_sweep = 0, rc = -1;
    if (!lay || !dl || !frac || !zero || !labels || !lp) {
        err_set(r->err, "out of memory");
        goto done;
    }
    if (report_layers(r->s, rr->id, lay, r->L, r->err) || (has_sweep = sweep_by_layer(r, dl, &sweep_id)) < 0)
        goto done;
    fputs("<h2 id=\"layers\">Layers</h2>\n<p class=\"note\">Activity over every recorded token: the average "
          "neuron's fraction of tokens with activation &gt; 0, the median neuron's, and sparsity = 1 &minus; the "
          "average. Never positive: neurons with no activation above 0 on this corpus.",
          f);
    if (has_sweep)
        fprintf(f, " &Delta;loss: the loss increase when the layer's FFN is removed (<a href=\"ablation-%" PRId64
                   ".html\">ablation %" PRId64 "</a>).",
                sweep_id, sweep_id);
    fputs("</p>\n<table class=\"sortable\" id=\"layer-table\"><thead><tr><th data-key=\"layer\">layer</th>"
          "<th>neurons</th><th>mean activation</th><th data-key=\"active\">avg active</th><th>median active</th>"
          "<th>sparsity</th><th>never positive</th><th>max activation</th>",
          f);
    if (has_sweep) fputs("<th>&Delta;loss removed</th>", f);
    fputs("<th>neuron pages</th></tr></thead><tbody>\n", f);
    int n_bars = 0;
    for (int l = 0; l < r->L; l++) {
        if (!lay[l].neurons) continue;
        int pages = 0;
        for (int j = 0; j < r->F; j++) pages += r->page_of[l * r->F + j] >= 0;
        fprintf(f, "<tr><td data-v=\"%d\"><a href=\"layer-%d.html\">layer %d</a></td><td>%d</td><td>%.4f</td>"
                   "<td>%.2f%%</td><td>%.2f%%</td><td>%.2f%%</td><td>%d</td><td>%.3f</td>",
                l, l, l, lay[l].neurons, lay[l].avg_mean, 100 * lay[l].avg_frac_pos, 100 * lay[l].median_frac_pos,
                100 * (1 - lay[l].avg_frac_pos), lay[l].never_positive, lay[l].max_max);
        if (has_sweep) {
            fputs("<td>", f);
            html_num(f, dl[l], 4);
            fputs("</td>", f);
        }
        fprintf(f, "<td>%d</td></tr>\n", pages);
        snprintf(labels[n_bars], 24, "layer %d", l);
        lp[n_bars] = labels[n_bars];
        frac[n_bars++] = 100 * lay[l].avg_frac_pos;
    }
    fputs("</tbody></table>\n<p class=\"note\">Average fraction of tokens active, per layer:</p>\n", f);
    html_bars(f, lp, frac, zero, n_bars, "avg % of tokens active");
    /* concepts and ablations */
    fputs("<h2 id=\"concepts\">Concept rankings</h2>\n", f);
    if (!r->n_concepts)
        fputs("<p class=\"note\">None stored for this run: <code>probe top-neurons --concept NAME</code> ranks the "
              "neurons for a concept and stores the ranking.</p>\n",
              f);
    else
        fputs("<ul>\n", f);
    for (int c = 0; c < r->n_concepts; c++) {
        fprintf(f, "<li><a href=\"concept-%" PRId64 ".html\">", r->concepts[c].id);
        html_text(f, r->concepts[c].name);
        fprintf(f, "</a>: %" PRId64 " concept tokens of %" PRId64 ", layers ", r->concepts[c].concept_tokens,
                r->concepts[c].tokens);
        html_text(f, r->concepts[c].layers);
        fputs("</li>\n", f);
    }
    if (r->n_concepts) fputs("</ul>\n", f);
    fputs("<h2 id=\"ablations\">Ablations</h2>\n", f);
    if (!r->n_abl)
        fputs("<p class=\"note\">None stored for this model: <code>probe ablate --run ID --sweep layers</code> "
              "measures what each layer's FFN is worth.</p>\n",
              f);
    else
        fputs("<ul>\n", f);
    for (int a = 0; a < r->n_abl; a++) {
        const ReportAblation *x = &r->abl[a];
        fprintf(f, "<li><a href=\"ablation-%" PRId64 ".html\">ablation %" PRId64 "</a>: ", x->id, x->id);
        html_text(f, x->kind);
        fputs(x->spec ? " " : "", f);
        html_text(f, x->spec);
        fputs(", mode ", f);
        html_text(f, x->mode);
        fputs(", on ", f);
        html_text(f, x->source);
        fprintf(f, " (%" PRId64 " tokens)</li>\n", x->tokens);
    }
    if (r->n_abl) fputs("</ul>\n", f);
    fprintf(f, "<h2>Token heatmaps</h2>\n<p class=\"note\" id=\"source\">%s</p>\n", r->source);
    rc = 0;
done:
    free(lay), free(dl), free(frac), free(zero), free(labels), free(lp);
    if (rc) {
        fclose(f);
        return -1;
    }
    return page_close(r, f, "index.html");
}

/* ---- layer-L.html ------------------------------------------------------------- */

static int write_layer(Report *r, int layer) {
    char name[64], title[64];
    snprintf(name, sizeof name, "layer-%d.html", layer);
    snprintf(title, sizeof title, "layer %d: neurons", layer);
    ReportNeuron *nr = calloc((size_t)r->F, sizeof *nr);
    int *order = malloc(sizeof *order * (size_t)r->F), nc = 0, rc = -1;
    double **auroc = calloc((size_t)(r->n_concepts ? r->n_concepts : 1), sizeof *auroc);
    int *cidx = calloc((size_t)(r->n_concepts ? r->n_concepts : 1), sizeof *cidx);
    FILE *f = NULL;
    if (!nr || !order || !auroc || !cidx) {
        err_set(r->err, "out of memory");
        goto done;
    }
    if (report_layer_neurons(r->s, r->run.id, layer, nr, r->F, r->err)) goto done;
    for (int c = 0; c < r->n_concepts; c++) {
        double *a = malloc(sizeof *a * (size_t)r->F);
        if (!a) {
            err_set(r->err, "out of memory");
            goto done;
        }
        auroc[nc] = a;
        if (report_concept_layer(r->s, r->concepts[c].id, layer, a, r->F, r->err)) goto done;
        int any = 0;
        for (int j = 0; j < r->F && !any; j++) any = !isnan(a[j]);
        if (any) cidx[nc++] = c;
        else free(a), auroc[nc] = NULL;
    }
    /* rows by max, descending (ties by neuron) */
    int n = 0;
    for (int j = 0; j < r->F; j++)
        if (nr[j].present) order[n++] = j;
    for (int i = 1; i < n; i++) { /* insertion sort keeps it simple; F is a few thousand */
        int x = order[i], k = i;
        while (k > 0 && nr[order[k - 1]].max < nr[x].max) order[k] = order[k - 1], k--;
        order[k] = x;
    }
    if (!(f = page_open(r, name, title))) goto done;
    fprintf(f, "<h1>Layer %d <span class=\"note\">blocks.%d.mlp.hook_post</span></h1>\n<p class=\"note\">%d neurons "
               "of run %" PRId64 ". Click a column head to sort, type to filter (a neuron number or a token). Linked "
               "neurons have a page: the top %ld of the layer by max, by mean and by fraction active, and the best "
               "of each concept ranking. Top tokens: the most frequent tokens among a neuron's 16 best examples, "
               "with how many of them they are.</p>\n<input id=\"filter\" placeholder=\"filter: neuron or token\">\n"
               "<table class=\"sortable\" id=\"neurons\"><thead><tr><th data-key=\"neuron\">neuron</th>"
               "<th data-key=\"max\" data-sorted=\"desc\">max</th><th data-key=\"mean\">mean</th>"
               "<th data-key=\"std\">std</th><th data-key=\"frac\">active</th>",
            layer, layer, n, r->run.id, r->o.top);
    for (int c = 0; c < nc; c++) {
        fprintf(f, "<th data-key=\"c%" PRId64 "\">AUROC ", r->concepts[cidx[c]].id);
        html_text(f, r->concepts[cidx[c]].name);
        fputs("</th>", f);
    }
    fputs("<th class=\"l\">top tokens</th></tr></thead><tbody>\n", f);
    for (int i = 0; i < n; i++) {
        int j = order[i];
        const ReportNeuron *x = &nr[j];
        fprintf(f, "<tr><td data-v=\"%d\">", j);
        neuron_link(r, f, layer, j);
        fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.2f%%</td>", x->max, x->mean, x->std,
                100 * x->frac_pos);
        for (int c = 0; c < nc; c++) {
            fputs("<td>", f);
            html_num(f, auroc[c][j], 4);
            fputs("</td>", f);
        }
        fputs("<td class=\"l\">", f);
        for (int k = 0; k < x->n_tok; k++) {
            tok_span(f, x->tok[k]);
            if (x->tok_n[k] > 1) fprintf(f, "&times;%d ", x->tok_n[k]);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    rc = page_close(r, f, name);
    f = NULL;
done:
    if (f) fclose(f);
    for (int c = 0; c < r->n_concepts && auroc; c++) free(auroc[c]);
    free(auroc);
    free(cidx);
    if (nr) report_neurons_free(nr, r->F);
    free(nr);
    free(order);
    return rc;
}

/* ---- neuron-L-N.html ----------------------------------------------------------- */

static void examples_table(Report *r, FILE *f, const Page *pg, int max_ex, uint8_t *const *cmark) {
    double lo = 0, hi = 0;
    NeuronRows rows = {0};
    if (neuron_query_list(r->s, &r->run, &pg->layer, &pg->neuron, 1, &rows, r->err) == 0 && rows.n == 1)
        lo = rows.rows[0].min < 0 ? rows.rows[0].min : 0, hi = rows.rows[0].max > 0 ? rows.rows[0].max : 0;
    neuron_rows_free(&rows);
    html_legend(f, lo, hi, "activation");
    fputs("<table class=\"ex\"><thead><tr><th>rank</th><th>value</th><th class=\"l\">context (the example's token "
          "outlined; hover a token for its activation)</th></tr></thead><tbody>\n",
          f);
    for (int i = 0; i < pg->n_ex && i < max_ex; i++) {
        const Example *e = &pg->ex[i];
        fprintf(f, "<tr><td>%d</td><td>%.4f</td>", e->ex.rank, e->ex.value);
        context_spans(f, e->tok, e->n_tok, e->mark, cmark ? cmark[i] : NULL, lo, hi);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void value_table(FILE *f, const char *what, const ValueToken *v, char **text, int n) {
    fprintf(f, "<table><thead><tr><th class=\"l\" colspan=\"2\">%s</th></tr></thead><tbody>", what);
    for (int i = 0; i < n; i++) {
        fputs("<tr><td class=\"l\">", f);
        tok_span(f, text[i]);
        if (v[i].count > 1) fprintf(f, " <span class=\"note\">(&times;%d ids)</span>", v[i].count);
        fprintf(f, "</td><td>%+.3f</td></tr>", v[i].logit);
    }
    fputs("</tbody></table>\n", f);
}

static int write_neuron(Report *r, const Page *pg) {
    enum { KV = 10 };
    char name[64], title[64];
    snprintf(name, sizeof name, "neuron-%d-%d.html", pg->layer, pg->neuron);
    snprintf(title, sizeof title, "neuron %d:%d", pg->layer, pg->neuron);
    NeuronRows rows = {0};
    CardRow concepts[8], abl[8];
    CardKv kv[2];
    int n_concepts = 0, n_abl = 0, n_kv = 0, rc = -1, has_hist;
    uint32_t *hist = malloc(sizeof *hist * ACT_HIST_BINS);
    ValueToken vt[2][2][KV];
    char *vtext[2][2][KV];
    int vn[2][2] = {{0, 0}, {0, 0}};
    static const char *var[2] = {"raw", "ln_f"}, *dir[2] = {"promoted", "suppressed"};
    FILE *f = NULL;
    if (!hist) {
        err_set(r->err, "out of memory");
        goto done;
    }
    if (neuron_query_list(r->s, &r->run, &pg->layer, &pg->neuron, 1, &rows, r->err)) goto done;
    if ((has_hist = card_histogram(r->s, r->run.id, pg->layer, pg->neuron, hist, ACT_HIST_BINS, r->err)) < 0) goto done;
    if (card_concepts(r->s, r->run.id, pg->layer, pg->neuron, concepts, 8, &n_concepts, r->err)) goto done;
    if (card_ablations(r->s, pg->layer, pg->neuron, abl, 8, &n_abl, r->err)) goto done;
    if (card_kv(r->s, r->run.id, pg->layer, pg->neuron, kv, 2, &n_kv, r->err)) goto done;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (value_tokens_load(r->s, r->info.model_checksum, pg->layer, pg->neuron, var[a], dir[b], vt[a][b],
                                  vtext[a][b], KV, &vn[a][b], r->err))
                goto done;
    const NeuronRow *x = &rows.rows[0];
    if (!(f = page_open(r, name, title))) goto done;
    fprintf(f, "<h1>Neuron %d:%d <span class=\"note\">blocks.%d.mlp.hook_post, neuron %d &middot; "
               "<a href=\"layer-%d.html\">layer %d</a></span></h1>\n",
            pg->layer, pg->neuron, pg->layer, pg->neuron, pg->layer, pg->layer);
    fprintf(f, "<div class=\"cards\"><div class=\"card\"><table id=\"stats\"><tbody>"
               "<tr><th class=\"l\">tokens</th><td>%.0f</td></tr><tr><th class=\"l\">mean</th><td>%.4f</td></tr>"
               "<tr><th class=\"l\">std</th><td>%.4f</td></tr><tr><th class=\"l\">min</th><td>%.4f</td></tr>"
               "<tr><th class=\"l\">max</th><td id=\"max\">%.4f</td></tr><tr><th class=\"l\">active (&gt; 0)</th>"
               "<td>%.2f%%</td></tr></tbody></table></div>\n<div class=\"card\">",
            x->count, x->mean, x->variance > 0 ? sqrt(x->variance) : 0, x->min, x->max, 100 * x->frac_pos);
    if (has_hist)
        html_histogram(f, hist, ACT_HIST_BINS);
    else
        fputs("<p class=\"note\">No histogram: the run was recorded before probe kept them.</p>", f);
    fputs("</div></div>\n", f);
    fprintf(f, "<h2>Top examples</h2>\n<p class=\"note\">%s</p>\n", r->source);
    examples_table(r, f, pg, pg->n_ex, NULL);
    fputs("<h2>Value: what it writes, read through the unembedding</h2>\n", f);
    if (!vn[0][0] && !vn[1][0]) {
        fputs("<p class=\"note\">Not stored: <code>probe kv</code> projects every neuron's value and stores its "
              "promoted and suppressed tokens (<code>probe neuron L:N</code> computes them on the spot).</p>\n",
              f);
    } else {
        fputs("<div class=\"cards\" id=\"values\">", f);
        for (int a = 0; a < 2; a++) {
            fprintf(f, "<div class=\"card\"><b>%s</b>", a ? "through ln_f's gain, W<sub>U</sub>(&gamma;&odot;v)"
                                                          : "raw, W<sub>U</sub>v");
            value_table(f, "promotes", vt[a][0], vtext[a][0], vn[a][0]);
            value_table(f, "suppresses", vt[a][1], vtext[a][1], vn[a][1]);
            fputs("</div>", f);
        }
        fputs("</div>\n", f);
    }
    if (n_concepts) {
        fputs("<h2>Concept scores</h2>\n<table id=\"concepts\"><thead><tr><th class=\"l\">concept</th><th>AUROC</th>"
              "<th>&plusmn;</th><th>Cohen's d</th><th>rank</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < n_concepts; i++) {
            fputs("<tr><td class=\"l\">", f);
            html_text(f, concepts[i].name);
            fputs("</td><td>", f);
            html_num(f, concepts[i].a, 4);
            fputs("</td><td>", f);
            html_num(f, concepts[i].b, 4);
            fputs("</td><td>", f);
            html_num(f, concepts[i].c, 3);
            fprintf(f, "</td><td>%" PRId64 " of %" PRId64 "</td></tr>\n", concepts[i].rank, concepts[i].of);
        }
        fputs("</tbody></table>\n", f);
    }
    if (n_kv) {
        fputs("<h2>Key-value</h2>\n<table><thead><tr><th class=\"l\">variant</th><th>agrees</th><th>median rank of "
              "its triggers' next tokens</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < n_kv; i++) {
            fputs("<tr><td class=\"l\">", f);
            html_text(f, kv[i].variant);
            fprintf(f, "</td><td>%s</td><td>", kv[i].agree < 0 ? "&mdash;" : kv[i].agree ? "yes" : "no");
            html_num(f, kv[i].median_rank, 0);
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
    }
    if (n_abl) {
        fputs("<h2>Ablations of it or its layer</h2>\n<table><thead><tr><th>ablation</th><th class=\"l\">condition"
              "</th><th>&Delta;loss</th><th>KL</th><th>top-1 kept</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < n_abl; i++) {
            fprintf(f, "<tr><td><a href=\"ablation-%" PRId64 ".html\">%" PRId64 "</a></td><td class=\"l\">", abl[i].rank,
                    abl[i].rank);
            html_text(f, abl[i].name);
            fprintf(f, "</td><td>%+.4f</td><td>%.4f</td><td>%.2f%%</td></tr>\n", abl[i].a, abl[i].b, 100 * abl[i].c);
        }
        fputs("</tbody></table>\n", f);
    }
    rc = page_close(r, f, name);
    f = NULL;
done:
    if (f) fclose(f);
    free(hist);
    neuron_rows_free(&rows);
    card_rows_free(concepts, n_concepts);
    card_rows_free(abl, n_abl);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < vn[a][b]; i++) free(vtext[a][b][i]);
    return rc;
}

/* ---- concept-ID.html ------------------------------------------------------------ */

/* The concept's probe, when its file is still there with the same bytes:
 * NULL and why in `why` otherwise. */
static Concept *concept_reload(const ReportConcept *c, char *why, size_t cap) {
    if (!c->probe_path) {
        snprintf(why, cap, "an ad-hoc --words list (its words are not stored)");
        return NULL;
    }
    Concept *k = NULL;
    char err[PROBE_ERR_LEN], ck[PROBE_CHECKSUM_HEX];
    ConceptOpts o = {.drop_flags = c->dropped_flags};
    if (concept_load(c->probe_path, &o, &k, err)) {
        snprintf(why, cap, "%s", err);
        return NULL;
    }
    checksum_hex(k->checksum, ck);
    if (strcmp(ck, c->probe_checksum)) {
        snprintf(why, cap, "the probe file has changed since the ranking (checksum %s, ranked with %s)", ck,
                 c->probe_checksum);
        concept_free(k);
        return NULL;
    }
    return k;
}

static int write_concept(Report *r, const ReportConcept *c) {
    char name[64], title[300], why[PROBE_ERR_LEN + 100] = "";
    snprintf(name, sizeof name, "concept-%" PRId64 ".html", c->id);
    snprintf(title, sizeof title, "concept %s", c->name);
    ReportConceptRow *top = calloc(CONCEPT_LIST, sizeof *top);
    int n = 0, rc = -1, marked = 0;
    Concept *k = concept_reload(c, why, sizeof why);
    FILE *f = NULL;
    if (!top) {
        err_set(r->err, "out of memory");
        goto done;
    }
    if (report_concept_top(r->s, c->id, top, CONCEPT_LIST, &n, r->err)) goto done;
    if (!(f = page_open(r, name, title))) goto done;
    fputs("<h1>Concept ", f);
    html_text(f, c->name);
    fprintf(f, "</h1>\n<p class=\"note\">Ranking %" PRId64 " over run %" PRId64 ": %" PRId64 " words; %" PRId64
               " of %" PRId64 " recorded tokens (%.2f%%) end a concept word; layers ",
            c->id, r->run.id, c->words, c->concept_tokens, c->tokens,
            c->tokens ? 100.0 * c->concept_tokens / c->tokens : 0);
    html_text(f, c->layers);
    fputs("; probe ", f);
    html_text(f, c->probe_path ? c->probe_path : "--words");
    fputs(" (checksum ", f);
    html_text(f, c->probe_checksum);
    fputs(c->dropped_flags ? ", dropped " : "", f);
    html_text(f, c->dropped_flags);
    fputs("), ranked ", f);
    html_text(f, c->created_at);
    fputs(". AUROC: the probability that a concept token activates the neuron more than another token (&plusmn; "
          "its proven error bound); precision: the share of its top examples that are concept tokens.</p>\n",
          f);
    fputs("<table class=\"sortable\" id=\"ranking\"><thead><tr><th data-key=\"rank\">rank</th><th>neuron</th>"
          "<th data-key=\"auroc\">AUROC</th><th>&plusmn;</th><th data-key=\"d\">Cohen's d</th><th>mean in</th>"
          "<th>mean out</th><th data-key=\"precision\">precision</th></tr></thead><tbody>\n",
          f);
    for (int i = 0; i < n; i++) {
        const ReportConceptRow *x = &top[i];
        fprintf(f, "<tr><td>%" PRId64 "</td><td data-v=\"%d\">", x->rank, x->layer * 100000 + x->neuron);
        neuron_link(r, f, x->layer, x->neuron);
        fputs("</td><td>", f);
        html_num(f, x->auroc, 4);
        fputs("</td><td>", f);
        html_num(f, x->auroc_error, 4);
        fputs("</td><td>", f);
        html_num(f, x->cohen_d, 3);
        fputs("</td><td>", f);
        html_num(f, x->mean_in, 4);
        fputs("</td><td>", f);
        html_num(f, x->mean_out, 4);
        fprintf(f, "</td><td>%" PRId64 "/%" PRId64 "</td></tr>\n", x->examples_in, x->examples);
    }
    fputs("</tbody></table>\n<h2>The best neurons' top examples</h2>\n", f);
    if (k)
        fputs("<p class=\"note\">Concept tokens are <span class=\"ctx\"><span class=\"cm\">underlined</span></span> "
              "(the probe's match rule applied to each token again).</p>\n",
              f);
    else {
        fputs("<p class=\"note\">Concept tokens are not marked: ", f);
        html_text(f, why);
        fputs(".</p>\n", f);
    }
    fprintf(f, "<p class=\"note\">%s</p>\n", r->source);
    for (int i = 0, shown = 0; i < n && shown < CONCEPT_SHOW; i++) {
        if (top[i].layer < 0 || top[i].layer >= r->L || top[i].neuron < 0 || top[i].neuron >= r->F) continue;
        int p = r->page_of[top[i].layer * r->F + top[i].neuron];
        if (p < 0) continue;
        const Page *pg = &r->pages[p];
        uint8_t **cm = calloc((size_t)(pg->n_ex ? pg->n_ex : 1), sizeof *cm);
        int ok = cm != NULL;
        if (!ok) err_set(r->err, "out of memory");
        for (int e = 0; ok && k && e < pg->n_ex && e < CONCEPT_EX; e++) {
            size_t len = 0;
            char *bytes = report_doc_bytes(r->s, r->run.id, pg->ex[e].ex.doc, &len, r->err);
            if (bytes && !(cm[e] = calloc((size_t)(pg->ex[e].n_tok ? pg->ex[e].n_tok : 1), 1)))
                err_set(r->err, "out of memory");
            if (!cm[e]) {
                free(bytes);
                ok = 0;
                break;
            }
            for (int t = 0; t < pg->ex[e].n_tok; t++)
                marked += cm[e][t] = (uint8_t)concept_match_end(k, bytes, len, pg->ex[e].tok[t].byte_end);
            free(bytes);
        }
        if (ok) {
            fputs("<h3>", f);
            neuron_link(r, f, pg->layer, pg->neuron);
            fprintf(f, " <span class=\"note\">rank %" PRId64 ", AUROC ", top[i].rank);
            html_num(f, top[i].auroc, 4);
            fputs("</span></h3>\n", f);
            examples_table(r, f, pg, CONCEPT_EX, cm);
            shown++;
        }
        for (int e = 0; cm && e < pg->n_ex; e++) free(cm[e]);
        free(cm);
        if (!ok) goto done;
    }
    fprintf(f, "<p class=\"note\" id=\"marked\" data-n=\"%d\">%d concept tokens marked above.</p>\n", marked, marked);
    rc = page_close(r, f, name);
    f = NULL;
done:
    if (f) fclose(f);
    concept_free(k);
    free(top);
    return rc;
}

/* ---- ablation-ID.html ----------------------------------------------------------- */

static int write_ablation(Report *r, const ReportAblation *a) {
    char name[64], title[64];
    snprintf(name, sizeof name, "ablation-%" PRId64 ".html", a->id);
    snprintf(title, sizeof title, "ablation %" PRId64, a->id);
    ReportCondition *c = NULL;
    int n = 0, rc = -1;
    FILE *f = NULL;
    double *v = NULL, *e = NULL;
    const char **lab = NULL;
    if (report_conditions(r->s, a->id, &c, &n, r->err)) goto done;
    v = calloc((size_t)(n ? n : 1), sizeof *v);
    e = calloc((size_t)(n ? n : 1), sizeof *e);
    lab = calloc((size_t)(n ? n : 1), sizeof *lab);
    if (!v || !e || !lab) {
        err_set(r->err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) v[i] = c[i].delta_loss, e[i] = 1.96 * c[i].delta_loss_se, lab[i] = c[i].label;
    if (!(f = page_open(r, name, title))) goto done;
    fprintf(f, "<h1>Ablation %" PRId64 ": ", a->id);
    html_text(f, a->kind);
    fputs(a->spec ? " " : "", f);
    html_text(f, a->spec);
    fputs(" <span class=\"note\">mode ", f);
    html_text(f, a->mode);
    fputs("</span></h1>\n<p class=\"note\">Model ", f);
    html_text(f, a->model_dir);
    fputs(" on ", f);
    html_text(f, a->source);
    fprintf(f, ": %" PRId64 " documents, %" PRId64 " predicted tokens per condition, %.1f s, stored ", a->documents,
            a->tokens, a->seconds);
    html_text(f, a->created_at);
    fputs(". &Delta;loss = ablated &minus; baseline mean cross-entropy (nats/token); error bars &plusmn;1.96 "
          "standard errors (95%).</p>\n",
          f);
    html_bars(f, lab, v, e, n, "\xce\x94loss (nats/token)");
    fputs("<table id=\"conditions\"><thead><tr><th class=\"l\">condition</th><th>base CE</th><th>ablated CE</th>"
          "<th>&Delta;loss</th><th>&plusmn; se</th><th>KL</th><th>top-1 kept</th><th>neurons edited</th></tr>"
          "</thead><tbody>\n",
          f);
    for (int i = 0; i < n; i++) {
        fputs("<tr><td class=\"l\">", f);
        html_text(f, c[i].label);
        fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>%+.4f</td><td>%.4f</td><td>%.4f</td><td>%.2f%%</td><td>%" PRId64
                   "</td></tr>\n",
                c[i].baseline_ce, c[i].ablated_ce, c[i].delta_loss, c[i].delta_loss_se, c[i].kl, 100 * c[i].top1,
                c[i].neurons_edited);
    }
    fputs("</tbody></table>\n<h2>The tokens most affected</h2>\n<p class=\"note\">Per condition, the predicted "
          "tokens whose loss rose most, each in its context; every token is coloured by its own loss change under "
          "that condition (stored per token by <code>probe ablate</code>).</p>\n",
          f);
    for (int i = 0; i < n; i++) {
        ReportToken *top = NULL;
        int nt = 0;
        if (report_ablation_top_tokens(r->s, c[i].id, ABL_TOP, &top, &nt, r->err)) goto done;
        double hi = nt ? top[0].value : 0;
        if (hi <= 0) hi = 1;
        fprintf(f, "<details%s><summary>", i == 0 || n <= 2 ? " open" : "");
        html_text(f, c[i].label);
        fprintf(f, ": &Delta;loss %+.4f</summary>\n", c[i].delta_loss);
        html_legend(f, -hi, hi, "loss change (nats)");
        fputs("<table class=\"ex\"><thead><tr><th>&Delta;loss</th><th class=\"l\">token</th><th class=\"l\">"
              "context</th></tr></thead><tbody>\n",
              f);
        for (int t = 0; t < nt; t++) {
            ReportToken *ctx = NULL;
            int nc = 0, mark = -1;
            int from = top[t].pos - 16 < 0 ? 0 : top[t].pos - 16;
            if (report_ablation_context(r->s, c[i].id, top[t].doc, from, top[t].pos + 4, &ctx, &nc, r->err)) {
                report_tokens_free(top, nt);
                goto done;
            }
            for (int q = 0; q < nc; q++)
                if (ctx[q].pos == top[t].pos) mark = q;
            fprintf(f, "<tr class=\"affected\"><td>%+.3f</td><td class=\"l\">", top[t].value);
            tok_span(f, top[t].token);
            fputs("</td>", f);
            context_spans(f, ctx, nc, mark, NULL, -hi, hi);
            fputs("</tr>\n", f);
            report_tokens_free(ctx, nc);
        }
        fputs("</tbody></table></details>\n", f);
        report_tokens_free(top, nt);
    }
    rc = page_close(r, f, name);
    f = NULL;
done:
    if (f) fclose(f);
    free(v), free(e), free(lab);
    report_conditions_free(c, n);
    return rc;
}

/* ---- the command ----------------------------------------------------------------- */

/* The run's model for the replay: 1 loaded, 0 not (why in `why`: the caller
 * falls back to stored activations), -1 when --model names a model that
 * cannot be used. */
static int model_for_replay(Report *r, char *why, size_t cap) {
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
    Report r;
    memset(&r, 0, sizeof r);
    int rc = parse_options(argc, argv, &r.o);
    if (rc >= 0) return rc;
    double t0 = now_sec();
    rc = PROBE_EXIT_RUNTIME;
    if (!(r.s = store_open(r.o.db, STORE_READ, r.err))) goto fail;
    int x = neuron_run_find(r.s, r.o.run > 0 ? r.o.run : 0, &r.run, r.err);
    if (x == -2) {
        rc = cli_usage_error("%s", r.err);
        goto done;
    }
    if (x || concept_run_info(r.s, r.run.id, &r.info, r.err) || report_runs(r.s, &r.runs, &r.n_runs, r.err)) goto fail;
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
    if (have ? activations_replay(&r) : activations_stored(&r, r.o.stored ? "--stored" : "the model was not loaded"))
        goto fail;
    if (write_index(&r)) goto fail;
    for (int i = 0; i < r.run.n_layers; i++)
        if (write_layer(&r, r.run.layers[i])) goto fail;
    for (int p = 0; p < r.n_pages; p++)
        if (write_neuron(&r, &r.pages[p])) goto fail;
    for (int c = 0; c < r.n_concepts; c++)
        if (write_concept(&r, &r.concepts[c])) goto fail;
    for (int a = 0; a < r.n_abl; a++)
        if (write_ablation(&r, &r.abl[a])) goto fail;
    if (!r.o.quiet) {
        printf("wrote %d pages (%.1f MB) to '%s' in %.1f s: %d layer pages, %d neuron pages, %d concept pages, %d "
               "ablation pages\n",
               r.files, r.bytes / 1e6, r.o.out, now_sec() - t0, r.run.n_layers, r.n_pages, r.n_concepts, r.n_abl);
        if (r.replayed)
            printf("heatmaps: replayed %d windows in %.1f s (exact: %d of %d example tokens equal their recorded "
                   "value)\n",
                   r.rs.windows, r.rs.seconds, r.equal, r.checked);
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
