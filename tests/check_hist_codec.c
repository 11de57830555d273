/* check_hist_codec.c — util/hist_codec.h, the bytes of a histogram in the
 * recorder's saved state and in neuron_histograms.counts: every histogram
 * comes back exact, whichever form is chosen; the packed form is chosen
 * exactly when it is shorter; the dense form of older databases reads;
 * malformed blobs are refused (tests/fuzz/fuzz_hist_blob.c fuzzes the
 * reader). */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "hist_codec.h"
#include "testutil.h"

enum { BINS = 1024 };

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Histograms from empty to full, counts from 1 to 2^32 - 1. */
START_TEST(test_round_trip) {
    static uint8_t blob[4 * BINS], packed[HIST_PACKED_MAX(BINS)];
    uint32_t h[BINS], back[BINS];
    int dense = 0, sparse = 0;
    for (int trial = 0; trial < 2000; trial++) {
        int used = trial % 1025; /* bins used */
        uint32_t top = trial % 3 == 0 ? 100 : trial % 3 == 1 ? 70000 : UINT32_MAX;
        memset(h, 0, sizeof h);
        for (int i = 0; i < used; i++) h[(i * 389) % BINS] = 1 + rnd() % top; /* distinct bins */
        size_t n = hist_blob(h, BINS, blob);
        ck_assert_msg(hist_unblob(blob, n, back, BINS) == 0, "trial %d: not read back", trial);
        ck_assert_msg(!memcmp(h, back, sizeof h), "trial %d: counts differ", trial);
        size_t p = hist_pack(h, BINS, packed);
        const uint8_t *q = packed;
        ck_assert(hist_unpack(&q, packed + p, back, BINS) == 0 && q == packed + p && !memcmp(h, back, sizeof h));
        /* the shorter form is stored, and only the dense one is 4 KiB */
        ck_assert_msg(n == (p < 4 * BINS ? p : 4 * (size_t)BINS), "trial %d: stored %zu, packed %zu", trial, n, p);
        dense += n == 4 * BINS, sparse += n < 4 * BINS;
    }
    ck_assert_msg(dense > 100 && sparse > 100, "both forms tried: %d dense, %d packed", dense, sparse);
}
END_TEST

/* A blob an older probe wrote: 1,024 little-endian uint32. */
START_TEST(test_dense_of_older_probes) {
    uint8_t blob[4 * BINS];
    uint32_t back[BINS];
    for (int b = 0; b < BINS; b++)
        for (int k = 0; k < 4; k++) blob[4 * b + k] = (uint8_t)((uint32_t)(b * 40503u) >> (8 * k));
    ck_assert(hist_unblob(blob, sizeof blob, back, BINS) == 0);
    for (int b = 0; b < BINS; b++) ck_assert_uint_eq(back[b], (uint32_t)(b * 40503u));
}
END_TEST

/* Each malformed blob is refused. */
START_TEST(test_malformed) {
    uint32_t back[BINS];
    static const struct {
        const char *what;
        uint8_t bytes[12];
        size_t len;
    } bad[] = {
        {"empty", {0}, 0},
        {"one bin, no count", {1, 0}, 2},
        {"a zero count", {1, 4, 0}, 3},
        {"a bin past the last", {2, 0xe8, 0x07, 1, 30, 1}, 6}, /* 1000, then 1000 + 31 */
        {"a gap past the last", {1, 0x80, 0x08, 1}, 4},        /* gap 1024 */
        {"more bins than exist", {0x81, 0x08}, 2},             /* 1025 */
        {"a count over 32 bits", {1, 0, 0xff, 0xff, 0xff, 0xff, 0x1f}, 7},
        {"a varint that never ends", {1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 8},
        {"bytes after the last bin", {1, 0, 5, 9}, 4},
        {"cut short", {2, 0, 5, 3}, 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(hist_unblob(bad[i].len ? bad[i].bytes : NULL, bad[i].len, back, BINS) == -1, "%s: accepted",
                      bad[i].what);
    const uint8_t ok[] = {2, 0, 5, 9, 1};
    ck_assert(hist_unblob(ok, sizeof ok, back, BINS) == 0 && back[0] == 5 && back[10] == 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("hist_codec");
    case_add(s, "codec", 30, (const TTest *[]){test_round_trip, test_dense_of_older_probes, test_malformed, NULL});
    return run_suite(s);
}
