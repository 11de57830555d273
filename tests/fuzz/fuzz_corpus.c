/* fuzz_corpus.c — corpus_open (text/corpus.h) on arbitrary file bytes, as a
 * text file in each split mode (paragraph, line, file) and as a .jsonl file;
 * on success every document must lie inside the corpus (text files) and the
 * windows of its byte count are planned and checked. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "corpus.h"
#include "util.h"

static void check(Corpus *c, const uint8_t *data, size_t size, int is_text) {
    int n = corpus_count(c);
    corpus_checksum(c);
    corpus_bytes(c);
    volatile unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        const Doc *d = corpus_doc(c, i);
        for (size_t j = 0; j < d->len; j++) sum += (unsigned char)d->text[j];
        if (is_text && (d->offset > size || d->len > size - d->offset ||
                        (d->len && memcmp(d->text, data + d->offset, d->len) != 0)))
            abort();
    }
    /* windows of a document as long as its bytes, for a few contexts */
    for (int i = 0; i < n && i < 4; i++) {
        int T = (int)(corpus_doc(c, i)->len % 5000);
        for (int ctx = 1; ctx <= 1024; ctx *= 4) {
            int w = windows_count(T, ctx);
            Window *win = malloc((size_t)(w ? w : 1) * sizeof *win);
            windows_plan(T, ctx, win);
            int owned = 0;
            for (int k = 0; k < w; k++) {
                if (win[k].len > ctx || win[k].start < 0 || win[k].start + win[k].len > T) abort();
                owned += win[k].start + win[k].len - win[k].first_new;
            }
            if (owned != T) abort();
            free(win);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[PROBE_ERR_LEN];
    const char *txt = fuzz_write_file("corpus.txt", data, size);
    static const SplitMode modes[] = {SPLIT_PARAGRAPH, SPLIT_LINE, SPLIT_FILE};
    for (int m = 0; m < 3; m++) {
        Corpus *c = corpus_open(txt, modes[m], err);
        fuzz_note("corpus_open (text)", c != NULL, err);
        if (c) check(c, data, size, 1);
        corpus_free(c);
    }
    const char *jl = fuzz_write_file("corpus.jsonl", data, size);
    Corpus *c = corpus_open(jl, SPLIT_PARAGRAPH, err);
    fuzz_note("corpus_open (jsonl)", c != NULL, err);
    if (c) check(c, data, size, 0);
    corpus_free(c);
    return 0;
}
