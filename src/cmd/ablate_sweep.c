/* ablate_sweep.c — `probe ablate --sweep neurons [--layer L]`: the
 * attribution-patching estimate of every neuron's single ablation
 * (analysis/neuron_sweep.h), the neurons to verify, and how the estimates
 * are printed. ablate.c measures the verified ones and stores both. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "ablate_cmd.h"
#include "cli.h"
#include "progress.h"
#include "util.h"

static void sweep_layers_text(const NeuronSweep *sw, char *buf, size_t cap) {
    if (sw->first == sw->last)
        snprintf(buf, cap, "layer %d", sw->first);
    else
        snprintf(buf, cap, "layers %d-%d", sw->first, sw->last);
}

/* The estimates of the top `rows` neurons, with the exact figures of those
 * measured (idx[l * n + j] >= 0: that condition of cs). */
void ablate_print_sweep(const NeuronSweep *sw, const int *idx, const Conditions *cs, int rows) {
    int *tl = malloc(sizeof *tl * (size_t)rows), *tn = malloc(sizeof *tn * (size_t)rows);
    char which[48];
    if (!tl || !tn) {
        free(tl);
        free(tn);
        return;
    }
    neuron_sweep_top(sw, rows, tl, tn, &rows);
    sweep_layers_text(sw, which, sizeof which);
    printf("\n%s, every neuron ablated alone: estimated delta loss (attribution patching,\n"
           "first order), measured delta loss where verified; baseline CE %.4f over %lld tokens\n\n",
           which, sw->base_ce, (long long)sw->count.tokens);
    printf("%4s  %9s  %10s  %10s  %9s  %8s  %7s  %10s\n", "rank", "neuron", "estimate", "measured", "+/- se", "KL",
           "top-1", "mean act");
    for (int r = 0; r < rows; r++) {
        size_t at = (size_t)tl[r] * sw->n + tn[r];
        char e[32], d[32] = "", se[32] = "", kl[32] = "", ag[32] = "", name[24];
        cli_small(e, sizeof e, sw->estimate[at], 1);
        if (idx[at] >= 0) {
            AblateFigures f;
            ablate_figures(&cs->c[idx[at]].tot, &f);
            cli_small(d, sizeof d, f.dloss, 1);
            cli_small(se, sizeof se, f.dloss_se, 0);
            cli_small(kl, sizeof kl, f.kl, 0);
            snprintf(ag, sizeof ag, "%.2f%%", 100.0 * f.agreement);
        }
        snprintf(name, sizeof name, "%d:%d", tl[r], tn[r]);
        printf("%4d  %9s  %10s  %10s  %9s  %8s  %7s  %10.4f\n", r + 1, name, e, d, se, kl, ag, sw->act_mean[at]);
    }
    printf("\nestimate: sum over positions of (ablated value - activation) x d loss / d activation,\n"
           "per predicted token; measured: the real ablation of that neuron alone (the rows above).\n");
    free(tl);
    free(tn);
}

/* Every estimate, best first, with the measured delta loss where there is one. */
cJSON *ablate_sweep_json(const NeuronSweep *sw, const int *idx, const Conditions *cs) {
    int total = sw->n * (sw->last - sw->first + 1), k = 0;
    cJSON *o = cJSON_CreateObject();
    int *tl = malloc(sizeof *tl * (size_t)total), *tn = malloc(sizeof *tn * (size_t)total);
    if (!o || !tl || !tn) {
        free(tl);
        free(tn);
        return o;
    }
    neuron_sweep_top(sw, total, tl, tn, &k);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = sw->first; l <= sw->last; l++) cJSON_AddItemToArray(layers, cJSON_CreateNumber(l));
    cJSON_AddNumberToObject(o, "baseline_ce", sw->base_ce);
    cJSON_AddNumberToObject(o, "seconds", sw->count.seconds);
    cJSON *arr = cJSON_AddArrayToObject(o, "neurons");
    for (int r = 0; r < k; r++) {
        size_t at = (size_t)tl[r] * sw->n + tn[r];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", tl[r]);
        cJSON_AddNumberToObject(e, "neuron", tn[r]);
        cJSON_AddNumberToObject(e, "rank", r + 1);
        json_add_real(e, "estimate", sw->estimate[at]);
        json_add_real(e, "act_mean", sw->act_mean[at]);
        if (idx[at] >= 0) {
            AblateFigures f;
            ablate_figures(&cs->c[idx[at]].tot, &f);
            json_add_real(e, "delta_loss", f.dloss);
        } else {
            cJSON_AddNullToObject(e, "delta_loss");
        }
        cJSON_AddItemToArray(arr, e);
    }
    free(tl);
    free(tn);
    return o;
}

/* Progress of the estimate phase (windows_each counts neurons as conditions). */
static void on_sweep_progress(void *user, const AblateProgress *p) {
    Progress *bar = user;
    if (!progress_due(bar)) return;
    char detail[160], b1[32], b2[32];
    long long rate = (long long)(p->tokens / (p->seconds > 0 ? p->seconds : 1));
    snprintf(detail, sizeof detail, "estimating %d neurons: %d/%d docs  %s tokens  %s tok/s", p->n_conditions,
             p->docs_done + 1, p->n_docs, progress_count(b1, p->tokens), progress_count(b2, rate));
    progress_draw(bar, (p->docs_done + (double)p->window / p->n_windows) / p->n_docs, detail);
}

/* The estimate of every neuron of o->layer (or of every layer), then
 * o->spec set to the o->verify neurons with the largest estimates (*list
 * owns the string). means: NULL or [L x F]. 0, or -1 with err. */
int ablate_sweep_estimate(Model *m, Store *store, AblateOptions *o, int ctx, const float *means, NeuronSweep *sw,
                          char **list, Report *r, char *err) {
    DocSource *src = ablate_source(m, store, o, err);
    if (!src) return -1;
    Progress *bar = progress_new(!o->quiet, 0.0);
    int rc = neuron_sweep_estimate(m, src, ctx, (int)o->layer, means, on_sweep_progress, bar, sw, err);
    progress_end(bar);
    if (!rc) ablate_report_source(r, o, src, &sw->count);
    doc_source_free(src);
    if (rc) return -1;
    int k = (int)o->verify, *tl = malloc(sizeof *tl * (size_t)(k ? k : 1)), *tn = malloc(sizeof *tn * (size_t)(k ? k : 1));
    if (!tl || !tn) {
        free(tl);
        free(tn);
        return err_set(err, "out of memory");
    }
    neuron_sweep_top(sw, k, tl, tn, &k);
    *list = ablate_neuron_list(tl, tn, k);
    free(tl);
    free(tn);
    if (!*list) return err_set(err, "out of memory");
    o->verify = k;
    o->spec = (ConditionSpec){COND_SWEEP_NEURONS, *list};
    return 0;
}
