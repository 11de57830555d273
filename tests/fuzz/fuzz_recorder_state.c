/* fuzz_recorder_state.c — recorder_state_load (analysis/recorder.h), the
 * reader of a saved run_state blob, for a small Recorder (1 layer, F = 4
 * neurons, 3 examples, top-3). The raw input is loaded as is (almost always
 * the wrong size), then as a blob whose fixed-size part is the input's start
 * (cut or zero-padded) followed by the rest of the input as the sparse
 * histograms (or one empty histogram a neuron when nothing is left), so the
 * fuzzer reaches the content checks. On success the statistics and examples
 * are read, the state saved again, and a few tokens added on top. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "recorder.h"
#include "util.h"

enum { F = 4, N = 3, K = 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[PROBE_ERR_LEN];
    Recorder *r = recorder_new(1, F, N, K, err);
    if (!r) abort();
    /* the fixed part: 24 bytes, per neuron 3 doubles, 3 floats, 1 int32, and
     * N floats + N int64 (recorder.c) */
    size_t fixed = 24 + F * (3 * 8 + 3 * 4 + 4) + (size_t)F * N * 12, need = recorder_state_size(r);
    fuzz_note("recorder_state_load (raw)", recorder_state_load(r, 0, data, size, err) == 0, err);
    uint8_t *blob = calloc(1, need + F);
    size_t len = fixed + F; /* empty histograms */
    memcpy(blob, data, size < fixed ? size : fixed);
    if (size > fixed) {
        len = size - fixed < need - fixed ? size : need;
        memcpy(blob + fixed, data + fixed, len - fixed);
    }
    int rc = recorder_state_load(r, 0, blob, len, err);
    fuzz_note("recorder_state_load (sized)", rc == 0, err);
    if (rc == 0) {
        NeuronStats st;
        Example ex[N];
        int n;
        for (int j = 0; j < F; j++) {
            recorder_stats(r, 0, j, &st);
            recorder_examples(r, 0, j, ex, &n);
            if (n < 0 || n > N) abort();
        }
        recorder_count(r, 0);
        int li, neuron;
        recorder_first_nonfinite(r, &li, &neuron);
        uint8_t *again = malloc(need);
        if (recorder_state_save(r, 0, again) > need) abort();
        free(again);
        /* (found by this harness: a saved count near INT64_MAX overflowed
         * here; the loader now refuses it, and the input is in the corpus) */
        float act[2 * F] = {1, -2, 0.5f, 3, 0, 7, -1, 2};
        int64_t rows[2] = {1000, 1001};
        uint8_t topk[2 * K * RECORDER_TOPK_BYTES];
        recorder_add(r, 0, act, 2, rows, topk, NULL);
        for (int j = 0; j < F; j++) recorder_examples(r, 0, j, ex, &n);
    }
    free(blob);
    recorder_free(r);
    return 0;
}
