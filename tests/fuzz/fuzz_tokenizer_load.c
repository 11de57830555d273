/* fuzz_tokenizer_load.c — tok_load (text/tokenizer.h) on an arbitrary
 * vocab.json + merges.txt pair: the input up to its first NUL byte is
 * vocab.json, the rest merges.txt (no NUL: merges.txt is empty). On success
 * a short fixed text is encoded and decoded (ids are the vocabulary's). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_util.h"
#include "tokenizer.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t vn = nul ? (size_t)(nul - data) : size;
    const char *vocab = fuzz_write_file("vocab.json", data, vn);
    const char *merges = fuzz_write_file("merges.txt", nul ? nul + 1 : data + size,
                                         nul ? size - vn - 1 : 0);
    char err[PROBE_ERR_LEN];
    Tokenizer *tok = tok_load(vocab, merges, err);
    fuzz_note("tok_load", tok != NULL, err);
    if (!tok) return 0;
    static const char text[] = "Hello, world! It's 2024 \xe2\x80\x99 caf\xc3\xa9  \n\xff";
    TokBuf b = {0};
    if (tok_encode(tok, text, sizeof text - 1, &b) == 0) {
        char *out = NULL;
        size_t out_len = 0;
        if (tok_decode(tok, b.ids, b.n, &out, &out_len, err) == 0) free(out);
    }
    tok_buf_free(&b);
    int n = tok_vocab_size(tok);
    for (int32_t id = -1; id <= n && id < 300; id++) {
        size_t len;
        tok_token_bytes(tok, id, &len);
    }
    tok_free(tok);
    return 0;
}
