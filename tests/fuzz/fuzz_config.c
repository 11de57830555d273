/* fuzz_config.c — config_load (engine/model.h, src/engine/config.c) on
 * arbitrary config.json bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "model.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("config.json", data, size);
    char err[PROBE_ERR_LEN];
    ModelConfig cfg;
    int rc = config_load(path, &cfg, err);
    fuzz_note("config_load", rc == 0, err);
    if (rc == 0) {
        /* what the loader promises to the rest of the engine */
        if (cfg.n_layer <= 0 || cfg.n_embd <= 0 || cfg.n_head <= 0 || cfg.n_inner <= 0 ||
            cfg.vocab_size <= 0 || cfg.n_positions <= 0)
            abort();
    }
    return 0;
}
