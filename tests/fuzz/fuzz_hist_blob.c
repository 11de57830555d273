/* fuzz_hist_blob.c — hist_unblob (util/hist_codec.h), the reader of
 * neuron_histograms.counts as a database file holds it (untrusted): any
 * bytes either fail or give 1,024 counts; what decodes is written again by
 * hist_blob and must decode to the same counts (the writer's form is
 * canonical, so a second round trip is byte-identical). */
#include "fuzz_util.h"
#include "hist_codec.h"

enum { BINS = 1024 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t a[BINS], b[BINS];
    static uint8_t blob[4 * BINS], again[4 * BINS];
    if (hist_unblob(size ? data : NULL, size, a, BINS)) return 0;
    size_t n = hist_blob(a, BINS, blob);
    if (n > sizeof blob || hist_unblob(blob, n, b, BINS) || memcmp(a, b, sizeof a)) abort();
    if (hist_blob(b, BINS, again) != n || memcmp(blob, again, n)) abort();
    return 0;
}
