/* model.h — a GPT-2 model loaded from a Hugging Face directory, and its
 * forward pass with FFN capture and interventions.
 *
 *   Model *m = model_load("models/demo", err);  // config.json, model.safetensors,
 *                                               // vocab.json, merges.txt
 *   ForwardHooks h = { .capture = want, .observe = fn, .user = ctx };
 *                   // .observe_resid = fn2: the residual stream too
 *   model_forward(m, ids, T, &h, logits, err);  // logits [T x V] or NULL
 *   model_free(m);
 *
 * Legend: T tokens in the window, C = n_embd, NH = n_head, HS = C/NH,
 * F = n_inner (FFN width), L = n_layer, V = vocab_size, P = n_positions.
 * Weights follow HF's Conv1D orientation: a linear layer's weight is
 * [in x out] row-major, so y = x @ W + b.
 *
 * Ownership: the Model owns its safetensors map, the converted weights (F16
 * and BF16 are converted to F32 once at load; F32 is used in place from the
 * mmap), its tokenizer and all scratch memory, sized once at load for T = P. */
#ifndef PROBE_MODEL_H
#define PROBE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"
#include "tokenizer.h"

typedef enum { ACT_GELU_NEW, ACT_GELU, ACT_RELU } Activation;

typedef struct {
    int n_layer, n_embd, n_head, n_inner, n_positions, vocab_size;
    float layer_norm_epsilon;
    Activation activation;
    char activation_name[32];
    int scale_attn_weights; /* scores / sqrt(head size) (GPT2Config default true) */
    int scale_attn_by_layer; /* scores / (layer + 1) as well (scale_attn_by_inverse_layer_idx) */
} ModelConfig;

/* Parses and validates config.json (n_inner null -> 4 * n_embd). */
int config_load(const char *path, ModelConfig *cfg, char *err);

/* The factor on layer l's attention scores q.k: 1/sqrt(head size) unless
 * scale_attn_weights is false, divided by l + 1 with
 * scale_attn_by_inverse_layer_idx (as transformers' GPT2Attention). */
float config_attn_scale(const ModelConfig *cfg, int layer);

typedef struct {
    const float *ln1_w, *ln1_b;   /* [C] */
    const float *qkv_w;           /* [C x 3C]  attn.c_attn.weight */
    const float *qkv_b;           /* [3C] */
    const float *attn_proj_w;     /* [C x C]   attn.c_proj.weight */
    const float *attn_proj_b;     /* [C] */
    const float *ln2_w, *ln2_b;   /* [C] */
    const float *fc_w;            /* [C x F]   mlp.c_fc.weight */
    const float *fc_b;            /* [F] */
    const float *proj_w;          /* [F x C]   mlp.c_proj.weight */
    const float *proj_b;          /* [C] */
} LayerParams;

/* Scratch activations, one allocation, sized for T = P at load. */
typedef struct {
    float *resid;   /* [T x C]   residual stream */
    float *ln;      /* [T x C]   layer-norm output */
    float *qkv;     /* [T x 3C] */
    float *att;     /* [att_slots x B x T] per thread: scores of one head for a
                       block of B query rows */
    int att_slots;  /* the compute team's size at load (parallel.h) */
    float *attn_out;/* [T x C]   concatenated head outputs */
    float *ffn;     /* [T x F]   FFN post-activation */
    float *final;   /* [T x C]   ln_f output (the input of the unembedding) */
} Scratch;

/* Commands and analyses read cfg, dir, checksum, tok, tied and st; the
 * weight pointers, the conversion buffer and the scratch belong to the
 * loader and the forward pass (model_weight, model_converted and
 * model_scratch_slots show them read-only). */
typedef struct {
    ModelConfig cfg;
    char dir[4096];
    const float *wte;     /* [V x C] */
    const float *wpe;     /* [P x C] */
    LayerParams *layers;  /* [L] */
    const float *lnf_w, *lnf_b; /* [C] */
    const float *lm_head; /* [V x C]; == wte when tied */
    int tied;
    int wte_by_read;      /* wte is in place in the file mapping: embed by st_read */
    uint64_t checksum;    /* hash of config.json + safetensors header + file size */
    Tokenizer *tok;
    /* ownership */
    SafeTensors *st;
    float *converted;     /* F32 copies of F16/BF16 weights (NULL when all F32) */
    float *scratch_mem;
    Scratch s;
} Model;

/* Loads DIR/config.json, DIR/model.safetensors, DIR/vocab.json, DIR/merges.txt.
 * Every tensor is validated (present, dtype, shape) before use. */
Model *model_load(const char *dir, char *err);
/* Loads only weights (no tokenizer files needed); tok stays NULL. */
Model *model_load_weights(const char *dir, char *err);
void model_free(Model *m); /* accepts NULL */

/* The F32 values the forward pass uses for the HF tensor `name`, without
 * the "transformer." prefix ("wte.weight", "h.1.mlp.c_fc.weight"; the
 * shapes are in the list atop model_load.c); "lm_head.weight" is wte's when
 * tied. NULL for a name the model does not use (attn.bias buffers) or when
 * out of memory. */
const float *model_weight(const Model *m, const char *name);
/* The one buffer of F32 copies made at load (F16/BF16 tensors and F32 ones
 * not 4-byte aligned in the file); NULL when every tensor is used in place
 * from the mmap. */
const float *model_converted(const Model *m);
/* The compute team size (parallel.h) the scratch memory was sized for at
 * load: the attention's per-thread slots; 0 when there is no scratch. */
int model_scratch_slots(const Model *m);

/* internal: used by model_load. Allocate / free m->scratch_mem and m->s
 * (sized for T = n_positions). Implemented in model.c. */
int model_scratch_init(Model *m, char *err);
void model_scratch_free(Model *m); /* accepts scratch never allocated */

/* ---- forward pass ----------------------------------------------------- */

/* Read-only observer of a layer's FFN post-activation (after GELU and after
 * any neuron edits, i.e. exactly what goes into c_proj): act is [T x F]. */
typedef void (*FfnObserver)(void *user, int layer, const float *act, int T, int F);

typedef struct {
    int layer, neuron;
    float value; /* post-activation is set to this (0 = zero ablation) */
} NeuronEdit;

/* Where in layer L the residual stream is observed, by its TransformerLens
 * hook name. Each point's difference from the one before is what a block
 * added: RESID_MID - RESID_PRE is blocks.L.hook_attn_out (with c_proj's
 * bias), RESID_POST - RESID_MID the FFN's output (zero when removed). */
typedef enum {
    RESID_PRE,  /* blocks.L.hook_resid_pre: the layer's input (L = 0: embeddings) */
    RESID_MID,  /* blocks.L.hook_resid_mid: after the attention output is added */
    RESID_POST  /* blocks.L.hook_resid_post: after the FFN output is added; for
                   the last layer, the input of ln_f */
} ResidPoint;

/* Read-only observer of the residual stream resid [T x C] at one point of
 * one layer; called for every layer, in order PRE, MID, POST. */
typedef void (*ResidObserver)(void *user, int layer, ResidPoint point, const float *resid, int T, int C);

/* Capture and interventions are data for the one forward pass. Every field
 * may be NULL/0; a zeroed ForwardHooks (or NULL) is the plain forward, and
 * hooks that ask for nothing give the plain forward bit for bit. */
typedef struct {
    const uint8_t *capture;    /* [L] 1 = call observe for this layer */
    FfnObserver observe;
    void *user;
    const uint8_t *remove_ffn; /* [L] 1 = the FFN output is not added to the
                                  residual (activations are still computed
                                  and observed) */
    const NeuronEdit *edits;   /* applied to the post-activation of every token */
    int n_edits;
    int stop_after;            /* > 0: return once layer stop_after - 1's FFN
                                  activation is observed (nothing after it
                                  runs: no logits, m->s.final not written,
                                  that layer's RESID_POST not observed);
                                  what is observed is unchanged bit for bit */
    int rows_needed;           /* > 0, without logits: only positions
                                  0..rows_needed-1 must be right, so the pass
                                  may compute a prefix of the window (cut
                                  where its matmul and attention blocks end:
                                  kernels.h prefix_rows). Those positions get
                                  the bits of the whole pass; observers are
                                  called with the prefix's row count. */
    ResidObserver observe_resid; /* NULL, or called with the residual stream
                                  at every ResidPoint of every layer (same
                                  user); observing changes nothing */
    int start_layer;           /* > 0: begin at this layer, from start_resid
                                  (no embedding, no earlier layer, no
                                  observer call for them); edits and
                                  removals must be in this layer or later */
    const float *start_resid;  /* [T x C]: the residual stream at RESID_PRE
                                  of start_layer in a plain forward of the
                                  same ids, so the pass gets that forward's
                                  bits (ablate.h ablator_start_at) */
} ForwardHooks;

/* Runs ids[0..T) at positions 0..T-1 (1 <= T <= P, ids < V). Writes
 * logits [T x V] when logits != NULL; m->s.final holds ln_f's output. */
int model_forward(Model *m, const int32_t *ids, int T, const ForwardHooks *hooks, float *logits,
                  char *err);

/* Parameter counts by component, for `probe info`. */
typedef struct {
    int64_t embeddings;  /* wte + wpe */
    int64_t attention;   /* c_attn + c_proj weights and biases, all layers */
    int64_t ffn;         /* c_fc + c_proj weights and biases, all layers */
    int64_t layer_norms; /* ln_1, ln_2 of all layers + ln_f */
    int64_t lm_head;     /* 0 when tied */
    int64_t total;
} ParamCounts;
ParamCounts model_param_counts(const ModelConfig *cfg, int tied);

#endif
