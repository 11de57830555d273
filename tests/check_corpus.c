/* check_corpus.c — documents from text/.jsonl corpora, and context windows. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus.h"
#include "testutil.h"
#include "util.h"

static char tmpdir[256];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_corpus"); }

static void teardown(void) { tmpdir_remove(tmpdir); }

/* Writes data to tmpdir/name and returns the path. */
static const char *write_file(const char *name, const char *data, size_t len) {
    return file_write(path_in(tmpdir, name), data, len);
}

/* The corpus at path, which must open and hold n documents. */
static Corpus *open_ok(const char *path, SplitMode mode, int n) {
    char err[PROBE_ERR_LEN];
    Corpus *c = corpus_open(path, mode, err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(corpus_count(c), n);
    return c;
}

static void assert_doc(const Corpus *c, int i, const char *text, size_t offset) {
    const Doc *d = corpus_doc(c, i);
    ck_assert_uint_eq(d->len, strlen(text));
    ck_assert_msg(memcmp(d->text, text, d->len) == 0, "doc %d is '%.*s', want '%s'", i,
                  (int)d->len, d->text, text);
    ck_assert_uint_eq(d->offset, offset);
}

static const char sample[] = "\n\nFirst para\nline two\n\n \t\nSecond\r\n\r\nThird  \n";

START_TEST(test_paragraphs) {
    const char *p = write_file("a.txt", sample, strlen(sample));
    Corpus *c = open_ok(p, SPLIT_PARAGRAPH, 3);
    assert_doc(c, 0, "First para\nline two", 2);
    assert_doc(c, 1, "Second", 26);
    assert_doc(c, 2, "Third  ", 36);
    ck_assert_uint_eq(corpus_bytes(c), strlen(sample));
    ck_assert(corpus_checksum(c) == hash64(sample, strlen(sample), PROBE_HASH_SEED));
    corpus_free(c);
}
END_TEST

START_TEST(test_lines_and_file) {
    const char *p = write_file("a.txt", sample, strlen(sample));
    Corpus *c = open_ok(p, SPLIT_LINE, 4);
    assert_doc(c, 0, "First para", 2);
    assert_doc(c, 1, "line two", 13);
    assert_doc(c, 2, "Second", 26);
    assert_doc(c, 3, "Third  ", 36);
    corpus_free(c);
    c = open_ok(p, SPLIT_FILE, 1);
    assert_doc(c, 0, sample, 0);
    corpus_free(c);
    /* no trailing newline: the last line/paragraph still counts */
    p = write_file("b.txt", "x\n\ny", 4);
    c = open_ok(p, SPLIT_PARAGRAPH, 2);
    assert_doc(c, 1, "y", 3);
    corpus_free(c);
}
END_TEST

START_TEST(test_jsonl) {
    char err[PROBE_ERR_LEN];
    const char j[] = "{\"text\": \"caf\\u00e9 \\\"x\\\"\\n\", \"id\": 1}\n\n{\"text\": \"  \"}\n"
                     "{\"id\": 2, \"text\": \"two\"}";
    const char *p = write_file("c.jsonl", j, strlen(j));
    Corpus *c = open_ok(p, SPLIT_PARAGRAPH, 2); /* the whitespace-only text is dropped */
    assert_doc(c, 0, "caf\xc3\xa9 \"x\"\n", 0);
    const char *second = strstr(j, "{\"id\": 2");
    assert_doc(c, 1, "two", (size_t)(second - j));
    corpus_free(c);

    const char bad[] = "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n";
    p = write_file("bad.jsonl", bad, strlen(bad));
    c = corpus_open(p, SPLIT_PARAGRAPH, err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "bad.jsonl' line 2") != NULL, "%s", err);
}
END_TEST

START_TEST(test_bad_input) {
    char err[PROBE_ERR_LEN];
    const char *p = write_file("empty.txt", "", 0);
    ck_assert_ptr_null(corpus_open(p, SPLIT_PARAGRAPH, err));
    ck_assert_msg(strstr(err, "empty.txt' is empty") != NULL, "%s", err);
    p = write_file("ws.txt", " \n\t\n\n", 5);
    ck_assert_ptr_null(corpus_open(p, SPLIT_LINE, err));
    ck_assert_msg(strstr(err, "is empty") != NULL, "%s", err);
    ck_assert_ptr_null(corpus_open(path_in(tmpdir, "nope.txt"), SPLIT_LINE, err));
    ck_assert_msg(strstr(err, "cannot open") && strstr(err, "nope.txt"), "%s", err);
    /* invalid UTF-8 is kept as bytes */
    p = write_file("bin.txt", "a\xff\xfe" "b\n", 5);
    Corpus *c = open_ok(p, SPLIT_LINE, 1);
    assert_doc(c, 0, "a\xff\xfe" "b", 0);
    corpus_free(c);
    /* a 17 MiB line is refused, naming the file and the limit */
    size_t big = (size_t)17 << 20;
    char *data = malloc(big);
    ck_assert_ptr_nonnull(data);
    memset(data, 'a', big);
    p = write_file("big.txt", data, big);
    free(data);
    ck_assert_ptr_null(corpus_open(p, SPLIT_PARAGRAPH, err));
    ck_assert_msg(strstr(err, "big.txt'") && strstr(err, "above the limit"), "%s", err);
    /* one line: --split line cannot help, so it is not what the error suggests */
    ck_assert_msg(strstr(err, "single line") && !strstr(err, "--split line"), "%s", err);
    /* the same bytes in lines, as one paragraph: --split line helps */
    data = malloc(big);
    ck_assert_ptr_nonnull(data);
    memset(data, 'a', big);
    for (size_t i = 1000; i < big; i += 1000) data[i] = '\n';
    p = write_file("lines.txt", data, big);
    free(data);
    ck_assert_ptr_null(corpus_open(p, SPLIT_PARAGRAPH, err));
    ck_assert_msg(strstr(err, "lines.txt'") && strstr(err, "try --split line"), "%s", err);
    Corpus *ok = open_ok(p, SPLIT_LINE, (int)((big - 1) / 1000 + 1)); /* newlines at 1000, 2000, ... */
    corpus_free(ok);
}
END_TEST

/* Every token owned exactly once, windows within [0, n), len <= ctx, owned
 * tokens past the first window with at least ctx/2 tokens of left context. */
START_TEST(test_windows_invariants) {
    static const int ctxs[] = {1, 2, 3, 4, 7, 8, 16, 1024};
    for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++) {
        int ctx = ctxs[ci];
        for (int n = 0; n <= 3 * ctx + 40; n++) {
            int nw = windows_count(n, ctx);
            if (n == 0) {
                ck_assert_int_eq(nw, 0);
                continue;
            }
            Window *w = malloc(sizeof *w * (size_t)nw);
            windows_plan(n, ctx, w);
            int next = 0; /* next token to own */
            for (int i = 0; i < nw; i++) {
                ck_assert_int_ge(w[i].start, 0);
                ck_assert_int_le(w[i].len, ctx);
                ck_assert_int_le(w[i].start + w[i].len, n);
                ck_assert_int_eq(w[i].first_new, next);
                ck_assert_int_gt(w[i].start + w[i].len, w[i].first_new);
                ck_assert_int_ge(w[i].first_new, w[i].start);
                if (i > 0) ck_assert_int_ge(2 * (w[i].first_new - w[i].start), ctx - (ctx & 1));
                next = w[i].start + w[i].len;
            }
            ck_assert_int_eq(next, n);
            ck_assert_int_eq(w[nw - 1].start + w[nw - 1].len, n);
            free(w);
        }
    }
    /* a concrete plan: 10 tokens, ctx 4 -> starts 0,2,4,6 owning 0-3,4,5,6-9... */
    Window w[8];
    ck_assert_int_eq(windows_count(10, 4), 4);
    windows_plan(10, 4, w);
    ck_assert_int_eq(w[0].start, 0);
    ck_assert_int_eq(w[1].start, 2);
    ck_assert_int_eq(w[1].first_new, 4);
    ck_assert_int_eq(w[2].start, 4);
    ck_assert_int_eq(w[2].first_new, 6);
    ck_assert_int_eq(w[3].start, 6);
    ck_assert_int_eq(w[3].first_new, 8);
    ck_assert_int_eq(windows_count(11, 4), 5);
    windows_plan(11, 4, w);
    ck_assert_int_eq(w[4].start, 7);
    ck_assert_int_eq(w[4].first_new, 10);
}
END_TEST

int main(void) {
    Suite *s = suite_create("corpus");
    TCase *tc = case_add(s, "corpus", 60,
                         (const TTest *[]){test_paragraphs, test_lines_and_file, test_jsonl, test_bad_input,
                                           test_windows_invariants, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
