/* intervention.c — see intervention.h. Specs are comma-separated items;
 * every item is checked against the model's shape and errors quote it. */
#include "intervention.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Parses a non-negative decimal integer spanning exactly s[0..n). */
static int parse_index(const char *s, size_t n, long *out) {
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Calls item(ctx, start, len) for each comma-separated item; empty items
 * (",,", leading or trailing commas) are errors. */
static int for_each_item(const char *spec, const char *what, char *err,
                         int (*item)(void *ctx, const char *s, size_t n, char *err), void *ctx) {
    if (!spec || !*spec) return err_set(err, "empty %s list", what);
    const char *s = spec;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n == 0) return err_set(err, "empty item in %s list '%s'", what, spec);
        if (item(ctx, s, n, err)) return -1;
        if (!comma) return 0;
        s = comma + 1;
    }
}

typedef struct {
    int n_layer;
    uint8_t *mask;
} LayerCtx;

static int layer_item(void *vctx, const char *s, size_t n, char *err) {
    LayerCtx *c = vctx;
    const char *dash = memchr(s, '-', n);
    long a, b;
    if (dash) {
        if (parse_index(s, (size_t)(dash - s), &a) || parse_index(dash + 1, n - (size_t)(dash - s) - 1, &b))
            return err_set(err, "bad layer range '%.*s': expected A-B with 0 <= A <= B", (int)n, s);
    } else {
        if (parse_index(s, n, &a)) return err_set(err, "bad layer '%.*s': expected a layer number", (int)n, s);
        b = a;
    }
    if (a > b) return err_set(err, "bad layer range '%.*s': start after end", (int)n, s);
    if (b >= c->n_layer)
        return err_set(err, "bad layer '%.*s': layer out of range 0..%d", (int)n, s, c->n_layer - 1);
    for (long l = a; l <= b; l++) c->mask[l] = 1;
    return 0;
}

int parse_layer_list(const char *spec, int n_layer, uint8_t *mask, char *err) {
    LayerCtx c = {n_layer, mask};
    return for_each_item(spec, "layer", err, layer_item, &c);
}

typedef struct {
    const ModelConfig *cfg;
    float value;
    int with_value; /* items are L:N=VALUE */
    NeuronEdit **edits;
    int *n;
} NeuronCtx;

static int neuron_item(void *vctx, const char *s, size_t n, char *err) {
    NeuronCtx *c = vctx;
    const char *colon = memchr(s, ':', n);
    const char *eq = memchr(s, '=', n);
    const char *form = c->with_value ? "LAYER:NEURON=VALUE" : "LAYER:NEURON";
    if (!colon || (c->with_value != (eq != NULL)) || (eq && eq < colon))
        return err_set(err, "bad neuron '%.*s': expected %s", (int)n, s, form);
    size_t end = eq ? (size_t)(eq - s) : n;
    long layer, neuron;
    if (parse_index(s, (size_t)(colon - s), &layer) ||
        parse_index(colon + 1, end - (size_t)(colon - s) - 1, &neuron))
        return err_set(err, "bad neuron '%.*s': expected %s", (int)n, s, form);
    if (layer >= c->cfg->n_layer)
        return err_set(err, "bad neuron '%.*s': layer out of range 0..%d", (int)n, s, c->cfg->n_layer - 1);
    if (neuron >= c->cfg->n_inner)
        return err_set(err, "bad neuron '%.*s': neuron out of range 0..%d", (int)n, s, c->cfg->n_inner - 1);
    float value = c->value;
    if (eq) {
        char buf[64];
        size_t vn = n - (size_t)(eq - s) - 1;
        if (vn == 0 || vn >= sizeof buf) return err_set(err, "bad value in '%.*s'", (int)n, s);
        memcpy(buf, eq + 1, vn);
        buf[vn] = '\0';
        char *endp;
        errno = 0;
        value = strtof(buf, &endp);
        if (*endp || errno || !isfinite(value)) return err_set(err, "bad value in '%.*s'", (int)n, s);
    }
    NeuronEdit *grown = realloc(*c->edits, sizeof **c->edits * (size_t)(*c->n + 1));
    if (!grown) return err_set(err, "out of memory");
    *c->edits = grown;
    grown[(*c->n)++] = (NeuronEdit){(int)layer, (int)neuron, value};
    return 0;
}

int parse_neuron_list(const char *spec, const ModelConfig *cfg, float value, NeuronEdit **edits,
                      int *n_edits, char *err) {
    NeuronCtx c = {cfg, value, 0, edits, n_edits};
    return for_each_item(spec, "neuron", err, neuron_item, &c);
}

int parse_neuron_sets(const char *spec, const ModelConfig *cfg, NeuronEdit **edits, int *n_edits,
                      char *err) {
    NeuronCtx c = {cfg, 0.0f, 1, edits, n_edits};
    return for_each_item(spec, "neuron", err, neuron_item, &c);
}
