/* topk.h — the one insertion step of a running top-k list, highest first.
 *
 *   int filled = 0;
 *   for (int j = 0; j < n; j++) filled = topk_insert(kv, ki, filled, k, x[j], j);
 *
 * kv[0..filled) is kept in descending order; an equal value goes after the
 * ones already there, so scanning indices upwards breaks ties to the lower
 * index. A value that does not beat kv[k-1] of a full list is dropped (the
 * caller may test that first to skip the call); NaN never enters. Returns
 * the new fill (at most k). Used by the recorder's per-token top-k and by
 * predict's top tokens. */
#ifndef PROBE_TOPK_H
#define PROBE_TOPK_H

#include <stdint.h>

static inline int topk_insert(float *kv, int32_t *ki, int filled, int k, float x, int32_t idx) {
    if (!(x == x)) return filled;
    if (filled == k && !(x > kv[k - 1])) return filled;
    int pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && kv[pos - 1] < x) {
        kv[pos] = kv[pos - 1];
        ki[pos] = ki[pos - 1];
        pos--;
    }
    kv[pos] = x;
    ki[pos] = idx;
    return filled;
}

#endif
