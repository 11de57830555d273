/* conditions.h — the conditions of one `probe ablate`: what each removes or
 * edits, and their measurement over every window of a document source.
 *
 *   ConditionSpec spec = {COND_SWEEP_LAYERS, NULL};   // --sweep layers
 *   Conditions cs = {0};
 *   conditions_build(&cs, &spec, cfg, NULL, err);     // zero mode; or means [L x F]
 *   AblateCount count;
 *   conditions_measure(&cs, ablator, src, ctx, keep_effects, on_progress, ud, &count, err);
 *   ... cs.c[i].label, .tot (ablate_figures), .eff / .eff_doc when kept ...
 *   conditions_free(&cs);
 *
 * Kinds (exactly one per invocation):
 *   COND_NO_FFN        one condition: every layer's FFN ablated ("no-ffn")
 *   COND_LAYERS        one condition: the FFN of the layers in list, e.g.
 *                      "3,5-7" ("layer 3" / "layers 3,5-7")
 *   COND_NEURONS       one condition: the neurons in list, e.g. "5:123,5:456"
 *                      ("neurons 5:123,5:456")
 *   COND_SWEEP_LAYERS  one condition per layer ("layer 0", "layer 1", ...)
 *   COND_SWEEP_NEURONS one condition per neuron in list, each alone
 *                      ("neuron 5:123", "neuron 5:456")
 * Zero mode (means == NULL): an ablated layer's FFN output is removed from
 * the residual stream, an ablated neuron's post-activation set to 0. Mean
 * mode: every ablated neuron (all neurons of an ablated layer) is set to
 * its mean, means[layer * n_inner + neuron].
 *
 * Ownership: Conditions owns every array of its conditions; conditions_free
 * releases them (and accepts a zeroed struct). */
#ifndef PROBE_CONDITIONS_H
#define PROBE_CONDITIONS_H

#include <stddef.h>
#include <stdint.h>

#include "ablate.h"
#include "doc_source.h"
#include "model.h"

typedef enum { COND_NO_FFN, COND_LAYERS, COND_NEURONS, COND_SWEEP_LAYERS, COND_SWEEP_NEURONS } ConditionKind;

/* What the user asked for: a kind and, for COND_LAYERS / COND_NEURONS /
 * COND_SWEEP_NEURONS, its
 * list as given (borrowed). */
typedef struct {
    ConditionKind kind;
    const char *list;
} ConditionSpec;

/* The name of a kind as ablations.kind stores it: "no-ffn", "layers",
 * "neurons" (also COND_SWEEP_NEURONS: its conditions are neuron ablations)
 * or "sweep-layers". */
const char *condition_kind_name(ConditionKind kind);

typedef struct {
    char label[96];    /* e.g. "layer 3", "neurons 5:123" */
    int layer;         /* the single ablated layer, or -1 */
    uint8_t *layers;   /* [L] layers whose FFN is ablated (removed or at its mean) */
    uint8_t *remove;   /* [L] layers whose FFN output is removed (zero mode) */
    NeuronEdit *edits; /* [n_edits] */
    int n_edits;
    ForwardHooks hooks; /* remove + edits, for model_forward */
    AblateTotals tot;   /* summed by conditions_measure */
    int skip_tokens;    /* 1: never keep per-token effects (a neuron sweep's
                           many verified neurons beyond its first few) */
    /* per-token effects, kept only when conditions_measure is asked to */
    TokenEffect *eff;   /* [n_eff], pos = position in the document */
    int32_t *eff_doc;   /* [n_eff] document of each effect */
    size_t n_eff, cap_eff;
} Condition;

typedef struct {
    Condition *c; /* [n] */
    int n;
} Conditions;

/* Appends the conditions of spec to cs (which starts zeroed), with
 * cfg->n_layer-long masks; means is NULL (zero mode) or [n_layer x n_inner].
 * A bad list is an error naming the bad item (intervention.h), e.g. "bad
 * layer '9': layer out of range 0..5": the caller's usage error. 0, or -1
 * with err (cs then holds what was built; free it). */
int conditions_build(Conditions *cs, const ConditionSpec *spec, const ModelConfig *cfg, const float *means,
                     char *err);
void conditions_free(Conditions *cs); /* accepts a zeroed struct */

/* Sets need[l] = 1 (need has n_layer entries, not cleared) for every layer
 * any condition ablates or edits a neuron of: the layers whose neuron means
 * mean mode needs. */
void conditions_layers_needed(const Conditions *cs, int n_layer, uint8_t *need);

/* Where a measurement stands, for a progress display. */
typedef struct {
    int docs_done, n_docs;   /* documents finished, in the source */
    int window, n_windows;   /* windows of the current document finished, in it */
    int64_t tokens;          /* predicted tokens so far */
    double seconds;          /* since the start */
    int n_conditions;
} AblateProgress;
typedef void (*AblateProgressFn)(void *user, const AblateProgress *p);

/* What a measurement covered. */
typedef struct {
    int documents;
    int64_t tokens; /* predicted tokens (per condition) */
    double seconds;
} AblateCount;

/* Runs every condition on every window (ctx tokens, corpus.h) of every
 * document of src: per window one baseline forward shared by all
 * conditions, adding to each condition's tot; with keep, also appends each
 * token's effect to the condition's eff / eff_doc. Token positions are as
 * `probe record` stores them: the index in the document, not counting the
 * <|endoftext|> placed before it. progress (may be NULL) is called after
 * every window. 0 and *count, or -1 with err. */
/* One window of a document: ids[0..len) run from position 0, tokens
 * from..len-1 predicted (1 <= from < len); offset = the document position
 * (as `probe record` counts it) of ids[0]. 0, or -1 with err. */
typedef int (*WindowFn)(void *user, const int32_t *ids, int len, int from, int doc, int offset, char *err);

/* Calls fn on every window (ctx tokens, corpus.h) of every document of src
 * that predicts a token, in order, and progress (may be NULL; n_conditions
 * is only shown) after every window; fills *count. 0, or -1 with err. */
int windows_each(DocSource *src, int ctx, WindowFn fn, void *user, int n_conditions, AblateProgressFn progress,
                 void *pu, AblateCount *count, char *err);

int conditions_measure(Conditions *cs, Ablator *a, DocSource *src, int ctx, int keep, AblateProgressFn progress,
                       void *user, AblateCount *count, char *err);

#endif
