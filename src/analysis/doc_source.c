/* doc_source.c — see doc_source.h. */
#include "doc_source.h"

#include <stdlib.h>
#include <string.h>

#include "run_docs.h"
#include "util.h"

struct DocSource {
    int bos, count, next;
    int32_t *ids; /* [cap] the current document */
    size_t cap;
    /* corpus file */
    Corpus *corpus;
    const Tokenizer *tok;
    TokBuf buf;
    /* recorded run: a cursor over its documents in corpus order */
    RunDocs *rd;
};

DocSource *doc_source_corpus(const char *path, SplitMode split, const Tokenizer *tok, int bos, char *err) {
    DocSource *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory");
        return NULL;
    }
    s->corpus = corpus_open(path, split, err);
    if (!s->corpus) goto fail;
    s->tok = tok;
    s->bos = bos;
    s->count = corpus_count(s->corpus);
    if (s->count == 0) {
        err_set(err, "empty corpus '%s': no documents", path);
        goto fail;
    }
    return s;
fail:
    doc_source_free(s);
    return NULL;
}

DocSource *doc_source_run(Store *st, int64_t run, char *err) {
    DocSource *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (run_docs_header(st, run, &s->bos, &s->count, err) || !(s->rd = run_docs_open(st, run, RUN_DOCS_IDS, err))) {
        free(s);
        return NULL;
    }
    return s;
}

void doc_source_free(DocSource *s) {
    if (!s) return;
    corpus_free(s->corpus);
    tok_buf_free(&s->buf);
    run_docs_close(s->rd);
    free(s->ids);
    free(s);
}

int doc_source_count(const DocSource *s) { return s->count; }

int doc_source_bos(const DocSource *s) { return s->bos; }

uint64_t doc_source_checksum(const DocSource *s) { return s->corpus ? corpus_checksum(s->corpus) : 0; }

/* Makes room for ids[0..k]. */
static int reserve(DocSource *s, size_t k, char *err) {
    if (k < s->cap) return 0;
    size_t cap = s->cap ? s->cap * 2 : 1024;
    while (cap <= k) cap *= 2;
    int32_t *g = realloc(s->ids, sizeof *g * cap);
    if (!g) return err_set(err, "out of memory");
    s->ids = g;
    s->cap = cap;
    return 0;
}

/* s->ids = [<|endoftext|> when bos] + ids[0..n); sets *out_n. */
static int fill(DocSource *s, const int32_t *ids, size_t n, int *out_n, char *err) {
    size_t k = s->bos ? 1 : 0;
    if (reserve(s, k + n, err)) return -1;
    if (k) s->ids[0] = TOK_EOT;
    if (n) memcpy(s->ids + k, ids, sizeof *s->ids * n);
    *out_n = (int)(k + n);
    return 0;
}

/* The next document of a recorded run into s->ids; sets *n. */
static int next_from_run(DocSource *s, int *n, int *doc, char *err) {
    RunDoc d;
    int got = run_docs_next(s->rd, &d, err);
    if (got <= 0) return got;
    if (fill(s, d.ids, (size_t)d.n, n, err)) return -1;
    s->next++;
    *doc = d.doc_index;
    return 1;
}

/* The next document of the corpus, tokenized, into s->ids; sets *n. */
static int next_from_corpus(DocSource *s, int *n, int *doc, char *err) {
    if (s->next >= s->count) return 0;
    *doc = s->next;
    const Doc *d = corpus_doc(s->corpus, s->next++);
    s->buf.n = 0;
    if (tok_encode(s->tok, d->text, d->len, &s->buf)) return err_set(err, "out of memory tokenizing");
    return fill(s, s->buf.ids, s->buf.n, n, err) ? -1 : 1;
}

int doc_source_next(DocSource *s, int32_t **ids, int *n, int *doc, char *err) {
    int got = s->rd ? next_from_run(s, n, doc, err) : next_from_corpus(s, n, doc, err);
    if (got == 1) *ids = s->ids;
    return got;
}
