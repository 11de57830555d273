/* fuzz_concept.c — concept_load (analysis/concept.h), the probe file parser,
 * on arbitrary file bytes, with no dropped flags and with drop_flags
 * "participle"; on success the concept is matched against its own words and
 * a fixed text. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "concept.h"
#include "util.h"

static void use(const Concept *c) {
    for (size_t i = 0; i < c->n_words; i++) {
        size_t n = strlen(c->words[i]);
        if (!concept_has_word(c, c->words[i], n)) abort();
        concept_match_end(c, c->words[i], n, n);
    }
    static const char doc[] = "He walked to Paris, then ran (2+2=4) and went home.";
    ConceptCursor k;
    concept_cursor_init(&k, doc, sizeof doc - 1);
    for (size_t e = 1; e <= sizeof doc - 1; e++) concept_cursor_match(c, &k, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("probe.json", data, size);
    char err[PROBE_ERR_LEN];
    Concept *c = NULL;
    int rc = concept_load(path, NULL, &c, err);
    fuzz_note("concept_load", rc == 0, err);
    if (rc == 0) {
        use(c);
        concept_free(c);
    }
    ConceptOpts o = {.drop_flags = "participle"};
    c = NULL;
    rc = concept_load(path, &o, &c, err);
    fuzz_note("concept_load (drop participle)", rc == 0, err);
    if (rc == 0) {
        use(c);
        concept_free(c);
    }
    return 0;
}
