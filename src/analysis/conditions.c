/* conditions.c — see conditions.h. */
#include "conditions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intervention.h"
#include "util.h"

const char *condition_kind_name(ConditionKind kind) {
    switch (kind) {
    case COND_NO_FFN: return "no-ffn";
    case COND_LAYERS: return "layers";
    case COND_NEURONS: return "neurons";
    case COND_SWEEP_LAYERS: return "sweep-layers";
    case COND_SWEEP_NEURONS: return "neurons"; /* the stored kind: neuron ablations */
    }
    return "?";
}

void conditions_free(Conditions *cs) {
    for (int i = 0; i < cs->n; i++) {
        free(cs->c[i].layers);
        free(cs->c[i].remove);
        free(cs->c[i].edits);
        free(cs->c[i].eff);
        free(cs->c[i].eff_doc);
    }
    free(cs->c);
    cs->c = NULL;
    cs->n = 0;
}

static Condition *condition_add(Conditions *cs, int L, const char *label, int layer) {
    Condition *grown = realloc(cs->c, sizeof *cs->c * (size_t)(cs->n + 1));
    if (!grown) return NULL;
    cs->c = grown;
    Condition *c = &cs->c[cs->n];
    memset(c, 0, sizeof *c);
    cs->n++;
    c->layers = calloc((size_t)L, 1);
    c->remove = calloc((size_t)L, 1);
    if (!c->layers || !c->remove) return NULL;
    snprintf(c->label, sizeof c->label, "%s", label);
    c->layer = layer;
    return c;
}

/* Ablates the layers in mask: removal (zero mode) or every neuron set to its
 * mean (mean mode; means is [L x F]). */
static int condition_layers(Condition *c, const ModelConfig *cfg, const uint8_t *mask, const float *means,
                            char *err) {
    int L = cfg->n_layer, F = cfg->n_inner;
    for (int l = 0; l < L; l++) {
        if (!mask[l]) continue;
        c->layers[l] = 1;
        if (!means) {
            c->remove[l] = 1;
            continue;
        }
        NeuronEdit *grown = realloc(c->edits, sizeof *grown * (size_t)(c->n_edits + F));
        if (!grown) return err_set(err, "out of memory");
        c->edits = grown;
        for (int n = 0; n < F; n++) c->edits[c->n_edits++] = (NeuronEdit){l, n, means[(size_t)l * F + n]};
    }
    return 0;
}

/* --no-ffn / --layers LIST: one condition over the layers in mask. */
static int build_layers(Conditions *cs, const ConditionSpec *spec, const ModelConfig *cfg, const float *means,
                        uint8_t *mask, char *err) {
    int L = cfg->n_layer;
    if (spec->kind == COND_NO_FFN)
        memset(mask, 1, (size_t)L);
    else if (parse_layer_list(spec->list, L, mask, err))
        return -1;
    int single = -1, count = 0;
    for (int l = 0; l < L; l++)
        if (mask[l]) single = l, count++;
    char label[96] = "no-ffn";
    if (spec->kind == COND_LAYERS)
        snprintf(label, sizeof label, "%s %.80s", count == 1 ? "layer" : "layers", spec->list);
    Condition *c = condition_add(cs, L, label, count == 1 ? single : -1);
    if (!c) return err_set(err, "out of memory");
    return condition_layers(c, cfg, mask, means, err);
}

/* --neurons LIST: one condition editing the listed neurons. */
static int build_neurons(Conditions *cs, const ConditionSpec *spec, const ModelConfig *cfg, const float *means,
                         char *err) {
    Condition *c = condition_add(cs, cfg->n_layer, "", -1);
    if (!c) return err_set(err, "out of memory");
    snprintf(c->label, sizeof c->label, "neurons %.80s", spec->list);
    if (parse_neuron_list(spec->list, cfg, 0.0f, &c->edits, &c->n_edits, err)) return -1;
    if (means)
        for (int e = 0; e < c->n_edits; e++)
            c->edits[e].value = means[(size_t)c->edits[e].layer * cfg->n_inner + c->edits[e].neuron];
    return 0;
}

/* --sweep neurons --neurons LIST: one condition per listed neuron. */
static int build_neuron_sweep(Conditions *cs, const ConditionSpec *spec, const ModelConfig *cfg, const float *means,
                              char *err) {
    NeuronEdit *all = NULL;
    int n = 0;
    if (parse_neuron_list(spec->list, cfg, 0.0f, &all, &n, err)) return -1;
    for (int i = 0; i < n; i++) {
        char label[48];
        snprintf(label, sizeof label, "neuron %d:%d", all[i].layer, all[i].neuron);
        Condition *c = condition_add(cs, cfg->n_layer, label, all[i].layer);
        if (!c || !(c->edits = malloc(sizeof *c->edits))) {
            free(all);
            return err_set(err, "out of memory");
        }
        c->edits[0] = all[i];
        if (means) c->edits[0].value = means[(size_t)all[i].layer * cfg->n_inner + all[i].neuron];
        c->n_edits = 1;
    }
    free(all);
    return 0;
}

/* --sweep layers: one condition per layer. */
static int build_sweep(Conditions *cs, const ModelConfig *cfg, const float *means, uint8_t *mask, char *err) {
    for (int l = 0; l < cfg->n_layer; l++) {
        char label[32];
        snprintf(label, sizeof label, "layer %d", l);
        Condition *c = condition_add(cs, cfg->n_layer, label, l);
        if (!c) return err_set(err, "out of memory");
        memset(mask, 0, (size_t)cfg->n_layer);
        mask[l] = 1;
        if (condition_layers(c, cfg, mask, means, err)) return -1;
    }
    return 0;
}

int conditions_build(Conditions *cs, const ConditionSpec *spec, const ModelConfig *cfg, const float *means,
                     char *err) {
    uint8_t *mask = calloc((size_t)cfg->n_layer, 1);
    if (!mask) return err_set(err, "out of memory");
    int rc;
    switch (spec->kind) {
    case COND_NO_FFN:
    case COND_LAYERS: rc = build_layers(cs, spec, cfg, means, mask, err); break;
    case COND_NEURONS: rc = build_neurons(cs, spec, cfg, means, err); break;
    case COND_SWEEP_LAYERS: rc = build_sweep(cs, cfg, means, mask, err); break;
    case COND_SWEEP_NEURONS: rc = build_neuron_sweep(cs, spec, cfg, means, err); break;
    default: rc = err_set(err, "unknown condition kind");
    }
    free(mask);
    if (rc) return -1;
    for (int i = 0; i < cs->n; i++) {
        Condition *c = &cs->c[i];
        c->hooks = (ForwardHooks){.remove_ffn = c->remove, .edits = c->edits, .n_edits = c->n_edits};
    }
    return 0;
}

void conditions_layers_needed(const Conditions *cs, int n_layer, uint8_t *need) {
    for (int i = 0; i < cs->n; i++) {
        for (int l = 0; l < n_layer; l++) need[l] |= cs->c[i].layers[l];
        for (int e = 0; e < cs->c[i].n_edits; e++) need[cs->c[i].edits[e].layer] = 1;
    }
}

/* ---- measurement --------------------------------------------------------- */

/* Appends n effects of one window to c, their positions moved from the
 * window to the document (offset = the window's first token there). */
static int condition_keep(Condition *c, const TokenEffect *eff, int n, int doc, int offset) {
    if (c->n_eff + (size_t)n > c->cap_eff) {
        size_t cap = c->cap_eff ? c->cap_eff * 2 : 4096;
        while (cap < c->n_eff + (size_t)n) cap *= 2;
        TokenEffect *e = realloc(c->eff, sizeof *e * cap);
        if (!e) return -1;
        c->eff = e;
        int32_t *d = realloc(c->eff_doc, sizeof *d * cap);
        if (!d) return -1;
        c->eff_doc = d;
        c->cap_eff = cap;
    }
    for (int i = 0; i < n; i++) {
        c->eff[c->n_eff] = eff[i];
        c->eff[c->n_eff].pos += offset; /* window index -> document position */
        c->eff_doc[c->n_eff++] = doc;
    }
    return 0;
}

/* The state of conditions_measure, for its per-window step. */
typedef struct {
    Conditions *cs;
    Ablator *a;
    int keep;
    TokenEffect *eff;
} MeasureJob;

/* Every condition on one window: the baseline once, then each condition. */
static int measure_window(void *user, const int32_t *ids, int len, int from, int doc, int offset, char *err) {
    MeasureJob *j = user;
    if (ablator_baseline(j->a, ids, len, from, err)) return -1;
    for (int c = 0; c < j->cs->n; c++) {
        Condition *cd = &j->cs->c[c];
        if (ablator_measure(j->a, &cd->hooks, j->eff, &cd->tot, err)) return -1;
        if (j->keep && !cd->skip_tokens && condition_keep(cd, j->eff, ablator_count(j->a), doc, offset))
            return err_set(err, "out of memory");
    }
    return 0;
}

int windows_each(DocSource *src, int ctx, WindowFn fn, void *user, int n_conditions, AblateProgressFn progress,
                 void *pu, AblateCount *count, char *err) {
    Window *win = NULL;
    int nwin_cap = 0, rc = -1, got, n = 0, doc = 0, bos = doc_source_bos(src);
    int32_t *ids = NULL;
    AblateProgress p = {.n_docs = doc_source_count(src), .n_conditions = n_conditions};
    double t0 = now_sec();
    while ((got = doc_source_next(src, &ids, &n, &doc, err)) == 1) {
        int nw = windows_count(n, ctx);
        if (nw > nwin_cap) {
            Window *g = realloc(win, sizeof *g * (size_t)nw);
            if (!g) {
                err_set(err, "out of memory");
                goto done;
            }
            win = g;
            nwin_cap = nw;
        }
        windows_plan(n, ctx, win);
        p.n_windows = nw;
        for (int w = 0; w < nw; w++) {
            const Window *wd = &win[w];
            int from = wd->first_new - wd->start;
            if (from < 1) from = 1;
            if (from < wd->len) {
                if (fn(user, ids + wd->start, wd->len, from, doc, wd->start - bos, err)) goto done;
                p.tokens += wd->len - from;
            }
            p.window = w + 1;
            p.seconds = now_sec() - t0;
            if (progress) progress(pu, &p);
        }
        p.docs_done++;
    }
    if (got < 0) goto done;
    *count = (AblateCount){.documents = p.docs_done, .tokens = p.tokens, .seconds = now_sec() - t0};
    rc = 0;
done:
    free(win);
    return rc;
}

int conditions_measure(Conditions *cs, Ablator *a, DocSource *src, int ctx, int keep, AblateProgressFn progress,
                       void *user, AblateCount *count, char *err) {
    MeasureJob j = {cs, a, keep, malloc(sizeof(TokenEffect) * (size_t)ctx)};
    if (!j.eff) return err_set(err, "out of memory");
    int rc = windows_each(src, ctx, measure_window, &j, cs->n, progress, user, count, err);
    free(j.eff);
    return rc;
}
