/* report_replay.c — see report_replay.h. */
#include "report_replay.h"

#include <stdlib.h>

#include "corpus.h"
#include "doc_source.h"
#include "util.h"

static const ReplayWant *sort_base;

static int by_doc_pos(const void *a, const void *b) {
    const ReplayWant *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    if (x->doc != y->doc) return x->doc < y->doc ? -1 : 1;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return 0;
}

/* The wants owned by the window being run: w[idx[lo..hi)], all of one
 * document, token t of the window = position t + pos0. */
typedef struct {
    ReplayWant *w;
    const size_t *idx;
    size_t lo, hi;
    int pos0;
} Catch;

static void catch_observe(void *user, int layer, const float *act, int T, int F) {
    Catch *c = user;
    for (size_t k = c->lo; k < c->hi; k++) {
        ReplayWant *x = &c->w[c->idx[k]];
        int t = x->pos - c->pos0;
        if (x->layer != layer || t < 0 || t >= T || x->neuron < 0 || x->neuron >= F) continue;
        x->value = act[(size_t)t * F + x->neuron];
        x->done = 1;
    }
}

int report_replay(Store *s, int64_t run, Model *m, int ctx, ReplayWant *w, size_t n, ReplayStats *stats, char *err) {
    double t0 = now_sec();
    *stats = (ReplayStats){0, 0};
    for (size_t i = 0; i < n; i++) w[i].done = 0;
    if (n == 0) return 0;
    int L = m->cfg.n_layer, rc = -1, got, nt, doc, win_cap = 0;
    size_t *idx = malloc(sizeof *idx * n);
    uint8_t *capture = calloc((size_t)L, 1);
    Window *win = NULL;
    DocSource *src = NULL;
    int32_t *ids;
    if (!idx || !capture) {
        err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) idx[i] = i;
    sort_base = w;
    qsort(idx, n, sizeof *idx, by_doc_pos);
    if (!(src = doc_source_run(s, run, err))) goto done;
    int bos = doc_source_bos(src);
    size_t k = 0;
    while (k < n && (got = doc_source_next(src, &ids, &nt, &doc, err)) == 1) {
        while (k < n && w[idx[k]].doc < doc) k++;
        size_t end = k;
        while (end < n && w[idx[end]].doc == doc) end++;
        if (end == k) continue;
        int nw = windows_count(nt, ctx);
        if (nw > win_cap) {
            Window *g = realloc(win, sizeof *g * (size_t)nw);
            if (!g) {
                err_set(err, "out of memory");
                goto done;
            }
            win = g;
            win_cap = nw;
        }
        windows_plan(nt, ctx, win);
        size_t a = k;
        for (int i = 0; i < nw && a < end; i++) {
            /* the positions this window owns: [own, stop) as tokens.pos */
            int own, stop;
            window_owned(&win[i], bos, &own, &stop);
            own -= bos;
            stop -= bos;
            while (a < end && w[idx[a]].pos < own) a++; /* not a position of the document */
            size_t b = a;
            while (b < end && w[idx[b]].pos < stop) b++;
            if (b == a) continue;
            int deepest = -1;
            for (int l = 0; l < L; l++) capture[l] = 0;
            for (size_t q = a; q < b; q++) {
                int l = w[idx[q]].layer;
                if (l >= 0 && l < L) {
                    capture[l] = 1;
                    if (l > deepest) deepest = l;
                }
            }
            if (deepest >= 0) {
                Catch c = {.w = w, .idx = idx, .lo = a, .hi = b, .pos0 = win[i].start - bos};
                ForwardHooks hooks = {
                    .capture = capture, .observe = catch_observe, .user = &c, .stop_after = deepest + 1};
                if (model_forward(m, ids + win[i].start, win[i].len, &hooks, NULL, err)) goto done;
                stats->windows++;
            }
            a = b;
        }
        k = end;
    }
    if (k < n && got < 0) goto done;
    rc = 0;
done:
    stats->seconds = now_sec() - t0;
    doc_source_free(src);
    free(win);
    free(capture);
    free(idx);
    return rc;
}
