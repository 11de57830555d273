/* report_pages.h — the pages of `probe report`: each function writes one
 * self-contained HTML file (report_html.h: inline CSS, SVG and script) into
 * the report's folder from what the command (report.c) has gathered.
 *
 *   ReportPages r = ...;  // the command fills it: options, store, run, runs,
 *                         // concepts, ablations, neuron pages with their
 *                         // examples' heatmap values, the source sentence
 *   report_page_index(&r);
 *   for (int i = 0; i < r.run.n_layers; i++) report_page_layer(&r, r.run.layers[i]);
 *   for (int p = 0; p < r.n_pages; p++) report_page_neuron(&r, &r.pages[p]);
 *   ...  report_page_concept(&r, &r.concepts[c]);  report_page_ablation(&r, &r.abl[a]);
 *
 * A neuron is a link, wherever it appears, only when it has a page (page_of).
 *
 * Ownership: ReportPages and everything it points to belong to the command,
 * which frees them; the writers only read it, except that each adds the
 * file it wrote to `files` and its size to `bytes`, and writes `err` on
 * failure. What they query (neuron_card.h, report_query.h, kv_store.h) they
 * free before returning.
 *
 * Errors: every writer returns 0, or -1 with one line in r->err (a query's
 * error, "out of memory", "cannot write 'DIR/NAME': ..."); a page cut short
 * by an error is left as far as it got. */
#ifndef PROBE_REPORT_PAGES_H
#define PROBE_REPORT_PAGES_H

#include <stdint.h>

#include "concept_store.h"
#include "model.h"
#include "neuron_query.h"
#include "report_query.h"
#include "report_replay.h"
#include "store.h"
#include "util.h"

typedef struct {
    const char *db, *out, *model;
    long run, top, examples;
    int stored, quiet;
} ReportOptions;

/* A top example of a neuron page with the tokens around it. */
typedef struct {
    NeuronExample ex;
    ReportToken *tok; /* its context, tok[mark] the example's own token; .value / .has_value: the heatmap */
    int n_tok, mark;
} ReportExample;

/* A neuron that gets a page, and its top examples. */
typedef struct {
    int layer, neuron;
    ReportExample *ex;
    int n_ex;
} ReportNeuronPage;

typedef struct {
    ReportOptions o;            /* out: the folder; db: the index's title; top: said on layer pages */
    Store *s;
    NeuronRun run;
    ConceptRunInfo info;
    ReportRun *runs;            /* every run of the database, for the index */
    int n_runs;
    const ReportRun *rr;        /* the report's run among them */
    ReportConcept *concepts;    /* the run's concept rankings: one page each */
    int n_concepts;
    ReportAblation *abl;        /* the run's model's ablations: one page each */
    int n_abl;
    ReportNeuronPage *pages;
    int n_pages, F, L;
    int *page_of;               /* [L x F] index into pages, -1 */
    Model *m;                   /* NULL when not loaded (the index then counts lm_head as tied) */
    int replayed, checked, equal; /* examples whose replayed own value was compared / equal (the command's) */
    double worst_rel;             /* the largest |replayed - recorded| / |recorded| among them */
    char differ_why[200];         /* why replayed values can differ, for the page and the command's line */
    ReplayStats rs;             /* the command's */
    char source[1024];          /* where the heatmaps' activations come from, as a sentence */
    int64_t bytes;              /* written so far */
    int files;
    char err[PROBE_ERR_LEN];
} ReportPages;

/* index.html: the runs of the database (the report's marked), the model's
 * shape and parameter counts with the FFN's share, the per-layer activity
 * table with the latest zero-mode layer sweep's delta loss and a bar chart,
 * links to the concept and ablation pages, and where the heatmaps come from. */
int report_page_index(ReportPages *r);

/* layer-L.html: every neuron of recorded layer `layer` with statistics, its
 * AUROC in each concept ranking that scored the layer, and its top tokens;
 * rows by max, sortable and filterable. */
int report_page_layer(ReportPages *r, int layer);

/* neuron-L-N.html: statistics and histogram, the top examples as token
 * heatmaps, value tokens (when `probe kv` stored them), concept scores,
 * key-value agreement and the ablations of the neuron or its layer. */
int report_page_neuron(ReportPages *r, const ReportNeuronPage *pg);

/* concept-ID.html: the ranking's best neurons, then the top examples of the
 * first few that have pages, concept tokens underlined when the probe file
 * can be read again unchanged. */
int report_page_concept(ReportPages *r, const ReportConcept *c);

/* ablation-ID.html: delta loss per condition (table and bar chart), and per
 * condition the tokens whose loss rose most, each in its context coloured
 * by loss change. */
int report_page_ablation(ReportPages *r, const ReportAblation *a);

#endif
