/* backward.h — the gradient of a loss with respect to the FFN
 * post-activations of the layers from `lowest` up, by backpropagation: what
 * attribution patching (a first-order estimate of every neuron's ablation
 * effect at once) needs.
 *
 *   FfnGrad *g = ffn_grad_new(m, lowest, err);     // scratch for n_positions
 *   ffn_grad_forward(g, ids, T, logits, err);      // the plain forward, logits [T x V]
 *   ... turn logits into dLoss/dlogits in place (rows outside the loss 0) ...
 *   ffn_grad_backward(g, logits, fn, user, err);   // fn(user, l, act, grad, T, F)
 *   ffn_grad_free(g);                              //   for l = L-1 .. lowest
 *
 * The forward is model_forward itself (the same logits, bit for bit); it
 * keeps the post-activation of every layer from `lowest` up and the
 * residual stream before and between the blocks of every layer above
 * `lowest` and before ln_f. The backward recomputes each of those layers'
 * layer norms, qkv, attention weights and FFN pre-activations from them and
 * propagates input gradients only (no weight gradients): dlogits ->
 * unembedding -> ln_f -> layers L-1 .. lowest+1 (FFN block, then attention
 * block, each with its residual branch) -> c_proj of `lowest`'s FFN. The
 * gradient of a layer's post-activation is c_proj's input gradient, there
 * on the way: every layer from `lowest` up costs one backward pass.
 * All in float, on the compute team (parallel.h), cut as the forward is
 * (matmul blocks fixed by shape, attention by heads, layer norms by rows):
 * the same bits for any team size.
 *
 * Ownership: FfnGrad borrows the Model (whose scratch the forward uses) and
 * owns its buffers. */
#ifndef PROBE_BACKWARD_H
#define PROBE_BACKWARD_H

#include <stdint.h>

#include "model.h"

typedef struct FfnGrad FfnGrad;

/* For the post-activations of layers lowest..n_layer-1. */
FfnGrad *ffn_grad_new(Model *m, int lowest, char *err);
void ffn_grad_free(FfnGrad *g); /* accepts NULL */

/* The plain forward pass on ids[0..T) writing logits [T x V]; keeps the
 * post-activations and what the backward needs. */
int ffn_grad_forward(FfnGrad *g, const int32_t *ids, int T, float *logits, char *err);

/* A layer's post-activation act and dLoss/d act, both [T x F], valid
 * during the call. */
typedef void (*FfnGradFn)(void *user, int layer, const float *act, const float *grad, int T, int F);

/* dlogits [T x V]: dLoss/dlogits of the window just run forward (may be
 * the logits buffer). Calls fn for layers n_layer-1 down to lowest. */
int ffn_grad_backward(FfnGrad *g, const float *dlogits, FfnGradFn fn, void *user, char *err);

#endif
