/* tokenizer.h — GPT-2 byte-level BPE, identical to OpenAI's encoder.py.
 *
 *   Tokenizer *tok = tok_load("vocab.json", "merges.txt", err);
 *   TokBuf b = {0};
 *   tok_encode(tok, text, len, &b);     // b.ids[i], b.start[i] for i < b.n
 *   tok_buf_free(&b);
 *   tok_free(tok);
 *
 * Pre-tokenization follows encoder.py's regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with Unicode letter/number classes, case-sensitive contractions; invalid
 * UTF-8 bytes are tokenized as bytes (never rejected). <|endoftext|> in the
 * input text is NOT treated as special (as encoder.py); use TOK_EOT. */
#ifndef PROBE_TOKENIZER_H
#define PROBE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define TOK_EOT 50256 /* <|endoftext|> */

typedef struct Tokenizer Tokenizer;

/* Output buffer, grown by tok_encode (amortised; reuse it across calls). */
typedef struct {
    int32_t *ids;
    uint32_t *start; /* byte offset of token i in the encoded text; token i
                        spans [start[i], start[i+1]) (or to the text end) */
    size_t n, cap;
} TokBuf;

Tokenizer *tok_load(const char *vocab_json, const char *merges_txt, char *err);
void tok_free(Tokenizer *tok); /* accepts NULL */
int tok_vocab_size(const Tokenizer *tok);

/* Appends the tokens of text[0..len) to b (does not clear it). Offsets in
 * b->start are relative to `text`. Returns 0, or -1 on out of memory. */
int tok_encode(const Tokenizer *tok, const char *text, size_t len, TokBuf *b);
void tok_buf_free(TokBuf *b);

/* The end of the pre-token that starts at text[i] (i < len): pre-tokens are
 * the matches of the regex above, tiling text[0..len) from 0 (tok_encode
 * splits each into BPE tokens). A pre-token that holds a whitespace character
 * is all whitespace or starts with its one ' ', so every whitespace character
 * that follows a non-whitespace one starts a pre-token: scanning may restart
 * there (analysis/concept does). Pure, no allocation, never fails. */
size_t tok_pretoken_end(const char *text, size_t len, size_t i);

/* The raw bytes of one token (not NUL-terminated); NULL if id is invalid. */
const char *tok_token_bytes(const Tokenizer *tok, int32_t id, size_t *len);

/* Decodes ids into a malloc'd NUL-terminated byte string (byte-exact
 * inverse of tok_encode). -1 if an id is out of range (message in err). */
int tok_decode(const Tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *out_len,
               char *err);

#endif
