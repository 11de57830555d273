/* explain.h — direct logit attribution: one logit of one position split
 * into what each block wrote into the residual stream, with ln_f's scale
 * frozen (TransformerLens's convention).
 *
 *   Explanation e;
 *   if (explain_run(m, ids, T, pos, -1, 5, &e, err)) ...;   // -1: the top prediction
 *   // e.parts[i].value add up to e.sum; e.logit is the forward pass's own
 *   explain_free(&e);
 *
 * The math, at position pos, for target token t: x is the residual stream
 * that enters ln_f, u = W_U[t], gamma/beta are ln_f's weight and bias and
 * sigma = sqrt(var(x) + eps) is ln_f's actual scale there. The logit is
 *   sum_i ((x_i - mean(x)) / sigma * gamma_i + beta_i) * u_i,
 * linear in x once sigma is fixed. x is the sum of the embeddings and of
 * every block's output (each block's part is the difference of the residual
 * stream after and before it, observed in the one forward pass: model.h
 * ResidObserver), so with f(c) = ((c - mean(c)) . (gamma * u)) / sigma the
 * logit is sum_c f(c) + beta . u, exactly up to rounding. A neuron j of an
 * FFN layer writes act_j * v_j (v_j its c_proj row), so its part is
 * act_j * f(v_j); the layer's c_proj bias is f(b). Everything is computed
 * in double from the float residuals and activations.
 *
 * Ownership: explain_run fills *e with malloc'd arrays that explain_free
 * releases (it accepts a zeroed Explanation). */
#ifndef PROBE_EXPLAIN_H
#define PROBE_EXPLAIN_H

#include <stdint.h>

#include "model.h"

typedef enum {
    EXPLAIN_EMBED,   /* token + position embeddings (hook_resid_pre of layer 0) */
    EXPLAIN_ATTN,    /* layer's attention output incl. c_proj bias (hook_attn_out) */
    EXPLAIN_FFN,     /* layer's FFN output incl. c_proj bias (hook_mlp_out) */
    EXPLAIN_LNF_BIAS /* beta . u */
} ExplainKind;

typedef struct {
    ExplainKind kind;
    int layer;    /* -1 for EXPLAIN_EMBED and EXPLAIN_LNF_BIAS */
    double value; /* contribution to the logit */
} ExplainPart;

typedef struct {
    int layer, neuron;
    float act;    /* post-activation at pos (blocks.L.mlp.hook_post) */
    double value; /* act * f(v_neuron): contribution to the logit */
} ExplainNeuron;

typedef struct {
    int pos, target, predicted; /* position, explained token, the model's argmax there */
    int n_layer, top_k;
    double logit;     /* the target's logit from the float forward pass */
    double sum;       /* sum of parts[].value, in double */
    double sigma;     /* ln_f's scale at pos: sqrt(var(x) + eps) */
    int n_parts;      /* 2 + 2 * n_layer: embed, (attn L, ffn L) for each L, ln_f bias */
    ExplainPart *parts;
    ExplainNeuron *neurons; /* [n_layer x top_k]: each layer's top neurons by |value|, largest first */
    double *ffn_bias;       /* [n_layer] f(c_proj bias) */
    double *ffn_rest;       /* [n_layer] the FFN part minus its bias and its top neurons:
                               every other neuron (plus the matmul's float rounding) */
} Explanation;

/* Runs ids[0..pos] through m (positions after pos cannot change the
 * prediction at pos) and explains the logit of `target` at pos (target < 0:
 * the model's top prediction there). 1 <= top_k <= n_inner. Returns 0 and
 * fills *e, or -1 with a message in err (*e then holds nothing to free). */
int explain_run(Model *m, const int32_t *ids, int T, int pos, int target, int top_k, Explanation *e,
                char *err);
void explain_free(Explanation *e); /* accepts a zeroed Explanation */

/* The part's name: "embed", "attn 3", "ffn 3", "ln_f bias" into buf[cap]; returns buf. */
const char *explain_part_name(const ExplainPart *p, char *buf, int cap);

#endif
