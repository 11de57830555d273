/* fuzz_tokenizer_roundtrip.c — the GPT-2 tokenizer (models/gpt2-tokenizer,
 * loaded once) on arbitrary bytes: tok_encode, then tok_decode must give the
 * exact input bytes back (aborts if not), token offsets must tile the input,
 * and tok_pretoken_end must tile it too. The tokenizer directory is
 * $PROBE_FUZZ_TOKENIZER, else FUZZ_TOKENIZER_DIR (the Makefile passes the
 * repository's), else models/gpt2-tokenizer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "tokenizer.h"
#include "util.h"

#ifndef FUZZ_TOKENIZER_DIR
#define FUZZ_TOKENIZER_DIR "models/gpt2-tokenizer"
#endif

static Tokenizer *tok; /* loaded once, never freed (reachable: no leak report) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[PROBE_ERR_LEN];
    if (!tok) {
        const char *dir = getenv("PROBE_FUZZ_TOKENIZER");
        if (!dir || !*dir) dir = FUZZ_TOKENIZER_DIR;
        char v[4096], m[4096];
        snprintf(v, sizeof v, "%s/vocab.json", dir);
        snprintf(m, sizeof m, "%s/merges.txt", dir);
        tok = tok_load(v, m, err);
        if (!tok) {
            fprintf(stderr, "fuzz_tokenizer_roundtrip: %s\n", err);
            abort();
        }
    }
    const char *text = (const char *)data;
    TokBuf b = {0};
    if (tok_encode(tok, text, size, &b) != 0) abort();
    if (size > 0 && b.n == 0) abort();
    for (size_t i = 0; i < b.n; i++) {
        size_t end = i + 1 < b.n ? b.start[i + 1] : size, len;
        const char *bytes = tok_token_bytes(tok, b.ids[i], &len);
        if (!bytes || b.start[i] >= end || end - b.start[i] != len ||
            memcmp(bytes, text + b.start[i], len) != 0)
            abort();
    }
    if (b.n && b.start[0] != 0) abort();
    char *out = NULL;
    size_t out_len = 0;
    if (tok_decode(tok, b.ids, b.n, &out, &out_len, err) != 0) abort();
    if (out_len != size || (size && memcmp(out, data, size) != 0)) abort();
    free(out);
    tok_buf_free(&b);
    for (size_t i = 0; i < size;) {
        size_t e = tok_pretoken_end(text, size, i);
        if (e <= i || e > size) abort();
        i = e;
    }
    return 0;
}
