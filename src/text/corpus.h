/* corpus.h — reading a corpus into documents, and cutting a document's
 * tokens into context windows. Shared by `record` and `ablate` so that both
 * see the same documents and windows.
 *
 * A corpus is a UTF-8 text file split into documents (paragraphs separated
 * by blank lines by default, or lines, or the whole file), a .jsonl file
 * with a "text" field per line, or "-" for stdin.
 *
 * Windows: a document of n tokens and a context of ctx tokens. When n <= ctx
 * it is one window. Otherwise windows of ctx tokens advance by ctx/2, the
 * last one aligned to the end of the document; each window "owns" the tokens
 * from first_new (inclusive) to its end, so every token is owned by exactly
 * one window and every owned token past the first window has at least ctx/2
 * tokens of left context. */
#ifndef PROBE_CORPUS_H
#define PROBE_CORPUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SPLIT_PARAGRAPH, SPLIT_LINE, SPLIT_FILE } SplitMode;

typedef struct {
    const char *text; /* into the corpus buffer (not NUL-terminated) */
    size_t len;
    size_t offset;    /* byte offset of the document in the corpus file */
    int index;        /* its index in the whole corpus (also after corpus_shard) */
} Doc;

typedef struct Corpus Corpus;

Corpus *corpus_open(const char *path, SplitMode mode, char *err);
void corpus_free(Corpus *c); /* accepts NULL */
int corpus_count(const Corpus *c);
const Doc *corpus_doc(const Corpus *c, int i);
uint64_t corpus_checksum(const Corpus *c);
/* Keeps only shard i of n (1 <= i <= n): the documents whose index in the
 * whole corpus is i - 1 modulo n (round robin: shards get documents from
 * every part of the corpus, and the assignment depends only on the corpus
 * and n). corpus_count and corpus_doc then walk those documents, each with
 * its whole-corpus index in Doc.index; the checksum stays the whole
 * corpus's. */
void corpus_shard(Corpus *c, int i, int n);
size_t corpus_bytes(const Corpus *c);

typedef struct {
    int start;     /* first token of the window in the document */
    int len;       /* tokens in the window (<= ctx) */
    int first_new; /* first token (document index) this window owns */
} Window;

/* The tokens window w owns in a sequence whose first bos (0 or 1) tokens
 * are the <|endoftext|> placed before the document (context only, never
 * owned): sequence positions [*first, *end), empty when *end <= *first. The
 * one rule for `record` and every replay of a recorded run. */
static inline void window_owned(const Window *w, int bos, int *first, int *end) {
    *first = w->first_new > bos ? w->first_new : bos;
    *end = w->start + w->len;
}

/* Number of windows for n tokens (0 when n == 0). */
int windows_count(int n_tokens, int ctx);
/* Fills out[0..windows_count) . */
void windows_plan(int n_tokens, int ctx, Window *out);

#endif
