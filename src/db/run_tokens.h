/* run_tokens.h — the tokens of a recorded run, read back in document order:
 * what `probe ablate --run ID` measures instead of a corpus file.
 *
 *   int bos, n_docs, doc;
 *   int32_t id;
 *   RunTokens *rt = run_tokens_open(s, run, &bos, &n_docs, err);
 *   while ((got = run_tokens_next(rt, &doc, &id, err)) == 1) ...   // doc_index, token_id
 *   run_tokens_close(rt);
 *
 * One query over documents JOIN tokens ordered by (doc_index, pos): the ids
 * as recorded, without the <|endoftext|> placed before each document when the
 * run's bos is 1. Ownership: the cursor borrows the Store (close the cursor
 * first). */
#ifndef PROBE_RUN_TOKENS_H
#define PROBE_RUN_TOKENS_H

#include <stdint.h>

#include "store.h"

typedef struct RunTokens RunTokens;

/* Opens a cursor over run `run`; sets *bos (runs.bos) and *n_docs (its
 * recorded documents). NULL with err when the run does not exist ("no run 5
 * in 'x.db'"), has no recorded documents, or on a database error. */
RunTokens *run_tokens_open(Store *s, int64_t run, int *bos, int *n_docs, char *err);

/* The next token: 1 with *doc (its document's doc_index) and *id; 0 at the
 * end (and on every call after it); -1 with err on a database error. */
int run_tokens_next(RunTokens *rt, int *doc, int32_t *id, char *err);

void run_tokens_close(RunTokens *rt); /* accepts NULL */

#endif
