/* check_utf8.c — the text form of bytes and character indexes (src/utf8.h).
 *
 * The contract, case by case: Unicode's substitution of maximal subparts
 * (overlongs, surrogates, code points above U+10FFFF, truncated sequences,
 * stray continuation bytes), NUL as U+FFFD, character spans of byte spans.
 * Then random byte strings against an independent implementation: Python's
 * bytes.decode('utf-8', 'replace') (with NUL replaced, the one documented
 * difference), run through /usr/bin/python3. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "utf8.h"

#define R UTF8_REPLACEMENT

/* input bytes -> expected text form, and the number of units (characters) */
static const struct {
    const char *in;
    size_t n;
    const char *want;
    int chars;
} cases[] = {
    {"", 0, "", 0},
    {"plain ASCII", 11, "plain ASCII", 11},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 8},
    /* a lone invalid byte, stray continuation bytes */
    {"\xff", 1, R, 1},
    {"a\xfe" "b", 3, "a" R "b", 3},
    {"\x80\xbf", 2, R R, 2},
    /* truncated sequences: the maximal subpart is one U+FFFD, at the end or not */
    {"\xe2\x82", 2, R, 1},
    {"\xe2\x82x", 3, R "x", 2},
    {"\xf0\x9f\x98", 3, R, 1},
    {"\xc2", 1, R, 1},
    {"\xc2" "A", 2, R "A", 2},
    {"\xe2\x28\xa1", 3, R "(" R, 3},
    /* overlongs: C0/C1 never lead; E0 80..9F and F0 80..8F are not subparts */
    {"\xc0\xaf", 2, R R, 2},
    {"\xc1\xbf", 2, R R, 2},
    {"\xe0\x80\x80", 3, R R R, 3},
    {"\xe0\xa0\x80", 3, "\xe0\xa0\x80", 1}, /* U+0800, the smallest 3-byte */
    {"\xf0\x8f\xbf\xbf", 4, R R R R, 4},
    {"\xf0\x90\x80\x80", 4, "\xf0\x90\x80\x80", 1}, /* U+10000 */
    /* surrogates D800..DFFF: ED A0..BF is ill-formed after ED */
    {"\xed\xa0\x80", 3, R R R, 3},
    {"\xed\xbf\xbf", 3, R R R, 3},
    {"\xed\x9f\xbf", 3, "\xed\x9f\xbf", 1}, /* U+D7FF */
    {"\xee\x80\x80", 3, "\xee\x80\x80", 1}, /* U+E000 */
    /* above U+10FFFF */
    {"\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
    {"\xf4\x90\x80\x80", 4, R R R R, 4},
    {"\xf5\x80\x80\x80", 4, R R R R, 4},
    {"\xf8\x88\x80\x80\x80", 5, R R R R R, 5},
    /* NUL: U+FFFD in the text form (SQLite's text functions stop at NUL) */
    {"a\0b", 3, "a" R "b", 3},
    {"\0", 1, R, 1},
    /* ’ cut by BPE into E2 80 | 99: each half alone */
    {"\xe2\x80", 2, R, 1},
    {"\x99", 1, R, 1},
};

START_TEST(test_cases) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t n = utf8_text(cases[i].in, cases[i].n, out);
        ck_assert_msg(n == strlen(cases[i].want) && !memcmp(out, cases[i].want, n),
                      "case %zu: text form of %zu bytes is %zu bytes, want %zu", i, cases[i].n, n,
                      strlen(cases[i].want));
        ck_assert_int_eq(out[n], '\0');
        /* one character per unit, counted by the cursor and by walking units */
        Utf8Cursor c;
        utf8_cursor_init(&c, cases[i].in, cases[i].n);
        ck_assert_int_eq(utf8_cursor_char(&c, cases[i].n), cases[i].chars);
        int units = 0;
        for (size_t k = 0; k < cases[i].n; units++) {
            int kept;
            size_t len = utf8_unit(cases[i].in + k, cases[i].n - k, &kept);
            ck_assert(len >= 1 && len <= 4);
            k += len;
        }
        ck_assert_int_eq(units, cases[i].chars);
        /* a text form is its own text form */
        ck_assert_uint_eq(utf8_clean_prefix(out, n), n);
        /* clean exactly when unchanged */
        int same = n == cases[i].n && !memcmp(out, cases[i].in, n);
        ck_assert_int_eq(utf8_clean_prefix(cases[i].in, cases[i].n) == cases[i].n, same);
    }
}
END_TEST

START_TEST(test_clean_prefix_and_buffers) {
    ck_assert_uint_eq(utf8_clean_prefix("ab\xe2\x82\xac" "c\xff" "d", 7), 6);
    ck_assert_uint_eq(utf8_clean_prefix("ab\0c", 4), 2);
    ck_assert_uint_eq(utf8_clean_prefix("ab\xe2\x82", 4), 2);
    /* utf8_text_in: no copy for clean input, the buffer otherwise */
    Utf8Buf b = {0};
    const char *s = "d\xc3\xa9j\xc3\xa0 vu";
    size_t len;
    ck_assert_ptr_eq(utf8_text_in(&b, s, strlen(s), &len), s);
    ck_assert_uint_eq(len, strlen(s));
    ck_assert_ptr_null(b.data);
    const char *t = utf8_text_in(&b, "x\xffy", 3, &len);
    ck_assert_ptr_eq(t, b.data);
    ck_assert_str_eq(t, "x" R "y");
    /* the buffer grows for a long input */
    char big[5000];
    memset(big, 0xff, sizeof big);
    t = utf8_text_in(&b, big, sizeof big, &len);
    ck_assert_uint_eq(len, 3 * sizeof big);
    ck_assert_int_eq(memcmp(t + len - 3, R, 3), 0);
    utf8_buf_free(&b);
    utf8_buf_free(&b); /* a freed buffer is a zeroed one */
    char *d = utf8_text_dup("\xed\xa0\x80", 3, &len);
    ck_assert_str_eq(d, R R R);
    ck_assert_uint_eq(len, 9);
    free(d);
}
END_TEST

/* Character spans of byte spans: what tokens.char_start / char_end hold. */
START_TEST(test_cursor_spans) {
    /* "Abram’s" with ’ = E2 80 99 cut by BPE as Ab|ram|E2 80|99|s */
    const char *doc = "Abram\xe2\x80\x99s";
    static const size_t spans[][2] = {{0, 2}, {2, 5}, {5, 7}, {7, 8}, {8, 9}};
    static const int64_t want[][2] = {{0, 2}, {2, 5}, {5, 6}, {5, 6}, {6, 7}};
    Utf8Cursor c;
    utf8_cursor_init(&c, doc, 9);
    for (int i = 0; i < 5; i++) {
        int64_t c0, c1;
        utf8_cursor_span(&c, spans[i][0], spans[i][1], &c0, &c1);
        ck_assert_msg(c0 == want[i][0] && c1 == want[i][1], "span %d: chars [%lld, %lld), want [%lld, %lld)", i,
                      (long long)c0, (long long)c1, (long long)want[i][0], (long long)want[i][1]);
    }
    /* every byte of ’ is in character 5; the end is the character count */
    for (size_t b = 5; b < 8; b++) ck_assert_int_eq(utf8_cursor_char(&c, b), 5);
    ck_assert_int_eq(utf8_cursor_char(&c, 9), 7);
    ck_assert_int_eq(utf8_cursor_char(&c, 100), 7); /* clamped */
    /* a backward step restarts the walk */
    ck_assert_int_eq(utf8_cursor_char(&c, 1), 1);
    ck_assert_int_eq(utf8_cursor_char(&c, 8), 6);
    /* invalid bytes: units a | FF | E2 82 | NUL | b */
    const char *bad = "a\xff\xe2\x82\0b";
    utf8_cursor_init(&c, bad, 6);
    static const int64_t at[] = {0, 1, 2, 2, 3, 4, 5};
    for (size_t b = 0; b <= 6; b++) ck_assert_int_eq(utf8_cursor_char(&c, b), at[b]);
    /* empty and out-of-range spans */
    int64_t c0, c1;
    utf8_cursor_init(&c, bad, 6);
    utf8_cursor_span(&c, 3, 3, &c0, &c1);
    ck_assert(c0 == 2 && c1 == 2);
    utf8_cursor_span(&c, 4, 99, &c0, &c1);
    ck_assert(c0 == 3 && c1 == 5);
    /* the empty string */
    utf8_cursor_init(&c, "", 0);
    utf8_cursor_span(&c, 0, 0, &c0, &c1);
    ck_assert(c0 == 0 && c1 == 0);
}
END_TEST

/* 3000 random byte strings, biased towards the bytes that make UTF-8 hard,
 * against Python's decoder. A wrong range in utf8_unit (say ED A0 taken as
 * a prefix) changes the text form of some of them. */
START_TEST(test_random_against_python) {
    python3_require("this check compares with Python's UTF-8 decoder");
    static const unsigned char alphabet[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                             0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
                                             0xf4, 0xf5, 0xf8, 0xfe, 0xff, 0x20};
    char dir[64];
    tmpdir_make(dir, sizeof dir, "check_utf8");
    const char *in_path = path_in(dir, "in.hex"), *out_path = path_in(dir, "out.hex");
    enum { N = 3000 };
    static unsigned char data[N][12];
    static int lens[N];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    FILE *f = fopen(in_path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        lens[i] = (int)(x % 13);
        for (int k = 0; k < lens[i]; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i][k] = alphabet[x % sizeof alphabet];
            fprintf(f, "%02x", data[i][k]);
        }
        fputc('\n', f);
    }
    fclose(f);
    char msg[4096];
    ck_assert_msg(run_cmdf(msg, sizeof msg,
                           PYTHON3 " -c 'import sys\n"
                           "out = open(sys.argv[2], \"w\")\n"
                           "for line in open(sys.argv[1]):\n"
                           "    t = bytes.fromhex(line.strip()).decode(\"utf-8\", \"replace\").replace(\"\\0\", \"\\ufffd\")\n"
                           "    out.write(t.encode(\"utf-8\").hex() + \" %%d\\n\" %% len(t))\n' '%s' '%s'",
                           in_path, out_path) == 0,
                  "python failed: %s", msg);
    f = fopen(out_path, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        char text[64], hex[160];
        size_t n = utf8_text((const char *)data[i], (size_t)lens[i], text);
        for (size_t k = 0; k < n; k++) snprintf(hex + 2 * k, 3, "%02x", (unsigned char)text[k]);
        hex[2 * n] = '\0';
        int chars = -1;
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = '\0';
        chars = atoi(sp + 1);
        ck_assert_msg(!strcmp(hex, line), "string %d: text form %s, Python %s", i, hex, line);
        Utf8Cursor c;
        utf8_cursor_init(&c, (const char *)data[i], (size_t)lens[i]);
        ck_assert_int_eq(utf8_cursor_char(&c, (size_t)lens[i]), chars);
    }
    fclose(f);
    tmpdir_remove(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("utf8");
    case_add(s, "utf8", 0,
             (const TTest *[]){test_cases, test_clean_prefix_and_buffers, test_cursor_spans, test_random_against_python,
                               NULL});
    return run_suite(s);
}
