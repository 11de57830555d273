/* check_tokenizer.c — the GPT-2 tokenizer against committed reference ids.
 *
 * tests/fixtures/tokenizer/NAME.tok (scripts/fixtures/gen_tokenizer_fixtures.py) hold
 * an input and the ids OpenAI's encoder.py gives for it (cross-checked with
 * gpt-3-encoder): ~1 MB of English and hand-made hard cases. Every case must
 * match id for id, decode back byte for byte, and have exact offsets. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "tokenizer.h"
#include "util.h"

#define TOKDIR "models/gpt2-tokenizer"
#define FIXDIR "tests/fixtures/tokenizer"

static Tokenizer *tok;

static void load_tok(void) {
    char err[PROBE_ERR_LEN];
    tok = tok_load(TOKDIR "/vocab.json", TOKDIR "/merges.txt", err);
    if (!tok) fprintf(stderr, "tok_load: %s\n", err);
}

static void free_tok(void) {
    tok_free(tok);
    tok = NULL;
}

/* ------------------------------------------------------------ fixtures --- */

typedef struct {
    char *data; /* the whole file */
    const char *text;
    uint32_t len, n;
    const unsigned char *ids; /* n little-endian u16 */
} Fixture;

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fixture_read(const char *path, Fixture *f) {
    size_t len;
    char err[PROBE_ERR_LEN];
    if (file_read_all(path, &f->data, &len, err)) return -1;
    const unsigned char *p = (const unsigned char *)f->data;
    if (len < 16 || memcmp(p, "TOKFIX1\n", 8)) return -1;
    f->len = rd32(p + 8);
    if (12 + (size_t)f->len + 4 > len) return -1;
    f->text = f->data + 12;
    f->n = rd32(p + 12 + f->len);
    f->ids = p + 16 + f->len;
    if (16 + (size_t)f->len + 2 * (size_t)f->n != len) return -1;
    return 0;
}

/* Checks ids, offsets and round trip of one case; returns the failures. */
static int check_case(const char *name, const Fixture *f) {
    int bad = 0;
    TokBuf b = {0};
    ck_assert_int_eq(tok_encode(tok, f->text, f->len, &b), 0);
    if (b.n != f->n) {
        fprintf(stderr, "%s: %zu tokens, expected %u\n", name, b.n, f->n);
        bad++;
    }
    for (size_t i = 0; i < b.n && i < f->n; i++) {
        int want = f->ids[2 * i] | f->ids[2 * i + 1] << 8;
        if (b.ids[i] != want) {
            fprintf(stderr, "%s: token %zu is %d, expected %d (byte offset %u)\n", name, i, b.ids[i],
                    want, b.start[i]);
            bad++;
            break;
        }
    }
    /* offsets: contiguous cover of the input, each slice = the token's bytes */
    size_t pos = 0;
    for (size_t i = 0; i < b.n; i++) {
        size_t tl;
        const char *tb = tok_token_bytes(tok, b.ids[i], &tl);
        if (!tb || b.start[i] != pos || pos + tl > f->len || memcmp(f->text + pos, tb, tl)) {
            fprintf(stderr, "%s: token %zu offset %u does not match its bytes\n", name, i, b.start[i]);
            bad++;
            break;
        }
        pos += tl;
    }
    if (pos != f->len) {
        fprintf(stderr, "%s: tokens cover %zu of %u bytes\n", name, pos, f->len);
        bad++;
    }
    char *out = NULL, err[PROBE_ERR_LEN];
    size_t out_len = 0;
    ck_assert_int_eq(tok_decode(tok, b.ids, b.n, &out, &out_len, err), 0);
    if (out_len != f->len || memcmp(out, f->text, f->len)) {
        fprintf(stderr, "%s: decode is not byte-exact\n", name);
        bad++;
    }
    free(out);
    tok_buf_free(&b);
    return bad;
}

START_TEST(test_fixtures) {
    ck_assert_ptr_nonnull(tok);
    DIR *d = opendir(FIXDIR);
    ck_assert_ptr_nonnull(d);
    int cases = 0, bad = 0, english = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".tok")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", FIXDIR, e->d_name);
        Fixture f = {0};
        ck_assert_msg(fixture_read(path, &f) == 0, "bad fixture %s", path);
        bad += check_case(e->d_name, &f);
        if (!strcmp(e->d_name, "english.tok")) english = f.n;
        free(f.data);
        cases++;
    }
    closedir(d);
    ck_assert_int_ge(cases, 25);
    ck_assert_int_gt(english, 200000);
    ck_assert_msg(bad == 0, "%d of %d fixture cases failed (details above)", bad, cases);
}
END_TEST

/* Encoding the same text again (now from the cache), and appending to a
 * buffer that already holds tokens, gives the same ids and relative offsets. */
START_TEST(test_cache_and_append) {
    ck_assert_ptr_nonnull(tok);
    Fixture f = {0};
    ck_assert_int_eq(fixture_read(FIXDIR "/english.tok", &f), 0);
    TokBuf a = {0}, b = {0};
    ck_assert_int_eq(tok_encode(tok, f.text, f.len, &a), 0);
    ck_assert_int_eq(tok_encode(tok, "Hi", 2, &b), 0);
    size_t base = b.n;
    ck_assert_int_eq(tok_encode(tok, f.text, f.len, &b), 0);
    ck_assert_uint_eq(b.n, base + a.n);
    ck_assert_int_eq(memcmp(a.ids, b.ids + base, a.n * sizeof *a.ids), 0);
    ck_assert_int_eq(memcmp(a.start, b.start + base, a.n * sizeof *a.start), 0);
    tok_buf_free(&a);
    tok_buf_free(&b);
    free(f.data);
}
END_TEST

/* Arbitrary bytes (mostly invalid UTF-8): byte-exact round trip, exact offsets. */
START_TEST(test_random_bytes) {
    ck_assert_ptr_nonnull(tok);
    uint64_t s = 12345;
    char buf[4096];
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round * 37) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned v = (unsigned)(s >> 33);
            /* skew towards spaces, apostrophes, letters and UTF-8 lead bytes */
            const char pick[] = " '\n\tsat0\xc3\xa9\xe2\x80\xf0\x9f\x98";
            buf[i] = (v & 3) ? pick[(v >> 2) % (sizeof pick - 1)] : (char)(v >> 8);
        }
        Fixture f = {.text = buf, .len = (uint32_t)n};
        TokBuf b = {0};
        ck_assert_int_eq(tok_encode(tok, buf, n, &b), 0);
        f.n = (uint32_t)b.n;
        unsigned char *ids = malloc(2 * b.n + 1);
        for (size_t i = 0; i < b.n; i++) {
            ids[2 * i] = (unsigned char)b.ids[i];
            ids[2 * i + 1] = (unsigned char)(b.ids[i] >> 8);
        }
        f.ids = ids;
        ck_assert_int_eq(check_case("random", &f), 0);
        free(ids);
        tok_buf_free(&b);
    }
}
END_TEST

START_TEST(test_basics) {
    ck_assert_ptr_nonnull(tok);
    ck_assert_int_eq(tok_vocab_size(tok), 50257);
    size_t len;
    const char *eot = tok_token_bytes(tok, TOK_EOT, &len);
    ck_assert_ptr_nonnull(eot);
    ck_assert_uint_eq(len, 13);
    ck_assert_int_eq(memcmp(eot, "<|endoftext|>", 13), 0);
    ck_assert_ptr_null(tok_token_bytes(tok, 50257, &len));
    ck_assert_ptr_null(tok_token_bytes(tok, -1, &len));
    TokBuf b = {0};
    ck_assert_int_eq(tok_encode(tok, "Hello world", 11, &b), 0);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_int_eq(b.ids[0], 15496);
    ck_assert_int_eq(b.ids[1], 995);
    ck_assert_uint_eq(b.start[1], 5);
    char *out = NULL, err[PROBE_ERR_LEN] = "";
    size_t out_len;
    int32_t bad_ids[] = {15496, 50257};
    ck_assert_int_eq(tok_decode(tok, bad_ids, 2, &out, &out_len, err), -1);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "50257") != NULL, "%s", err);
    ck_assert_int_eq(tok_decode(tok, NULL, 0, &out, &out_len, err), 0);
    ck_assert_uint_eq(out_len, 0);
    ck_assert_str_eq(out, "");
    free(out);
    tok_buf_free(&b);
}
END_TEST

/* ------------------------------------------------------ malformed files --- */

static char tmpdir[64];

static void make_tmpdir(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_tokenizer"); }

static void rm_tmpdir(void) { tmpdir_remove(tmpdir); }

static void write_file(const char *name, const char *text) { file_write(path_in(tmpdir, name), text, strlen(text)); }

/* A valid small vocab.json: the 256 byte symbols (ids 0..255) plus `extra`
 * (",\"ab\":256..." style, may be ""). */
static void write_vocab(const char *extra) {
    static char buf[8192];
    size_t n = 0;
    int k = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{");
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)k++;
        char sym[8];
        if (cp == '"' || cp == '\\') snprintf(sym, sizeof sym, "\\%c", (char)cp);
        else if (cp < 0x80) snprintf(sym, sizeof sym, "%c", (char)cp);
        else snprintf(sym, sizeof sym, "%c%c", (char)(0xC0 | cp >> 6), (char)(0x80 | (cp & 0x3F)));
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%s\": %d", b ? ", " : "", sym, b);
    }
    snprintf(buf + n, sizeof buf - n, "%s}", extra);
    write_file("vocab.json", buf);
}

/* Loads tmpdir's files; asserts failure and that err contains each of the
 * NULL-terminated strings. */
static void expect_error(const char *must1, const char *must2) {
    char err[PROBE_ERR_LEN] = "";
    Tokenizer *t = tok_load(path_in(tmpdir, "vocab.json"), path_in(tmpdir, "merges.txt"), err);
    ck_assert_msg(t == NULL, "loaded although malformed (expected '%s')", must1);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
    ck_assert_msg(strstr(err, must1) != NULL, "error '%s' lacks '%s'", err, must1);
    if (must2) ck_assert_msg(strstr(err, must2) != NULL, "error '%s' lacks '%s'", err, must2);
}

START_TEST(test_small_valid) {
    make_tmpdir();
    write_vocab(", \"ab\": 256, \"abc\": 257, \"<|endoftext|>\": 258");
    write_file("merges.txt", "#version: 0.2\na b\nab c\n");
    char err[PROBE_ERR_LEN];
    Tokenizer *t = tok_load(path_in(tmpdir, "vocab.json"), path_in(tmpdir, "merges.txt"), err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(tok_vocab_size(t), 259);
    TokBuf b = {0};
    ck_assert_int_eq(tok_encode(t, "abcab", 5, &b), 0);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_int_eq(b.ids[0], 257);
    ck_assert_int_eq(b.ids[1], 256);
    tok_buf_free(&b);
    tok_free(t);
    rm_tmpdir();
}
END_TEST

START_TEST(test_bad_files) {
    make_tmpdir();
    /* missing files */
    expect_error("vocab.json", "cannot open");
    write_vocab("");
    expect_error("merges.txt", "cannot open");
    write_file("merges.txt", "#version: 0.2\n");
    /* vocab.json */
    write_file("vocab.json", "{\"a\": 1,, }");
    expect_error("vocab.json", "malformed JSON");
    write_file("vocab.json", "{\"a\": 0,\n\"b\": 1\n");
    expect_error("vocab.json", "malformed JSON");
    write_file("vocab.json", "[1, 2]");
    expect_error("vocab.json", "not a JSON object");
    write_vocab(", \"ab\": 2.5");
    expect_error("vocab.json", "\"ab\"");
    write_vocab(", \"ab\": \"256\"");
    expect_error("vocab.json", "not an integer");
    write_vocab(", \"ab\": -3");
    expect_error("vocab.json", "not an integer");
    write_vocab(", \"ab\": 65");
    expect_error("vocab.json", "duplicate id 65");
    write_vocab(", \"ab\": 256, \"ab\": 257");
    expect_error("vocab.json", "duplicate token \"ab\"");
    write_file("vocab.json", "{\"a\": 0, \"b\": 1}");
    expect_error("vocab.json", "no token for byte");
    /* merges.txt */
    write_vocab(", \"ab\": 256, \"abc\": 257");
    write_file("merges.txt", "#version: 0.2\na b\nab c d\n");
    expect_error("merges.txt", "line 3");
    write_file("merges.txt", "#version: 0.2\nab\n");
    expect_error("merges.txt", "line 2");
    write_file("merges.txt", "#version: 0.2\na b\n\nab c\n");
    expect_error("merges.txt", "line 3");
    write_file("merges.txt", "#version: 0.2\na b\nxy c\n");
    expect_error("merges.txt", "line 3");
    write_file("merges.txt", "#version: 0.2\na b\nxy c\n");
    expect_error("\"xy\" is not in the vocabulary", NULL);
    write_file("merges.txt", "#version: 0.2\na b\nb c\n");
    expect_error("merges.txt", "line 3");
    write_file("merges.txt", "#version: 0.2\na b\nb c\n");
    expect_error("merge result \"bc\"", NULL);
    /* cut at a line boundary: every line is fine, but "abc" can no longer be
     * made (specials such as <|endoftext|> need no merge) */
    write_vocab(", \"ab\": 256, \"abc\": 257, \"<|endoftext|>\": 258");
    write_file("merges.txt", "#version: 0.2\na b\n");
    expect_error("merges.txt' produces none of 1 vocabulary tokens (e.g. id 257 \"abc\")", "truncated");
    rm_tmpdir();
}
END_TEST

/* ---------------------------------------------------------------- CLI --- */

START_TEST(test_cli) {
    char out[8192];
    const char *bin = probe_bin();
    make_tmpdir();
    write_file("in.txt", "Hello world");
    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model " TOKDIR " %s/in.txt", tmpdir), 0);
    ck_assert_str_eq(out, "[15496, 995]\n");

    ck_assert_int_eq(run_cmdf(out, sizeof out, "printf '' | %s tokenize --model " TOKDIR " -", bin), 0);
    ck_assert_str_eq(out, "[]\n");

    write_file("ids.json", "[15496, 995, 0]");
    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --decode --model " TOKDIR " %s/ids.json", tmpdir), 0);
    ck_assert_str_eq(out, "Hello world!");

    /* byte-exact round trip of invalid UTF-8 through the CLI */
    write_file("raw.bin", "a\xff\xfe \xc3\xa9\xed\xa0\x80 'S\r\n\n\n  x  \x80");
    ck_assert_int_eq(run_cmdf(out, sizeof out,
                              "%s tokenize --model " TOKDIR " %s/raw.bin | %s tokenize --model " TOKDIR
                              " --decode - | cmp - %s/raw.bin",
                              bin, tmpdir, bin, tmpdir), 0);

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: probe tokenize"));

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --bogus -"), 2);
    ck_assert_ptr_nonnull(strstr(out, "option '--bogus'"));

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model"), 2);

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model " TOKDIR), 2);

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model " TOKDIR " %s/nope.txt", tmpdir), 1);
    ck_assert_ptr_nonnull(strstr(out, "nope.txt"));

    write_file("bad_ids.json", "[15496, 99999]");
    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --decode --model " TOKDIR " %s/bad_ids.json", tmpdir),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "99999"));

    /* a model directory with a malformed merges.txt */
    write_vocab(", \"ab\": 256");
    write_file("merges.txt", "#version: 0.2\na b\na b c\n");
    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model %s %s/in.txt", tmpdir, tmpdir), 1);
    ck_assert_msg(strstr(out, "merges.txt") && strstr(out, "line 3"), "%s", out);
    ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);

    ck_assert_int_eq(run_probe(out, sizeof out, "tokenize --model %s/none %s/in.txt", tmpdir, tmpdir), 1);
    ck_assert_msg(strstr(out, "vocab.json") != NULL, "%s", out);
    rm_tmpdir();
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = case_add(s, "encode", 120,
                         (const TTest *[]){test_basics, test_fixtures, test_cache_and_append, test_random_bytes, NULL});
    tcase_add_unchecked_fixture(tc, load_tok, free_tok);
    case_add(s, "files", 60, (const TTest *[]){test_small_valid, test_bad_files, test_cli, NULL});
    return run_suite(s);
}
