/* recorder.h — in-memory aggregation of FFN activations, per (layer, neuron):
 * exact statistics, the top-N activating tokens, and per token its top-k
 * neurons (and optionally its whole vector in fp16).
 *
 *   Recorder *r = recorder_new(n_layers, F, n_examples, top_k, err);
 *   recorder_add(r, li, act, n, token_rows, topk_out, full_out);  // per layer
 *   recorder_stats(r, li, j, &st);  recorder_examples(r, li, j, ex, &n);
 *   recorder_state_save(r, li, buf) / recorder_state_load(...)      // resume
 *   recorder_free(r);
 *
 * li indexes the recorded layers (0..n_layers), not the model's layers.
 * Statistics accumulate in double around a per-neuron shift (the mean of
 * its first tokens), so mean and variance stay exact to double rounding: count,
 * mean, population variance, min, max, fraction > 0; and a histogram over
 * the fixed grid of act_hist.h (concept AUROC). Top examples: one
 * fixed-size min-heap per neuron, guarded by a threshold so a value that
 * cannot enter costs one compare; ordered by value, ties to the earlier token
 * (smaller token row). No allocation after recorder_new.
 *
 * recorder_add splits its work over the compute team (parallel.h): neurons
 * for statistics and examples, tokens for top-k. Every neuron sees its
 * tokens in order, so nothing depends on the team's size. Top-k scratch is
 * per thread, sized by the team at recorder_new; threads beyond that
 * (a team started later) take no tokens. */
#ifndef PROBE_RECORDER_H
#define PROBE_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#define RECORDER_TOPK_BYTES 6 /* per top-k entry: uint16 neuron, float32 value (LE) */

typedef struct Recorder Recorder;

typedef struct {
    int64_t count;
    double mean, variance; /* population variance */
    float min, max;
    double frac_pos;       /* fraction of tokens with activation > 0 */
} NeuronStats;

typedef struct {
    float value;
    int64_t token_row;
} Example;

/* n_examples >= 1, 1 <= top_k <= F, F <= 65535. */
Recorder *recorder_new(int n_layers, int F, int n_examples, int top_k, char *err);
void recorder_free(Recorder *r); /* accepts NULL */

/* Adds n tokens of recorded layer li: act is [n x F], token_rows[n] their
 * rows in the tokens table. Writes each token's top-k record
 * (top_k * RECORDER_TOPK_BYTES bytes per token, highest first, ties to the
 * lower neuron) to topk_out when not NULL, and its fp16 vector (F uint16 per
 * token) to full_out when not NULL. */
void recorder_add(Recorder *r, int li, const float *act, int n, const int64_t *token_rows,
                  uint8_t *topk_out, uint16_t *full_out);

void recorder_stats(const Recorder *r, int li, int neuron, NeuronStats *out);
/* Copies the neuron's examples, best first, into out[0..*n) (at most n_examples). */
void recorder_examples(const Recorder *r, int li, int neuron, Example *out, int *n);
int64_t recorder_count(const Recorder *r, int li);
/* The neuron's histogram into out[ACT_HIST_BINS]: counts of its tokens per
 * bin of the fixed grid in act_hist.h (valid up to 2^32 - 1 tokens per bin). */
void recorder_hist(const Recorder *r, int li, int neuron, uint32_t *out);

/* Whether the recorder ran out of memory while adding tokens (its
 * histograms are then incomplete and must not be saved). */
int recorder_failed(const Recorder *r);

/* Whether some neuron saw a NaN or infinite activation (its running sums
 * are not finite): 1 with the first such recorded layer *li and *neuron,
 * else 0. Checked before each commit, so a run never saves such sums. */
int recorder_first_nonfinite(const Recorder *r, int *li, int *neuron);

/* The aggregate state of one layer as a byte string (for the run_state
 * table): recorder_state_size is the most it can take (size the buffer
 * with it); recorder_state_save returns the bytes it wrote. */
size_t recorder_state_size(const Recorder *r);
size_t recorder_state_save(const Recorder *r, int li, void *buf);
int recorder_state_load(Recorder *r, int li, const void *buf, size_t len, char *err);

#endif
