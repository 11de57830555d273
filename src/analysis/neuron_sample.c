/* neuron_sample.c — see neuron_sample.h. */
#include "neuron_sample.h"

#include <stdlib.h>

#include "corpus.h"
#include "doc_source.h"
#include "util.h"

typedef struct {
    int neuron, own_off, n_own, first_pos, doc, per_band, n_bands;
    SampleBand *bands;
} Sampler;

static void sample_observe(void *user, int layer, const float *act, int T, int F) {
    Sampler *sp = user;
    (void)layer;
    (void)T;
    for (int t = 0; t < sp->n_own; t++) {
        float v = act[(size_t)(sp->own_off + t) * F + sp->neuron];
        for (int b = 0; b < sp->n_bands; b++) {
            SampleBand *band = &sp->bands[b];
            if (band->n < sp->per_band && v >= band->lo && v < band->hi) {
                band->doc[band->n] = sp->doc;
                band->pos[band->n] = sp->first_pos + t;
                band->value[band->n] = v;
                band->n++;
            }
        }
    }
}

int neuron_sample_bands(Store *s, int64_t run, Model *m, int ctx, int layer, int neuron, int max_windows,
                        SampleBand *bands, int n_bands, int per_band, char *err) {
    if (per_band > SAMPLE_PER_BAND_MAX) per_band = SAMPLE_PER_BAND_MAX;
    for (int b = 0; b < n_bands; b++) bands[b].n = 0;
    DocSource *src = doc_source_run(s, run, err);
    if (!src) return -1;
    int n_docs = doc_source_count(src), bos = doc_source_bos(src);
    int every = n_docs > max_windows ? n_docs / max_windows : 1, got, n, doc, rc = -1, seen = 0;
    int32_t *ids;
    uint8_t *capture = calloc((size_t)m->cfg.n_layer, 1);
    Window *win = NULL;
    int win_cap = 0;
    if (!capture) {
        err_set(err, "out of memory");
        goto done;
    }
    capture[layer] = 1;
    Sampler sp = {.neuron = neuron, .per_band = per_band, .n_bands = n_bands, .bands = bands};
    ForwardHooks hooks = {.capture = capture, .observe = sample_observe, .user = &sp, .stop_after = layer + 1};
    while ((got = doc_source_next(src, &ids, &n, &doc, err)) == 1) {
        if (seen++ % every) continue;
        int nw = windows_count(n, ctx);
        if (nw == 0) continue;
        if (nw > win_cap) {
            Window *w = realloc(win, sizeof *w * (size_t)nw);
            if (!w) {
                err_set(err, "out of memory");
                goto done;
            }
            win = w;
            win_cap = nw;
        }
        windows_plan(n, ctx, win);
        int own_start, end;
        window_owned(&win[0], bos, &own_start, &end);
        if (end <= own_start) continue;
        sp.own_off = own_start - win[0].start;
        sp.n_own = end - own_start;
        sp.first_pos = own_start - bos;
        sp.doc = doc;
        if (model_forward(m, ids + win[0].start, win[0].len, &hooks, NULL, err)) goto done;
        int full = 1;
        for (int b = 0; b < n_bands; b++) full &= bands[b].n >= per_band;
        if (full) break;
    }
    if (got < 0) goto done;
    rc = 0;
done:
    free(capture);
    free(win);
    doc_source_free(src);
    return rc;
}
