/* doc_source.h — the documents an analysis runs over, as token ids: a corpus
 * file cut and tokenized as `probe record` does, or the tokens of a recorded
 * run read back from the database.
 *
 *   DocSource *src = doc_source_corpus("corpus.txt", SPLIT_PARAGRAPH, tok, 1, err);
 *   // or: doc_source_run(store, run_id, err)   (bos as the run recorded it)
 *   int32_t *ids; int n, doc;
 *   while ((got = doc_source_next(src, &ids, &n, &doc, err)) == 1)
 *       ... ids[0..n): <|endoftext|> first when doc_source_bos(src) ...
 *   doc_source_free(src);
 *
 * Documents come in order, one at a time; `doc` is the document's index (in
 * the corpus, or runs' documents.doc_index). Token positions as the database
 * stores them count from the first token after that <|endoftext|>.
 *
 * Ownership: the source owns its corpus and buffers; the ids of a document
 * stay valid until the next doc_source_next. A run source borrows the Store
 * (free the source first); a corpus source borrows the Tokenizer. */
#ifndef PROBE_DOC_SOURCE_H
#define PROBE_DOC_SOURCE_H

#include <stdint.h>

#include "corpus.h"
#include "store.h"
#include "tokenizer.h"

typedef struct DocSource DocSource;

/* A corpus file ("-" = stdin) split by `split`, tokenized with tok; each
 * document preceded by <|endoftext|> when bos. NULL with err when the file
 * cannot be read or holds no document. */
DocSource *doc_source_corpus(const char *path, SplitMode split, const Tokenizer *tok, int bos, char *err);

/* The tokens of recorded run `run`, with the run's <|endoftext|> setting.
 * NULL with err when the run is missing or has no recorded documents. */
DocSource *doc_source_run(Store *s, int64_t run, char *err);

void doc_source_free(DocSource *src); /* accepts NULL */

/* Documents in the source. */
int doc_source_count(const DocSource *src);
/* 1 when every document starts with <|endoftext|>. */
int doc_source_bos(const DocSource *src);
/* The corpus file's checksum (corpus.h); 0 for a recorded run. */
uint64_t doc_source_checksum(const DocSource *src);

/* Sets *ids / *n to the next document's tokens (with <|endoftext|> first
 * when bos) and *doc to its index; returns 1, 0 at the end, -1 with err. */
int doc_source_next(DocSource *src, int32_t **ids, int *n, int *doc, char *err);

#endif
