/* model.c — the GPT-2 forward pass with FFN capture and interventions.
 *
 * Reads like the block diagram: embeddings, then per layer
 *   ln_1 -> c_attn -> causal attention -> c_proj -> +residual
 *   ln_2 -> c_fc -> GELU -> [edits] -> [observe] -> c_proj -> +residual
 * with the residual stream observable before, between and after the two
 * blocks (observe_resid), then ln_f and (optionally) the tied or untied
 * unembedding. All scratch memory is allocated once at load for
 * T = n_positions: no allocation per call or token. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "parallel.h"
#include "util.h"

int model_scratch_init(Model *m, char *err) {
    const ModelConfig *c = &m->cfg;
    size_t T = (size_t)c->n_positions, C = (size_t)c->n_embd, F = (size_t)c->n_inner;
    size_t B = PROBE_ATT_BLOCK < T ? PROBE_ATT_BLOCK : T;
    int slots = parallel_threads();
    size_t sizes[] = {T * C, T * C, T * 3 * C, (size_t)slots * B * T, T * C, T * F, T * C};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    float *mem = malloc(total * sizeof(float));
    if (!mem) return err_set(err, "out of memory allocating %zu MB of activations", total * 4 >> 20);
    float **ptrs[] = {&m->s.resid, &m->s.ln, &m->s.qkv, &m->s.att, &m->s.attn_out, &m->s.ffn, &m->s.final};
    float *p = mem;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    m->scratch_mem = mem;
    m->s.att_slots = slots;
    return 0;
}

void model_scratch_free(Model *m) {
    if (!m) return;
    free(m->scratch_mem);
    m->scratch_mem = NULL;
    memset(&m->s, 0, sizeof m->s);
}

int model_scratch_slots(const Model *m) { return m->s.att_slots; }

static void activation_forward(Activation a, float *x, size_t n) {
    switch (a) {
    case ACT_GELU_NEW: gelu_new_forward(x, n); break;
    case ACT_GELU: gelu_erf_forward(x, n); break;
    case ACT_RELU: relu_forward(x, n); break;
    }
}

/* Sets the edited neurons of `layer` in act [T x F]. Edits are few; a linear
 * scan per layer keeps the hot path free of any set-up. */
static void apply_edits(float *act, int T, int F, int layer, const NeuronEdit *edits, int n_edits) {
    for (int e = 0; e < n_edits; e++) {
        if (edits[e].layer != layer) continue;
        int n = edits[e].neuron;
        float v = edits[e].value;
        for (int t = 0; t < T; t++) act[(size_t)t * F + n] = v;
    }
}

int model_forward(Model *m, const int32_t *ids, int T, const ForwardHooks *hooks, float *logits,
                  char *err) {
    const ModelConfig *cfg = &m->cfg;
    int C = cfg->n_embd, F = cfg->n_inner, L = cfg->n_layer, V = cfg->vocab_size;
    if (T < 1 || T > cfg->n_positions)
        return err_set(err, "window of %d tokens outside 1..%d (n_positions)", T, cfg->n_positions);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= V)
            return err_set(err, "token id %d at position %d outside the vocabulary 0..%d", ids[t], t,
                           V - 1);
    static const ForwardHooks none;
    if (!hooks) hooks = &none;
    for (int e = 0; e < hooks->n_edits; e++)
        if (hooks->edits[e].layer < 0 || hooks->edits[e].layer >= L || hooks->edits[e].neuron < 0 ||
            hooks->edits[e].neuron >= F)
            return err_set(err, "neuron edit %d:%d out of range", hooks->edits[e].layer,
                           hooks->edits[e].neuron);
    if (hooks->stop_after > 0 && logits) return err_set(err, "a forward pass that stops early has no logits");
    const int start = hooks->start_layer > 0 ? hooks->start_layer : 0;
    if (start) {
        if (start >= L || !hooks->start_resid)
            return err_set(err, "a forward pass from layer %d needs that layer's residual stream", start);
        for (int e = 0; e < hooks->n_edits; e++)
            if (hooks->edits[e].layer < start)
                return err_set(err, "neuron edit %d:%d is below the starting layer %d", hooks->edits[e].layer,
                               hooks->edits[e].neuron, start);
        for (int l = 0; l < start && hooks->remove_ffn; l++)
            if (hooks->remove_ffn[l]) return err_set(err, "layer %d's FFN is removed below the starting layer %d", l, start);
    }

    Scratch *s = &m->s;
    /* R: the rows computed (all T unless a prefix is enough; rows past R
     * keep stale values and nothing computed reads them: attention's query
     * rows read keys before them only) */
    const int R = hooks->rows_needed > 0 && !logits ? prefix_rows(T, hooks->rows_needed) : T;
    /* token + position embeddings, or the given stream at the first layer */
    if (start) memcpy(s->resid, hooks->start_resid, sizeof(float) * (size_t)R * C);
    for (int t = 0; t < R && !start; t++) {
        const float *te = m->wte + (size_t)ids[t] * C, *pe = m->wpe + (size_t)t * C;
        float *r = s->resid + (size_t)t * C;
        if (m->wte_by_read) { /* model_load.c says why */
            if (st_read(m->st, te, sizeof(float) * (size_t)C, r, err)) return -1;
            te = r;
        }
        for (int i = 0; i < C; i++) r[i] = te[i] + pe[i];
    }

    for (int l = start; l < L; l++) {
        const LayerParams *p = &m->layers[l];
        if (hooks->observe_resid) hooks->observe_resid(hooks->user, l, RESID_PRE, s->resid, R, C);
        /* attention block: resid += c_proj(attn(ln_1(resid))) */
        layernorm_forward(s->ln, s->resid, p->ln1_w, p->ln1_b, cfg->layer_norm_epsilon, R, C);
        matmul_forward_rows(s->qkv, s->ln, p->qkv_w, p->qkv_b, T, R, C, 3 * C, 0);
        attention_forward(s->attn_out, s->att, s->att_slots, s->qkv, R, C, cfg->n_head, config_attn_scale(cfg, l));
        matmul_forward_rows(s->resid, s->attn_out, p->attn_proj_w, p->attn_proj_b, T, R, C, C, 1);
        if (hooks->observe_resid) hooks->observe_resid(hooks->user, l, RESID_MID, s->resid, R, C);

        /* FFN block: resid += c_proj(act(c_fc(ln_2(resid)))) */
        layernorm_forward(s->ln, s->resid, p->ln2_w, p->ln2_b, cfg->layer_norm_epsilon, R, C);
        matmul_forward_rows(s->ffn, s->ln, p->fc_w, p->fc_b, T, R, C, F, 0);
        activation_forward(cfg->activation, s->ffn, (size_t)R * F);
        if (hooks->n_edits) apply_edits(s->ffn, R, F, l, hooks->edits, hooks->n_edits);
        if (hooks->observe && hooks->capture && hooks->capture[l])
            hooks->observe(hooks->user, l, s->ffn, R, F);
        if (hooks->stop_after > 0 && l + 1 >= hooks->stop_after) return 0;
        if (!(hooks->remove_ffn && hooks->remove_ffn[l]))
            matmul_forward_rows(s->resid, s->ffn, p->proj_w, p->proj_b, T, R, F, C, 1);
        if (hooks->observe_resid) hooks->observe_resid(hooks->user, l, RESID_POST, s->resid, R, C);
    }

    layernorm_forward(s->final, s->resid, m->lnf_w, m->lnf_b, cfg->layer_norm_epsilon, R, C);
    if (logits) matmul_nt_forward(logits, s->final, m->lm_head, T, C, V);
    return 0;
}
