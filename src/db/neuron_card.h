/* neuron_card.h — what `probe neuron L:N` gathers about one neuron from the
 * database besides its statistics and examples (neuron_query.h): its
 * histogram, its scores in stored concept rankings, its key-value figures,
 * and stored ablations of it or its layer.
 *
 * Each loader fills at most cap rows and sets *n (0 when nothing is stored);
 * strings are the caller's to free (card_rows_free). */
#ifndef PROBE_NEURON_CARD_H
#define PROBE_NEURON_CARD_H

#include <stdint.h>

#include "store.h"

/* The neuron's histogram (n_bins counts): 1, or 0 when the run has none. */
int card_histogram(Store *s, int64_t run, int layer, int neuron, uint32_t *counts, int n_bins, char *err);

typedef struct {
    char *name;    /* concept name, or ablation label */
    double a, b, c; /* concept: auroc, auroc_error, cohen_d; ablation: delta_loss, kl, top1 agreement */
    int64_t rank, of; /* concept: the neuron's rank by AUROC in its ranking, of how many; ablation: id, tokens */
} CardRow;

/* The latest ranking of each concept over the run, best AUROC first. */
int card_concepts(Store *s, int64_t run, int layer, int neuron, CardRow *out, int cap, int *n, char *err);
/* Stored ablations of this neuron alone ('neurons L:N', or 'neuron L:N' of
 * a neuron sweep) or its layer, and its estimates from neuron sweeps
 * ('estimated alone, rank R': a = the estimated delta loss, b and c NaN),
 * newest first. */
int card_ablations(Store *s, int layer, int neuron, CardRow *out, int cap, int *n, char *err);
void card_rows_free(CardRow *rows, int n);

typedef struct {
    char variant[8];
    int32_t next_id, value_top; /* next_id -1: none */
    int agree;                  /* -1: no next token */
    int triggers;
    double median_rank;
} CardKv;

/* The neuron's figures in the run's latest kv run (both variants): *n rows. */
int card_kv(Store *s, int64_t run, int layer, int neuron, CardKv *out, int cap, int *n, char *err);

#endif
