/* hist_codec.c — see hist_codec.h. */
#include "hist_codec.h"

#include <string.h>

static uint8_t *varint_put(uint8_t *p, uint32_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from [*p, end): 0, or -1 when it runs past end or over 32 bits. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint32_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (x > UINT32_MAX) return -1;
            *v = (uint32_t)x;
            return 0;
        }
    }
    return -1;
}

static size_t varint_len(uint32_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* The length of the packed form, without writing it. */
static size_t packed_len(const uint32_t *counts, int n_bins) {
    uint32_t nz = 0;
    size_t len = 0;
    int last = -1;
    for (int b = 0; b < n_bins; b++)
        if (counts[b]) {
            len += varint_len((uint32_t)(b - last - 1)) + varint_len(counts[b]);
            last = b;
            nz++;
        }
    return len + varint_len(nz);
}

size_t hist_pack(const uint32_t *counts, int n_bins, uint8_t *out) {
    uint32_t nz = 0;
    for (int b = 0; b < n_bins; b++) nz += counts[b] != 0;
    uint8_t *p = varint_put(out, nz);
    int last = -1;
    for (int b = 0; b < n_bins; b++)
        if (counts[b]) {
            p = varint_put(p, (uint32_t)(b - last - 1));
            p = varint_put(p, counts[b]);
            last = b;
        }
    return (size_t)(p - out);
}

int hist_unpack(const uint8_t **p, const uint8_t *end, uint32_t *counts, int n_bins) {
    uint32_t nz, gap, c;
    int b = -1;
    memset(counts, 0, sizeof *counts * (size_t)n_bins);
    if (varint_get(p, end, &nz) || nz > (uint32_t)n_bins) return -1;
    for (uint32_t i = 0; i < nz; i++) {
        if (varint_get(p, end, &gap) || varint_get(p, end, &c) || c == 0 || gap >= (uint32_t)n_bins ||
            b + 1 + (int)gap >= n_bins)
            return -1;
        b += 1 + (int)gap;
        counts[b] = c;
    }
    return 0;
}

size_t hist_blob(const uint32_t *counts, int n_bins, uint8_t *out) {
    size_t dense = (size_t)n_bins * 4;
    if (packed_len(counts, n_bins) < dense) return hist_pack(counts, n_bins, out);
    for (int b = 0; b < n_bins; b++) /* little-endian whatever the host */
        for (int k = 0; k < 4; k++) out[4 * b + k] = (uint8_t)(counts[b] >> (8 * k));
    return dense;
}

int hist_unblob(const void *blob, size_t len, uint32_t *counts, int n_bins) {
    const uint8_t *p = blob;
    if (len == (size_t)n_bins * 4) {
        for (int b = 0; b < n_bins; b++)
            counts[b] = (uint32_t)p[4 * b] | (uint32_t)p[4 * b + 1] << 8 | (uint32_t)p[4 * b + 2] << 16 |
                        (uint32_t)p[4 * b + 3] << 24;
        return 0;
    }
    if (!p) return -1; /* an empty blob: never written */
    const uint8_t *end = p + len;
    if (hist_unpack(&p, end, counts, n_bins)) return -1;
    return p == end ? 0 : -1;
}
