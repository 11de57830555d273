/* utf8.h — the one place where probe turns bytes into valid UTF-8 text.
 *
 *   Utf8Buf b = {0};
 *   size_t n;
 *   const char *t = utf8_text_in(&b, bytes, len, &n);   // bind t, n as TEXT
 *   Utf8Cursor c;
 *   utf8_cursor_init(&c, doc, doc_len);
 *   utf8_cursor_span(&c, byte_start, byte_end, &char_start, &char_end);
 *   utf8_buf_free(&b);
 *
 * A corpus may hold any bytes (invalid UTF-8 is tokenized as bytes, never
 * rejected), and GPT-2's byte-level BPE cuts multi-byte characters between
 * tokens (’ = E2 80 99 is the tokens E2 80 and 99). Every text value probe
 * writes (TEXT columns, --json output) is the *text form* of its bytes, which
 * is valid UTF-8 for any input:
 *
 *   - the input is read as a sequence of units: a well-formed character
 *     (1 to 4 bytes), or a maximal subpart of an ill-formed sequence (the
 *     longest prefix of a well-formed sequence, at least one byte). This is
 *     Unicode's "U+FFFD substitution of maximal subparts" (chapter 3, U+FFFD
 *     substitution), as in the WHATWG Encoding standard and Python's
 *     bytes.decode('utf-8', 'replace'). So a lone FF, an overlong C0 AF (two
 *     units), a surrogate ED A0 80 (three), F4 90 80 80 above U+10FFFF (four)
 *     each give one U+FFFD per byte, and a truncated E2 82 gives one;
 *   - a well-formed character is kept as is, except U+0000: NUL becomes
 *     U+FFFD too, because SQLite's text functions (length, substr, instr) and
 *     its shell stop at the first NUL, so a NUL inside a document would cut
 *     every context after it. This is the one difference from Python's
 *     decode (which keeps U+0000);
 *   - every other unit becomes one U+FFFD (EF BF BD).
 *
 * The text form has exactly one character per unit, so the index of the unit
 * that holds a byte is a character index into the text form (what SQLite's
 * substr() counts on TEXT, and Python's len()). Utf8Cursor computes it.
 *
 * Ownership: Utf8Buf is the caller's (zero-initialise, utf8_buf_free);
 * utf8_text_dup returns memory the caller frees. Nothing here allocates
 * behind the caller's back or keeps global state. */
#ifndef PROBE_UTF8_H
#define PROBE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* Bytes of the text form of n input bytes, at most (every byte replaced). */
#define UTF8_TEXT_MAX(n) (3 * (size_t)(n))

/* The unit starting at s[0] (n >= 1): returns its length in bytes (1 to 4)
 * and sets *kept to 1 when the text form keeps it as is (a well-formed
 * character other than U+0000), 0 when it becomes U+FFFD. */
size_t utf8_unit(const char *s, size_t n, int *kept);

/* Length of the longest prefix of s[0..n) made of kept units: n exactly when
 * s is its own text form (valid UTF-8 without NUL). */
size_t utf8_clean_prefix(const char *s, size_t n);

/* Writes the text form of s[0..n) to out, which has room for
 * UTF8_TEXT_MAX(n) + 1 bytes, NUL-terminates it and returns its length. */
size_t utf8_text(const char *s, size_t n, char *out);

/* The text form of s[0..n) as a malloc'd NUL-terminated string (caller
 * frees); *len (when not NULL) is its length. NULL when out of memory. */
char *utf8_text_dup(const char *s, size_t n, size_t *len);

/* A reusable buffer for utf8_text_in. */
typedef struct {
    char *data;
    size_t cap;
} Utf8Buf;

/* The text form of s[0..n) without copying in the common case: returns s
 * itself when it is its own text form, else the text form written into b
 * (grown as needed; valid until b's next use). Sets *len. NULL when out of
 * memory. The result is NUL-terminated only when it is in b. */
const char *utf8_text_in(Utf8Buf *b, const char *s, size_t n, size_t *len);
void utf8_buf_free(Utf8Buf *b); /* accepts a zeroed buffer */

/* Character indexes of bytes of one byte string (a document): the index, in
 * its text form, of the character that holds each byte. A cursor walks the
 * string once when the bytes asked for do not decrease (a backward step
 * restarts it from the beginning). */
typedef struct {
    const unsigned char *s;
    size_t n;
    size_t at;     /* first byte of the current unit */
    size_t len;    /* its length (0 at the end of the string) */
    int64_t index; /* its character index */
} Utf8Cursor;

void utf8_cursor_init(Utf8Cursor *c, const char *s, size_t n);

/* Character index of the unit holding byte b (b < n); for b >= n, the number
 * of characters of the whole text form. */
int64_t utf8_cursor_char(Utf8Cursor *c, size_t b);

/* The characters a byte span [b0, b1) touches: *c0 = the character holding
 * byte b0, *c1 = one past the character holding byte b1 - 1, so a token that
 * holds part of a character covers all of it (two tokens sharing ’ both
 * cover ’). An empty span (b1 <= b0) gives *c1 = *c0. Spans past the end are
 * clamped to it. */
void utf8_cursor_span(Utf8Cursor *c, size_t b0, size_t b1, int64_t *c0, int64_t *c1);

#endif
