/* run_docs.h — a recorded run's documents with their tokens, read back in
 * corpus order (documents.doc_index, then tokens.pos). The one reader of a
 * run's text for everything that replays or copies a run: concept ranking
 * and the concept split of `probe ablate` (which tokens are concept tokens),
 * `probe ablate --run` (the ids to measure), `probe merge` (every column, to
 * copy the shards' rows).
 *
 *   int bos, n_docs;
 *   if (run_docs_header(s, run, &bos, &n_docs, err)) ...  // "no run 5 in 'x.db'"
 *   RunDocs *d = run_docs_open(s, run, RUN_DOCS_IDS, err);
 *   RunDoc doc;
 *   while ((got = run_docs_next(d, &doc, err)) == 1) ... doc.bytes, doc.ids[i], doc.byte_end[i], doc.rows[i]
 *   run_docs_close(d);
 *
 * Two queries per document (its row, then its tokens through the (doc_id,
 * pos) key), so a document costs one index range whatever the run's size.
 * Ownership: the cursor owns the document it returns (valid until the next
 * call) and borrows the Store (close the cursor first). */
#ifndef PROBE_RUN_DOCS_H
#define PROBE_RUN_DOCS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* What run_docs_next fills: RUN_DOCS_IDS the exact bytes and the per-token
 * row, id and byte end (what a replay needs); RUN_DOCS_FULL also every other
 * column of documents and tokens (what a copy needs). */
typedef enum { RUN_DOCS_IDS = 0, RUN_DOCS_FULL = 1 } RunDocsDetail;

/* RUN_DOCS_FULL: one token's remaining columns. */
typedef struct {
    int pos, byte_start;
    int64_t char_start, char_end;
    const char *text; /* tokens.token (valid UTF-8), NUL-terminated */
    size_t text_len;
} RunDocToken;

typedef struct {
    int64_t id;               /* documents.id */
    int doc_index;            /* its index in the corpus */
    const char *bytes;        /* documents.text_bytes: the exact bytes, NUL-terminated */
    size_t n_bytes;
    int n;                    /* tokens */
    const int64_t *rows;      /* [n] tokens.id */
    const int32_t *ids;       /* [n] tokens.token_id */
    const int32_t *byte_end;  /* [n] tokens.byte_end */
    /* RUN_DOCS_FULL only (zero / NULL otherwise) */
    int64_t byte_offset;      /* documents.byte_offset */
    int n_tokens;             /* documents.n_tokens as stored */
    const char *text;         /* documents.text (valid UTF-8) */
    size_t text_len;
    const RunDocToken *tokens; /* [n] */
} RunDoc;

/* runs.bos of run `run` and its number of recorded documents; -1 with err
 * when there is no such run or it has no recorded documents. */
int run_docs_header(Store *s, int64_t run, int *bos, int *n_docs, char *err);

typedef struct RunDocs RunDocs;
RunDocs *run_docs_open(Store *s, int64_t run, RunDocsDetail detail, char *err);
/* 1 with the next document, 0 at the end (and on every call after it), -1
 * with err. */
int run_docs_next(RunDocs *d, RunDoc *out, char *err);
void run_docs_close(RunDocs *d); /* accepts NULL */

#endif
