/* concept_score.h — how selective each recorded neuron is for a concept,
 * computed after recording without running the corpus again.
 *
 *   ConceptTotals t;
 *   ConceptScore *sc = malloc(sizeof *sc * n_layers * F);
 *   concept_score(store, run, model, concept, layers, n_layers, sc, &t, err);
 *   // sc[li * F + j]: layer layers[li], neuron j (concept_store.h)
 *
 * What is exact and how:
 *   - The positives (tokens that end a concept word: concept.h) are found by
 *     reading the run's documents and token spans back from the database.
 *     Only the context windows that own a positive run through the model
 *     again, exactly as `probe record` ran them (same windows, same shapes),
 *     so their activations are the recorded ones bit for bit on the same
 *     machine and build.
 *   - The negatives are every other token: their sums follow from the
 *     run's stored mean and variance minus the positives' (centred on the
 *     stored mean, so nothing cancels). Means, standard deviations and
 *     Cohen's d are exact to double rounding.
 *   - AUROC needs, for every positive, how many negatives lie below it:
 *     the record-time histogram (act_hist.h) minus the positives' own
 *     counts gives the negatives per bin; inside a positive's bin the
 *     negatives are taken as spread evenly. auroc_error bounds the result:
 *     the negatives that share a bin with a positive, weighted by how far
 *     the positive sits from the bin's ends, over n_pos * n_neg. (The
 *     exact-zero bin holds one value, so its ties are exact.)
 *   - precision: of each neuron's stored top examples, the fraction that
 *     are positives.
 * Cost: one read of the run's tokens and documents, plus a forward pass of
 * the windows that own a positive (the time grows with those windows, not
 * with the corpus). With a ConceptKeep those windows run whole and the
 * scored layer's activations are kept for concept_score_exact.
 *
 * Errors (-1, one line in err): the model is not the run's (checksum), a
 * layer was not recorded, the run has no statistics yet, no recorded token
 * ends a concept word ("... never occurs in run N"), or every token does. */
#ifndef PROBE_CONCEPT_SCORE_H
#define PROBE_CONCEPT_SCORE_H

#include <stdint.h>

#include "concept.h"
#include "concept_store.h"
#include "model.h"
#include "store.h"

typedef struct {
    int64_t concept_tokens, tokens;
    int64_t windows, windows_replayed;
    int has_hist;  /* 0: the run has no histograms (recorded before schema 8): auroc is NAN */
    int mismatch;  /* 1: a replayed activation fell where the recording had no token: the
                      replay differs from the recording (another CPU or BLAS build) */
    double seconds;
} ConceptTotals;

/* Progress callback: called after each document (may be NULL). */
typedef void (*ConceptProgress)(void *user, int docs_done, int n_docs, int64_t windows_replayed);

/* What concept_score keeps, when asked, for concept_score_exact: every
 * owned token's activation (run order) of the one scored layer, from the
 * windows it replayed. A concept in most windows (a frequent word in
 * windows of 1,024 tokens) is replayed in almost every window, and the
 * exact AUROC then replays only the windows it lacks instead of the whole
 * run again. Kept when one layer is scored and n x F floats fit
 * CONCEPT_KEEP_BYTES; else val stays NULL and nothing changes. */
#define CONCEPT_KEEP_BYTES ((size_t)1 << 30)
typedef struct {
    int layer, F;
    int64_t n;     /* tokens of the run */
    float *val;    /* [n x F], NULL when not kept */
    uint8_t *have; /* [n] 1: the row was replayed */
} ConceptKeep;
void concept_keep_free(ConceptKeep *k); /* accepts a zeroed struct */

/* keep: NULL, or where to keep the activations (see ConceptKeep). */
int concept_score(Store *s, int64_t run, Model *m, const Concept *c, const int *layers, int n_layers,
                  ConceptScore *out, ConceptTotals *totals, ConceptKeep *keep, ConceptProgress progress, void *user,
                  char *err);

/* The exact AUROC of the given neurons (rows[i].layer, .neuron), replacing
 * rows[i].auroc (and auroc_error with 0): every window of the run is
 * replayed and each token's activation of those neurons kept (n_rows x
 * tokens floats), then the Mann-Whitney statistic with ties as 1/2. Costs a
 * forward pass of the whole corpus (the `--exact` of top-neurons, for the
 * listed neurons), less the windows whose activations keep holds (keep may
 * be NULL; it serves rows of its layer only). */
int concept_score_exact(Store *s, int64_t run, Model *m, const Concept *c, ConceptScore *rows, int n_rows,
                        const ConceptKeep *keep, ConceptTotals *totals, ConceptProgress progress, void *user,
                        char *err);

/* The AUROC of one neuron from its histogram counts: all[b] (every recorded
 * token), pos[b] (the positives), fsum[b] (the sum over the positives in
 * bin b of their place f in the bin, 0..1), n_pos positives of n_all tokens.
 * Sets *error to a proven bound on |returned - exact AUROC|: the sum over
 * bins of negatives x max(fsum, pos - fsum), over n_pos x n_neg; returns
 * NAN when there are no positives or no negatives. Exposed for tests. */
double concept_auroc_from_hist(const uint32_t *all, const uint32_t *pos, const double *fsum, int64_t n_pos,
                               int64_t n_all, double *error, int *mismatch);

#endif
