/* report_replay.h — exact activations of chosen tokens of a recorded run,
 * for `probe report`'s token heatmaps: the context windows that own them run
 * again exactly as `probe record` ran them (same documents, windows, model),
 * so every value is the recorded one bit for bit (a top example's own token
 * gets exactly its neuron_examples.value).
 *
 *   ReplayWant w[] = {{.doc = 3, .pos = 17, .layer = 5, .neuron = 123}, ...};
 *   ReplayStats st;
 *   report_replay(store, run, model, ctx, w, n, &st, err);
 *   // w[i].done == 1: w[i].value is the activation of neuron 5:123 at token 17 of document 3
 *
 * A token's value comes from the one window that owns it (corpus.h:
 * windows_plan), never from a window that only sees it as context. Each
 * window that owns a wanted token runs once, whatever the number of wanted
 * neurons, up to the deepest wanted layer only (ForwardHooks.stop_after).
 * Wants whose document or position the run lacks stay done == 0. */
#ifndef PROBE_REPORT_REPLAY_H
#define PROBE_REPORT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "store.h"

typedef struct {
    int doc, pos;      /* documents.doc_index, tokens.pos */
    int layer, neuron;
    float value;       /* written when done */
    int done;
} ReplayWant;

typedef struct {
    int windows;      /* windows run */
    double seconds;
} ReplayStats;

/* Fills w[0..n) (their order is kept). ctx: the run's context window.
 * 0, or -1 with err. */
int report_replay(Store *s, int64_t run, Model *m, int ctx, ReplayWant *w, size_t n, ReplayStats *stats, char *err);

#endif
