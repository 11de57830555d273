/* fuzz_safetensors.c — st_open (engine/safetensors.h) on arbitrary file
 * bytes; on success every accessor runs and every F32/F16/BF16 tensor is
 * converted in full, so a tensor range that st_open let through outside the
 * map is a read ASan reports. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "safetensors.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("model.safetensors", data, size);
    char err[PROBE_ERR_LEN];
    SafeTensors *st = st_open(path, err);
    fuzz_note("st_open", st != NULL, err);
    if (!st) return 0;
    if (st_file_size(st) != size || strcmp(st_path(st), path) != 0) abort();
    int n = st_count(st);
    for (int i = 0; i < n; i++) {
        const StTensor *t = st_at(st, i);
        if (st_find(st, t->name) == NULL) abort();
        if (t->dtype == ST_OTHER || t->numel > (1 << 22)) continue;
        float *f = malloc(t->numel ? (size_t)t->numel * sizeof *f : 1);
        st_to_f32(t->dtype, t->data, f, (size_t)t->numel);
        free(f);
    }
    st_find(st, "");
    st_find(st, "__metadata__");
    st_close(st);
    return 0;
}
