/* backward.h — the gradient of a loss with respect to one layer's FFN
 * post-activation, by backpropagation through the layers above it: what
 * attribution patching (a first-order estimate of every neuron's ablation
 * effect at once) needs.
 *
 *   FfnGrad *g = ffn_grad_new(m, layer, err);      // scratch for n_positions
 *   ffn_grad_forward(g, ids, T, logits, err);      // the plain forward, logits [T x V]
 *   ... turn logits into dLoss/dlogits in place (rows outside the loss 0) ...
 *   ffn_grad_backward(g, logits, err);
 *   ffn_grad_act(g), ffn_grad_grad(g);             // [T x F]: a, dLoss/da
 *   ffn_grad_free(g);
 *
 * The forward is model_forward itself (the same logits, bit for bit); it
 * keeps the residual stream before and between the blocks of every layer
 * above `layer` and before ln_f. The backward recomputes each of those
 * layers' layer norms, qkv, attention weights and FFN pre-activations from
 * them (no more memory than two [T x C] per layer) and propagates input
 * gradients only (no weight gradients): dlogits -> unembedding -> ln_f ->
 * layers L-1 .. layer+1 (FFN block, then attention block, each with its
 * residual branch) -> c_proj of `layer`'s FFN, whose input is the
 * post-activation. All in float, on the compute team (parallel.h); the
 * gradient's bits may depend on the team size (the attention's per-head
 * products are whole-matrix sgemm calls; nothing downstream compares them
 * bit for bit).
 *
 * Ownership: FfnGrad borrows the Model (whose scratch the forward uses) and
 * owns its buffers. */
#ifndef PROBE_BACKWARD_H
#define PROBE_BACKWARD_H

#include <stdint.h>

#include "model.h"

typedef struct FfnGrad FfnGrad;

/* For the post-activation of layer `layer` (0 <= layer < n_layer). */
FfnGrad *ffn_grad_new(Model *m, int layer, char *err);
void ffn_grad_free(FfnGrad *g); /* accepts NULL */

/* The plain forward pass on ids[0..T) writing logits [T x V]; keeps the
 * layer's post-activation and what the backward needs. */
int ffn_grad_forward(FfnGrad *g, const int32_t *ids, int T, float *logits, char *err);

/* dlogits [T x V]: dLoss/dlogits of the window just run forward (may be
 * the logits buffer, overwritten). Fills the gradient ffn_grad_grad. */
int ffn_grad_backward(FfnGrad *g, const float *dlogits, char *err);

/* [T x F] of the last window: the post-activation (after the forward) and
 * dLoss/d post-activation (after the backward). */
const float *ffn_grad_act(const FfnGrad *g);
const float *ffn_grad_grad(const FfnGrad *g);

#endif
