/* corpus.c — see corpus.h.
 *
 *   Corpus *c = corpus_open("book.txt", SPLIT_PARAGRAPH, err);
 *   for (int i = 0; i < corpus_count(c); i++) { const Doc *d = corpus_doc(c, i); ... }
 *   corpus_free(c);
 *
 * Rules (the same for every command that reads a corpus):
 *  - paragraph: documents are runs of non-blank lines; a blank line is one
 *    holding only spaces, tabs or '\r'. A document's text runs from the start
 *    of its first line to the end of its last line, without the final newline.
 *  - line: every non-blank line is a document (without its '\n' and a '\r'
 *    right before it).
 *  - file: the whole file is one document (unless it is all whitespace).
 *  - a path ending in ".jsonl": one JSON object per non-blank line whose
 *    string field "text" is the document (split mode is ignored); Doc.offset
 *    is the byte offset of the line.
 *  - whitespace-only documents are dropped; a corpus with no document left is
 *    an error (nothing to do), as is a document above PROBE_DOC_MAX_BYTES.
 *  - bytes are taken as they are: invalid UTF-8 is not rejected (the
 *    tokenizer encodes it as bytes).
 * The checksum is FNV-1a over the raw corpus bytes. */
#include "corpus.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Documents above this size are refused with a clear error instead of being
 * tokenized: 16 MiB is about 4M tokens, an hour of recording. */
#define PROBE_DOC_MAX_BYTES ((size_t)16 << 20)

struct Corpus {
    char *data;  /* the raw file, NUL-terminated */
    size_t len;
    char *owned; /* decoded .jsonl texts, back to back (NULL otherwise) */
    Doc *docs;
    int n, cap;
    uint64_t checksum;
};

void corpus_free(Corpus *c) {
    if (!c) return;
    free(c->data);
    free(c->owned);
    free(c->docs);
    free(c);
}

int corpus_count(const Corpus *c) { return c->n; }
const Doc *corpus_doc(const Corpus *c, int i) { return &c->docs[i]; }
uint64_t corpus_checksum(const Corpus *c) { return c->checksum; }

void corpus_shard(Corpus *c, int i, int n) {
    int k = 0;
    for (int d = 0; d < c->n; d++)
        if (c->docs[d].index % n == i - 1) c->docs[k++] = c->docs[d];
    c->n = k;
}
size_t corpus_bytes(const Corpus *c) { return c->len; }

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' && s[i] != '\f' &&
            s[i] != '\v')
            return 0;
    return 1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Appends a document; drops it when blank. */
static int push_doc(Corpus *c, const char *path, const char *text, size_t len, size_t offset,
                    char *err) {
    if (len == 0 || is_blank(text, len)) return 0;
    if (len > PROBE_DOC_MAX_BYTES) /* advice that can help: --split line only splits at line breaks */
        return err_set(err, "'%s': document at byte %zu is %zu bytes, above the limit of %zu MiB (%s)", path, offset,
                       len, PROBE_DOC_MAX_BYTES >> 20,
                       memchr(text, '\n', len) ? "it has line breaks: try --split line"
                                                : "it is a single line: break the text into lines or paragraphs first");
    if (c->n == c->cap) {
        int ncap = c->cap ? c->cap * 2 : 256;
        Doc *nd = realloc(c->docs, sizeof *nd * (size_t)ncap);
        if (!nd) return err_set(err, "out of memory reading '%s'", path);
        c->docs = nd;
        c->cap = ncap;
    }
    c->docs[c->n] = (Doc){.text = text, .len = len, .offset = offset, .index = c->n};
    c->n++;
    return 0;
}

/* Next line [*s, *e) starting at pos; returns the position after its '\n'. */
static size_t next_line(const char *d, size_t len, size_t pos, size_t *e) {
    const char *nl = memchr(d + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - d) : len;
    *e = end;
    return nl ? end + 1 : len;
}

static int split_text(Corpus *c, const char *path, SplitMode mode, char *err) {
    const char *d = c->data;
    size_t len = c->len;
    if (mode == SPLIT_FILE) return push_doc(c, path, d, len, 0, err);
    size_t pos = 0;
    size_t para_start = 0, para_end = 0;
    int in_para = 0;
    while (pos < len) {
        size_t e, next = next_line(d, len, pos, &e);
        int blank = is_blank(d + pos, e - pos);
        if (mode == SPLIT_LINE) {
            size_t ee = e > pos && d[e - 1] == '\r' ? e - 1 : e;
            if (!blank && push_doc(c, path, d + pos, ee - pos, pos, err)) return -1;
        } else if (blank) {
            if (in_para && push_doc(c, path, d + para_start, para_end - para_start, para_start, err))
                return -1;
            in_para = 0;
        } else {
            if (!in_para) para_start = pos;
            in_para = 1;
            para_end = e > pos && d[e - 1] == '\r' ? e - 1 : e;
        }
        pos = next;
    }
    if (in_para && push_doc(c, path, d + para_start, para_end - para_start, para_start, err))
        return -1;
    return 0;
}

static int split_jsonl(Corpus *c, const char *path, char *err) {
    const char *d = c->data;
    size_t len = c->len;
    /* decoded texts are never longer than their JSON lines: one buffer suffices */
    c->owned = malloc(len + 1);
    if (!c->owned) return err_set(err, "out of memory reading '%s'", path);
    size_t used = 0, pos = 0;
    int line = 0;
    while (pos < len) {
        size_t e, next = next_line(d, len, pos, &e);
        line++;
        if (!is_blank(d + pos, e - pos)) {
            cJSON *obj = cJSON_ParseWithLength(d + pos, e - pos);
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "text");
            if (!obj || !cJSON_IsObject(obj) || !cJSON_IsString(text)) {
                cJSON_Delete(obj);
                return err_set(err, "'%s' line %d: not a JSON object with a string \"text\" field",
                               path, line);
            }
            /* cJSON stops strings at an escaped \u0000; such a text is cut there */
            size_t n = strlen(text->valuestring);
            memcpy(c->owned + used, text->valuestring, n);
            cJSON_Delete(obj);
            if (push_doc(c, path, c->owned + used, n, pos, err)) return -1;
            used += n;
        }
        pos = next;
    }
    return 0;
}

Corpus *corpus_open(const char *path, SplitMode mode, char *err) {
    Corpus *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, "out of memory reading '%s'", path);
        return NULL;
    }
    if (file_read_all(path, &c->data, &c->len, err)) goto fail;
    c->checksum = hash64(c->data, c->len, PROBE_HASH_SEED);
    if (ends_with(path, ".jsonl") ? split_jsonl(c, path, err) : split_text(c, path, mode, err))
        goto fail;
    if (c->n == 0) {
        err_set(err, "corpus '%s' is empty: no document with any non-whitespace text",
                strcmp(path, "-") ? path : "<stdin>");
        goto fail;
    }
    return c;
fail:
    corpus_free(c);
    return NULL;
}

/* ---- windows ------------------------------------------------------------ */

static int window_stride(int ctx) { return ctx / 2 > 0 ? ctx / 2 : 1; }

int windows_count(int n_tokens, int ctx) {
    if (n_tokens <= 0) return 0;
    if (n_tokens <= ctx) return 1;
    int stride = window_stride(ctx);
    /* starts 0, stride, ... while start + ctx < n, then one aligned to the end */
    return (n_tokens - ctx + stride - 1) / stride + 1;
}

void windows_plan(int n_tokens, int ctx, Window *out) {
    int nw = windows_count(n_tokens, ctx);
    if (nw == 0) return;
    if (nw == 1) {
        out[0] = (Window){.start = 0, .len = n_tokens, .first_new = 0};
        return;
    }
    int stride = window_stride(ctx);
    int prev_end = 0;
    for (int i = 0; i < nw; i++) {
        int start = i == nw - 1 ? n_tokens - ctx : i * stride;
        out[i] = (Window){.start = start, .len = ctx, .first_new = prev_end};
        prev_end = start + ctx;
    }
}
