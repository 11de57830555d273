/* ablate.h — what a model loses under an intervention: next-token
 * cross-entropy, KL(baseline || ablated) over the full vocabulary and top-1
 * agreement with the baseline's prediction, per token and summed.
 *
 *   Ablator *a = ablator_new(m, ctx, err);        // buffers for the largest window
 *   for each window (ids[0..T), tokens from..T-1 predicted):
 *       ablator_baseline(a, ids, T, from, err);   // one plain forward, kept
 *       for each condition:
 *           ablator_measure(a, &hooks, effects, &totals[c], err);
 *   ablate_figures(&totals[c], &fig);
 *   ablator_free(a);
 *
 * Token j of a window (from <= j < T, from >= 1) is predicted from row j-1
 * of the logits. The baseline of a window is computed once and shared by
 * every condition: its logits, probabilities, log-sum-exp and argmax per row.
 * All sums are in double. A condition whose hooks ask for nothing gives the
 * plain forward bit for bit, hence KL exactly 0 and agreement exactly 1.
 *
 * Ownership: the Ablator borrows the Model and owns its buffers (three of
 * [ctx x V] floats); it keeps a pointer to the ids of the current window. */
#ifndef PROBE_ABLATE_H
#define PROBE_ABLATE_H

#include <stdint.h>

#include "model.h"

/* Running sums over predicted tokens (nats). */
typedef struct {
    int64_t n;        /* tokens */
    double base_nll;  /* sum of baseline cross-entropy */
    double abl_nll;   /* sum of ablated cross-entropy */
    double kl;        /* sum of KL(baseline || ablated) */
    double dloss_sq;  /* sum of squared per-token loss differences */
    int64_t agree;    /* tokens whose ablated argmax equals the baseline's */
} AblateTotals;

/* The effect on one predicted token. */
typedef struct {
    int32_t pos;      /* index of the predicted token in the window */
    int32_t token;    /* its id */
    double base_loss, abl_loss, kl;
    int32_t base_top, abl_top; /* argmax of each distribution */
} TokenEffect;

/* The reported figures of one condition. */
typedef struct {
    int64_t n;
    double base_ce, abl_ce;   /* mean cross-entropy, nats/token */
    double base_ppl, abl_ppl; /* exp of those */
    double dloss;             /* abl_ce - base_ce */
    double dloss_se;          /* its standard error: sd of the per-token
                                 differences / sqrt(n) (tokens treated as
                                 independent, so a lower bound) */
    double kl;                /* mean KL(baseline || ablated), nats/token */
    double agreement;         /* fraction of tokens with the same top-1 */
} AblateFigures;

typedef struct Ablator Ablator;

/* Buffers for windows of up to ctx tokens (1 <= ctx <= n_positions). */
Ablator *ablator_new(Model *m, int ctx, char *err);
void ablator_free(Ablator *a); /* accepts NULL */

/* From now on, each baseline also keeps the residual stream entering layer
 * `layer` (0 turns this off), and a condition whose edits and removals are
 * all in that layer or later runs from there (ForwardHooks.start_layer):
 * the same bits as the whole forward, for (n_layer - layer) / n_layer of
 * its layers. What a sweep of one layer's neurons saves. 0, or -1 with err
 * (out of memory, layer out of range). */
int ablator_start_at(Ablator *a, int layer, char *err);

/* Runs the plain forward on ids[0..T) and keeps what the conditions need for
 * the tokens from..T-1 (1 <= from <= T; from == T predicts nothing). ids
 * must stay valid until the next ablator_baseline. */
int ablator_baseline(Ablator *a, const int32_t *ids, int T, int from, char *err);

/* Runs the forward with hooks on the current window and compares it with
 * the baseline: fills effects[0..T-from) when effects != NULL and adds to
 * *tot. */
int ablator_measure(Ablator *a, const ForwardHooks *hooks, TokenEffect *effects, AblateTotals *tot,
                    char *err);

/* Tokens predicted in the current window (T - from). */
int ablator_count(const Ablator *a);

/* The reported figures of running sums t (all zero when t->n is 0). */
void ablate_figures(const AblateTotals *t, AblateFigures *f);


#endif
