/* ablate_cmd.h — what the parts of `probe ablate` share: the options, the
 * report printed and stored, and the steps each mode runs. ablate.c parses
 * the options, measures, stores and prints; ablate_concept.c is the causal
 * check of a concept (--concept/--probe/--words), ablate_sweep.c the neuron
 * sweep's estimates (--sweep neurons). Not a public interface: only these
 * three files include it. */
#ifndef PROBE_ABLATE_CMD_H
#define PROBE_ABLATE_CMD_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "ablate.h"
#include "ablations.h"
#include "concept_store.h"
#include "conditions.h"
#include "doc_source.h"
#include "model.h"
#include "neuron_sweep.h"
#include "store.h"

typedef struct {
    ConditionSpec spec;
    int n_kinds;           /* condition options given: exactly one is valid */
    int no_ffn, sweep;     /* --no-ffn, --sweep: SWEEP_LAYERS or SWEEP_NEURONS */
    const char *layers, *neurons; /* --layers LIST, --neurons LIST */
    int mean_mode, no_db, bos, json, quiet, split_set;
    long run, stats_run, ctx; /* 0 = not given */
    SplitMode split;
    const char *db, *model, *corpus;
    /* the causal check of a concept (--concept / --probe / --words) */
    const char *concept, *probe, *words, *drop;
    long top, seeds, layer; /* layer -1 = every recorded layer (concept), none (sweep) */
    long verify;            /* --sweep neurons: neurons measured exactly; -1 = not given */
} AblateOptions;

enum { SWEEP_LAYERS = 1, SWEEP_NEURONS = 2 };

/* A neuron sweep stores the per-token effects of its first this many
 * verified neurons (the largest estimates); the rest, their figures. */
#define SWEEP_TOKENS_KEPT 10

/* What is printed: the stored record, and where it was stored. */
typedef struct {
    AblationRecord rec;
    int64_t ablation_id; /* 0 when not stored */
    const char *db_path;
    char source[64];     /* rec.source of a recorded run: "run:ID" */
} Report;

/* What a neuron sweep stores besides its conditions: every estimate, and
 * which condition measured each neuron (idx[l * n_inner + j], or -1). */
typedef struct {
    const NeuronSweep *sweep;
    const int *idx;
} SweepRows;

/* The conditions' table, and where they were stored. */
void ablate_print_table(const Report *r, const Conditions *cs);
/* The report and every condition as JSON on stdout, with extra (may be
 * NULL) under extra_key. 0, or -1 when out of memory. */
int ablate_print_json(const Report *r, const Conditions *cs, int n_layer, const char *extra_key, cJSON *extra);
/* Writes the record, every condition and its kept token effects, the
 * concept rows extra[0..n_extra) and a sweep's estimates (sw may be NULL),
 * in one transaction; *id the new ablation. 0, or -1 with err. */
int ablate_store_results(Store *s, const AblationRecord *rec, const Conditions *cs, const Tokenizer *tk, int n_layer,
                         ConceptAblationRow *extra, int n_extra, const SweepRows *sw, int64_t *id, char *err);
/* Mean mode: the recorded means [L x F] (malloc'd) of the layers in need,
 * from run stats_id or the model's latest complete run (*stats_run). NULL
 * with err. */
float *ablate_means_load(Store *s, const Model *m, const uint8_t *need, long stats_id, int64_t *stats_run, char *err);
/* The documents of o: its corpus file, or the tokens of its --run. NULL
 * with err. */
DocSource *ablate_source(const Model *m, Store *store, const AblateOptions *o, char *err);
/* What r->rec says of where the tokens came from (source, its checksum,
 * <|endoftext|>, documents, tokens), from src after a pass over it that
 * took count; count->seconds adds to rec.seconds (a sweep's estimate, then
 * its verified neurons). */
void ablate_report_source(Report *r, const AblateOptions *o, const DocSource *src, const AblateCount *count);
/* Measures cs over the documents of o (a corpus or --run); fills r->rec. */
int ablate_measure(Model *m, Store *store, const AblateOptions *o, int ctx, Conditions *cs, Report *r, char *err);
/* "L:N,L:N,..." of k neurons into a new string (NULL when out of memory). */
char *ablate_neuron_list(const int *layer, const int *neuron, int k);

/* ablate_concept.c: --concept / --probe / --words. Returns the exit code. */
int ablate_concept_check(AblateOptions *o);

/* ablate_sweep.c: the estimate of every neuron of o->layer (or of every
 * layer), then o->spec set to the o->verify largest (*list owns the
 * string) and r->rec's source filled. means: NULL or [L x F]. 0, or -1
 * with err. */
int ablate_sweep_estimate(Model *m, Store *store, AblateOptions *o, int ctx, const float *means, NeuronSweep *sw,
                          char **list, Report *r, char *err);
/* The top `rows` estimates, with the measured figures of the verified
 * (idx[l * n_inner + j] >= 0: that condition of cs). */
void ablate_print_sweep(const NeuronSweep *sw, const int *idx, const Conditions *cs, int rows);
/* Every estimate, best first, as JSON. */
cJSON *ablate_sweep_json(const NeuronSweep *sw, const int *idx, const Conditions *cs);

#endif
