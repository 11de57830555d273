/* neuron_render.h — neuron rows (neuron_query.h) as a table for people or as
 * JSON for programs; `probe top-neurons` prints both, and any later listing
 * of neurons (concept ranking) can reuse them.
 *
 *   neuron_table_print(stdout, &rows);        // header line + 6 lines a neuron
 *   cJSON *root = cJSON_CreateObject();
 *   neuron_json_add_run(root, &run);          // "run", "status", "model", ...
 *   neuron_json_add_rows(cJSON_AddArrayToObject(root, "neurons"), &rows);
 *
 * Table: one line per neuron (rank, layer:neuron, hook, max, mean, std,
 * frac>0), then its top examples, one a line, the token marked [[like this]]
 * within at most 32 bytes of left and 20 of right context ("..." where cut,
 * newlines and tabs as spaces, cut at character boundaries). JSON: every
 * string is valid UTF-8 whatever the database holds (json_add_text). */
#ifndef PROBE_NEURON_RENDER_H
#define PROBE_NEURON_RENDER_H

#include <stdio.h>

#include "neuron_query.h"

struct cJSON;

/* Prints the column header and every row (rank = index + 1) with its
 * examples to out. */
void neuron_table_print(FILE *out, const NeuronRows *rows);

/* Adds the run's fields to obj: run, status, model, corpus, tokens.
 * 0, or -1 when out of memory. */
int neuron_json_add_run(struct cJSON *obj, const NeuronRun *run);

/* Appends one object per row to the JSON array arr: rank, layer, neuron,
 * name ("L:N"), hook, count, mean, variance, min, max, frac_pos and examples
 * (rank, value, token, token_id, doc, pos, left_context, right_context).
 * 0, or -1 when out of memory. */
int neuron_json_add_rows(struct cJSON *arr, const NeuronRows *rows);

/* A row's examples alone: the table's example lines, and the JSON array
 * "examples" added to obj (0, or -1 when out of memory). */
void neuron_examples_print(FILE *out, const NeuronRow *row);

/* Text for a terminal: at most max bytes of s (the last ones when tail), cut
 * at UTF-8 character boundaries, newlines and tabs as spaces, other control
 * bytes (ESC, BEL, ..., DEL) as \xNN so that corpus bytes never drive the
 * terminal; written into out (cap bytes). s may be NULL. */
void text_clip(char *out, size_t cap, const char *s, size_t max, int tail);
int neuron_json_add_examples(struct cJSON *obj, const NeuronRow *row);

#endif
