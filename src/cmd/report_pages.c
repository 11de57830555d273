/* report_pages.c — see report_pages.h. */
#include "report_pages.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablations.h"
#include "act_hist.h"
#include "cli.h"
#include "concept.h"
#include "kv_store.h"
#include "neuron_card.h"
#include "progress.h"
#include "report_html.h"

enum { CONCEPT_LIST = 25, CONCEPT_SHOW = 4, CONCEPT_EX = 8, ABL_TOP = 6 };

/* ---- files ------------------------------------------------------------------ */

static FILE *page_open(ReportPages *r, const char *name, const char *title) {
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

static int page_close(ReportPages *r, FILE *f, const char *name) {
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

/* A table cell holding a number (html_num: an em dash for NaN). */
static void td_num(FILE *f, double v, int decimals) {
    fputs("<td>", f);
    html_num(f, v, decimals);
    fputs("</td>", f);
}

static void neuron_link(ReportPages *r, FILE *f, int layer, int neuron) {
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

/* The latest zero-mode layer sweep of the run's model: its conditions' delta
 * loss per layer into dl[L] (NAN where none); 1 when there is one. */
static int sweep_by_layer(ReportPages *r, double *dl, int64_t *id) {
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

/* The heading and the runs of the database, the report's marked. */
static void index_runs(ReportPages *r, FILE *f) {
    const ReportRun *rr = r->rr;
    char num[32]; /* progress_count: a count with thousands separators */
    fputs("<h1>probe report: ", f);
    html_text(f, r->o.db);
    fprintf(f, "</h1>\n<p class=\"note\">Run %" PRId64 " of this database: ", rr->id);
    html_text(f, rr->model_dir);
    fputs(" on ", f);
    html_text(f, rr->corpus_path);
    fputs(". The recorded activation is the FFN post-activation (after GELU, before c_proj), TransformerLens "
          "<code>blocks.L.mlp.hook_post</code>.</p>\n<h2>Runs</h2>\n<table><thead><tr><th>run</th><th class=\"l\">"
          "status</th><th class=\"l\">model</th><th class=\"l\">corpus</th><th>documents</th><th>tokens</th>"
          "<th class=\"l\">layers</th><th class=\"l\">started</th><th>seconds</th><th class=\"l\">OpenBLAS "
          "kernels</th></tr></thead><tbody>\n",
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
        fputs(progress_count(num, x->n_tokens), f);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->layers);
        fputs("</td><td class=\"l\">", f);
        html_text(f, x->started_at);
        fprintf(f, "</td><td>%.1f</td><td class=\"l blas\">", x->seconds);
        html_text(f, x->blas ? x->blas : "unknown");
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

/* The model's shape and parameter counts with the FFN's share (lm_head
 * counted as tied when the model was not loaded). */
static void index_model(ReportPages *r, FILE *f) {
    const ReportRun *rr = r->rr;
    char num[32];
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
        fputs(progress_count(num, counts[i]), f);
        fprintf(f, "</td><td>%.2f%%</td></tr>\n", pc.total ? 100.0 * counts[i] / pc.total : 0);
    }
    fputs("<tr><th class=\"l\">total</th><th>", f);
    fputs(progress_count(num, pc.total), f);
    fprintf(f, "</th><th></th></tr></tbody></table><p>FFN share: <b id=\"ffn-share\">%.2f%%</b> of all parameters, "
               "<b id=\"ffn-share-non-emb\">%.2f%%</b> of non-embedding parameters.%s</p></div></div>\n",
            pc.total ? 100.0 * pc.ffn / pc.total : 0, non_emb ? 100.0 * pc.ffn / non_emb : 0,
            r->m ? "" : " (lm_head counted as tied to wte, as in GPT-2: the model was not loaded)");
}

/* The per-layer activity table with the latest zero-mode layer sweep's
 * delta loss, and a bar chart of it. 0, or -1 with r->err. */
static int index_layers(ReportPages *r, FILE *f) {
    const ReportRun *rr = r->rr;
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
        if (has_sweep) td_num(f, dl[l], 4);
        fprintf(f, "<td>%d</td></tr>\n", pages);
        snprintf(labels[n_bars], 24, "layer %d", l);
        lp[n_bars] = labels[n_bars];
        frac[n_bars++] = 100 * lay[l].avg_frac_pos;
    }
    fputs("</tbody></table>\n<p class=\"note\">Average fraction of tokens active, per layer:</p>\n", f);
    html_bars(f, lp, frac, zero, n_bars, "avg % of tokens active");
    rc = 0;
done:
    free(lay), free(dl), free(frac), free(zero), free(labels), free(lp);
    return rc;
}

/* Links to the concept and ablation pages, and where the heatmaps come
 * from. */
static void index_links(ReportPages *r, FILE *f) {
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
}

int report_page_index(ReportPages *r) {
    FILE *f = page_open(r, "index.html", "probe report");
    if (!f) return -1;
    index_runs(r, f);
    index_model(r, f);
    if (index_layers(r, f)) {
        fclose(f);
        return -1;
    }
    index_links(r, f);
    return page_close(r, f, "index.html");
}

/* ---- layer-L.html ------------------------------------------------------------- */

int report_page_layer(ReportPages *r, int layer) {
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
        for (int c = 0; c < nc; c++) td_num(f, auroc[c][j], 4);
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

static void examples_table(ReportPages *r, FILE *f, const ReportNeuronPage *pg, int max_ex, uint8_t *const *cmark) {
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
        const ReportExample *e = &pg->ex[i];
        fprintf(f, "<tr><td>%d</td><td>%.4f</td>", e->ex.rank, e->ex.value);
        context_spans(f, e->tok, e->n_tok, e->mark, cmark ? cmark[i] : NULL, lo, hi);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void value_table(FILE *f, const char *what, const ValueToken *v, char *const *text, int n) {
    fprintf(f, "<table><thead><tr><th class=\"l\" colspan=\"2\">%s</th></tr></thead><tbody>", what);
    for (int i = 0; i < n; i++) {
        fputs("<tr><td class=\"l\">", f);
        tok_span(f, text[i]);
        if (v[i].count > 1) fprintf(f, " <span class=\"note\">(&times;%d ids)</span>", v[i].count);
        fprintf(f, "</td><td>%+.3f</td></tr>", v[i].logit);
    }
    fputs("</tbody></table>\n", f);
}

enum { VALUE_TOKENS = 10 };

/* What a neuron page shows from the database besides its examples. */
typedef struct {
    NeuronRows rows; /* its statistics: rows.rows[0] */
    uint32_t *hist;  /* [ACT_HIST_BINS], when has_hist */
    int has_hist;
    CardRow concepts[8], abl[8];
    CardKv kv[2];
    int n_concepts, n_abl, n_kv;
    ValueToken vt[2][2][VALUE_TOKENS]; /* [raw, ln_f][promoted, suppressed] */
    char *vtext[2][2][VALUE_TOKENS];
    int vn[2][2];
} NeuronFigures;

static void neuron_figures_free(NeuronFigures *x) {
    free(x->hist);
    neuron_rows_free(&x->rows);
    card_rows_free(x->concepts, x->n_concepts);
    card_rows_free(x->abl, x->n_abl);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < x->vn[a][b]; i++) free(x->vtext[a][b][i]);
}

static int neuron_figures_load(ReportPages *r, const ReportNeuronPage *pg, NeuronFigures *x) {
    static const char *var[2] = {"raw", "ln_f"}, *dir[2] = {"promoted", "suppressed"};
    const int64_t run = r->run.id;
    if (!(x->hist = malloc(sizeof *x->hist * ACT_HIST_BINS))) return err_set(r->err, "out of memory");
    if (neuron_query_list(r->s, &r->run, &pg->layer, &pg->neuron, 1, &x->rows, r->err)) return -1;
    if ((x->has_hist = card_histogram(r->s, run, pg->layer, pg->neuron, x->hist, ACT_HIST_BINS, r->err)) < 0) return -1;
    if (card_concepts(r->s, run, pg->layer, pg->neuron, x->concepts, 8, &x->n_concepts, r->err)) return -1;
    if (card_ablations(r->s, pg->layer, pg->neuron, x->abl, 8, &x->n_abl, r->err)) return -1;
    if (card_kv(r->s, run, pg->layer, pg->neuron, x->kv, 2, &x->n_kv, r->err)) return -1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (value_tokens_load(r->s, r->info.model_checksum, pg->layer, pg->neuron, var[a], dir[b], x->vt[a][b],
                                  x->vtext[a][b], VALUE_TOKENS, &x->vn[a][b], r->err))
                return -1;
    return 0;
}

/* The heading, the statistics and the histogram. */
static void neuron_head(FILE *f, const ReportNeuronPage *pg, const NeuronFigures *x) {
    const NeuronRow *n = &x->rows.rows[0];
    fprintf(f, "<h1>Neuron %d:%d <span class=\"note\">blocks.%d.mlp.hook_post, neuron %d &middot; "
               "<a href=\"layer-%d.html\">layer %d</a></span></h1>\n",
            pg->layer, pg->neuron, pg->layer, pg->neuron, pg->layer, pg->layer);
    fprintf(f, "<div class=\"cards\"><div class=\"card\"><table id=\"stats\"><tbody>"
               "<tr><th class=\"l\">tokens</th><td>%.0f</td></tr><tr><th class=\"l\">mean</th><td>%.4f</td></tr>"
               "<tr><th class=\"l\">std</th><td>%.4f</td></tr><tr><th class=\"l\">min</th><td>%.4f</td></tr>"
               "<tr><th class=\"l\">max</th><td id=\"max\">%.4f</td></tr><tr><th class=\"l\">active (&gt; 0)</th>"
               "<td>%.2f%%</td></tr></tbody></table></div>\n<div class=\"card\">",
            n->count, n->mean, n->variance > 0 ? sqrt(n->variance) : 0, n->min, n->max, 100 * n->frac_pos);
    if (x->has_hist)
        html_histogram(f, x->hist, ACT_HIST_BINS);
    else
        fputs("<p class=\"note\">No histogram: the run was recorded before probe kept them.</p>", f);
    fputs("</div></div>\n", f);
}

static void neuron_values(FILE *f, const NeuronFigures *x) {
    fputs("<h2>Value: what it writes, read through the unembedding</h2>\n", f);
    if (!x->vn[0][0] && !x->vn[1][0]) {
        fputs("<p class=\"note\">Not stored: <code>probe kv</code> projects every neuron's value and stores its "
              "promoted and suppressed tokens (<code>probe neuron L:N</code> computes them on the spot).</p>\n",
              f);
        return;
    }
    fputs("<div class=\"cards\" id=\"values\">", f);
    for (int a = 0; a < 2; a++) {
        fprintf(f, "<div class=\"card\"><b>%s</b>", a ? "through ln_f's gain, W<sub>U</sub>(&gamma;&odot;v)"
                                                      : "raw, W<sub>U</sub>v");
        value_table(f, "promotes", x->vt[a][0], x->vtext[a][0], x->vn[a][0]);
        value_table(f, "suppresses", x->vt[a][1], x->vtext[a][1], x->vn[a][1]);
        fputs("</div>", f);
    }
    fputs("</div>\n", f);
}

/* Concept scores, key-value figures and ablations: each only when stored. */
static void neuron_stored(FILE *f, const NeuronFigures *x) {
    if (x->n_concepts) {
        fputs("<h2>Concept scores</h2>\n<table id=\"concepts\"><thead><tr><th class=\"l\">concept</th><th>AUROC</th>"
              "<th>&plusmn;</th><th>Cohen's d</th><th>rank</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < x->n_concepts; i++) {
            const CardRow *c = &x->concepts[i];
            fputs("<tr><td class=\"l\">", f);
            html_text(f, c->name);
            fputs("</td>", f);
            td_num(f, c->a, 4);
            td_num(f, c->b, 4);
            td_num(f, c->c, 3);
            fprintf(f, "<td>%" PRId64 " of %" PRId64 "</td></tr>\n", c->rank, c->of);
        }
        fputs("</tbody></table>\n", f);
    }
    if (x->n_kv) {
        fputs("<h2>Key-value</h2>\n<table><thead><tr><th class=\"l\">variant</th><th>agrees</th><th>median rank of "
              "its triggers' next tokens</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < x->n_kv; i++) {
            fputs("<tr><td class=\"l\">", f);
            html_text(f, x->kv[i].variant);
            fprintf(f, "</td><td>%s</td><td>", x->kv[i].agree < 0 ? "&mdash;" : x->kv[i].agree ? "yes" : "no");
            html_num(f, x->kv[i].median_rank, 0);
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
    }
    if (x->n_abl) {
        fputs("<h2>Ablations of it or its layer</h2>\n<table><thead><tr><th>ablation</th><th class=\"l\">condition"
              "</th><th>&Delta;loss</th><th>KL</th><th>top-1 kept</th></tr></thead><tbody>\n",
              f);
        for (int i = 0; i < x->n_abl; i++) {
            const CardRow *a = &x->abl[i];
            char d[32], kl[32];
            fprintf(f, "<tr><td><a href=\"ablation-%" PRId64 ".html\">%" PRId64 "</a></td><td class=\"l\">", a->rank,
                    a->rank);
            html_text(f, a->name);
            if (isnan(a->b)) /* a neuron sweep's first-order estimate: no KL, no top-1 */
                fprintf(f, "</td><td>%s</td><td>&mdash;</td><td>&mdash;</td></tr>\n", cli_small(d, sizeof d, a->a, 1));
            else
                fprintf(f, "</td><td>%s</td><td>%s</td><td>%.2f%%</td></tr>\n", cli_small(d, sizeof d, a->a, 1),
                        cli_small(kl, sizeof kl, a->b, 0), 100 * a->c);
        }
        fputs("</tbody></table>\n", f);
    }
}

int report_page_neuron(ReportPages *r, const ReportNeuronPage *pg) {
    char name[64], title[64];
    snprintf(name, sizeof name, "neuron-%d-%d.html", pg->layer, pg->neuron);
    snprintf(title, sizeof title, "neuron %d:%d", pg->layer, pg->neuron);
    NeuronFigures x = {0};
    FILE *f = NULL;
    int rc = -1;
    if (neuron_figures_load(r, pg, &x) || !(f = page_open(r, name, title))) goto done;
    neuron_head(f, pg, &x);
    fprintf(f, "<h2>Top examples</h2>\n<p class=\"note\">%s</p>\n", r->source);
    examples_table(r, f, pg, pg->n_ex, NULL);
    neuron_values(f, &x);
    neuron_stored(f, &x);
    rc = page_close(r, f, name);
done:
    neuron_figures_free(&x);
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

/* The heading and the ranking's best neurons. */
static void concept_ranking(ReportPages *r, FILE *f, const ReportConcept *c, const ReportConceptRow *top, int n) {
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
        fputs("</td>", f);
        td_num(f, x->auroc, 4);
        td_num(f, x->auroc_error, 4);
        td_num(f, x->cohen_d, 3);
        td_num(f, x->mean_in, 4);
        td_num(f, x->mean_out, 4);
        fprintf(f, "<td>%" PRId64 "/%" PRId64 "</td></tr>\n", x->examples_in, x->examples);
    }
    fputs("</tbody></table>\n", f);
}

/* A neuron's top examples, its concept tokens marked when the probe k could
 * be loaded again; *marked counts them. 0, or -1 with r->err. */
static int concept_examples(ReportPages *r, FILE *f, const Concept *k, const ReportConceptRow *row,
                            const ReportNeuronPage *pg, int *marked) {
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
            *marked += cm[e][t] = (uint8_t)concept_match_end(k, bytes, len, pg->ex[e].tok[t].byte_end);
        free(bytes);
    }
    if (ok) {
        fputs("<h3>", f);
        neuron_link(r, f, pg->layer, pg->neuron);
        fprintf(f, " <span class=\"note\">rank %" PRId64 ", AUROC ", row->rank);
        html_num(f, row->auroc, 4);
        fputs("</span></h3>\n", f);
        examples_table(r, f, pg, CONCEPT_EX, cm);
    }
    for (int e = 0; cm && e < pg->n_ex; e++) free(cm[e]);
    free(cm);
    return ok ? 0 : -1;
}

int report_page_concept(ReportPages *r, const ReportConcept *c) {
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
    concept_ranking(r, f, c, top, n);
    fputs("<h2>The best neurons' top examples</h2>\n", f);
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
        if (concept_examples(r, f, k, &top[i], &r->pages[p], &marked)) goto done;
        shown++;
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

#define SWEEP_TOP 30 /* estimates listed on a neuron sweep's page */

/* A neuron sweep's largest estimates (nothing for other ablations), with
 * the measured delta loss of the verified neurons. */
static int estimates_table(ReportPages *r, FILE *f, int64_t ablation) {
    AblationNeuronRank *e = NULL;
    int n = 0;
    if (ablation_estimates_top(r->s, ablation, SWEEP_TOP, &e, &n, r->err)) return -1;
    if (n) {
        fputs("<h2>Every neuron alone, estimated</h2>\n<p class=\"note\">The neurons whose removal alone "
              "costs most by attribution patching (the first-order estimate of <code>probe ablate --sweep "
              "neurons</code>), largest first; measured: the condition above that ablated the neuron for real. "
              "All estimates: view <code>neuron_ablation_effects</code>.</p>\n<table id=\"estimates\"><thead><tr>"
              "<th>rank</th><th class=\"l\">neuron</th><th>estimated &Delta;loss</th><th>measured &Delta;loss</th>"
              "</tr></thead><tbody>\n",
              f);
        for (int i = 0; i < n; i++) {
            char est[32], meas[32] = "&mdash;";
            if (!isnan(e[i].measured)) cli_small(meas, sizeof meas, e[i].measured, 1);
            fprintf(f, "<tr class=\"est\" data-neuron=\"%d:%d\" data-estimate=\"%.9g\"><td>%d</td><td class=\"l\">"
                       "%d:%d</td><td>%s</td><td>%s</td></tr>\n",
                    e[i].layer, e[i].neuron, e[i].estimate, i + 1, e[i].layer, e[i].neuron,
                    cli_small(est, sizeof est, e[i].estimate, 1), meas);
        }
        fputs("</tbody></table>\n", f);
    }
    free(e);
    return 0;
}

int report_page_ablation(ReportPages *r, const ReportAblation *a) {
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
        char d[32], se[32], kl[32];
        fprintf(f, "</td><td>%.4f</td><td>%.4f</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f%%</td><td>%" PRId64
                   "</td></tr>\n",
                c[i].baseline_ce, c[i].ablated_ce, cli_small(d, sizeof d, c[i].delta_loss, 1),
                cli_small(se, sizeof se, c[i].delta_loss_se, 0), cli_small(kl, sizeof kl, c[i].kl, 0), 100 * c[i].top1,
                c[i].neurons_edited);
    }
    fputs("</tbody></table>\n", f);
    if (estimates_table(r, f, a->id)) goto done;
    fputs("<h2>The tokens most affected</h2>\n<p class=\"note\">Per condition, the predicted "
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
