/* utf8.c — see utf8.h. */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Well-formed sequences (Unicode table 3-7): the lead byte fixes the length
 * and the range of the second byte; later bytes are 80..BF.
 *   00..7F                 1 byte
 *   C2..DF  80..BF         2
 *   E0      A0..BF  ..     3 (no overlongs)
 *   E1..EC  80..BF  ..     3
 *   ED      80..9F  ..     3 (no surrogates D800..DFFF)
 *   EE..EF  80..BF  ..     3
 *   F0      90..BF  .. ..  4 (no overlongs)
 *   F1..F3  80..BF  .. ..  4
 *   F4      80..8F  .. ..  4 (nothing above U+10FFFF)
 * Every other lead byte (80..C1, F5..FF) is a unit of its own. A unit ends at
 * the first byte outside its expected range, which is then the start of the
 * next unit: that is the maximal subpart. */
size_t utf8_unit(const char *str, size_t n, int *kept) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    if (c < 0x80) {
        *kept = c != 0;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        *kept = 0;
        return 1;
    }
    size_t i = 1;
    while (i < need && i < n && s[i] >= lo && s[i] <= hi) {
        lo = 0x80;
        hi = 0xbf;
        i++;
    }
    *kept = i == need;
    return i;
}

size_t utf8_clean_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c - 1u < 0x7fu) { /* 01..7F: the common case */
            i++;
            continue;
        }
        int kept;
        size_t len = utf8_unit(s + i, n - i, &kept);
        if (!kept) break;
        i += len;
    }
    return i;
}

size_t utf8_text(const char *s, size_t n, char *out) {
    size_t i = utf8_clean_prefix(s, n), o = i;
    memcpy(out, s, i);
    while (i < n) {
        int kept;
        size_t len = utf8_unit(s + i, n - i, &kept);
        if (kept) {
            memcpy(out + o, s + i, len);
            o += len;
        } else {
            memcpy(out + o, UTF8_REPLACEMENT, 3);
            o += 3;
        }
        i += len;
    }
    out[o] = '\0';
    return o;
}

char *utf8_text_dup(const char *s, size_t n, size_t *len) {
    char *out = malloc(UTF8_TEXT_MAX(n) + 1);
    if (!out) return NULL;
    size_t l = utf8_text(s, n, out);
    if (len) *len = l;
    return out;
}

const char *utf8_text_in(Utf8Buf *b, const char *s, size_t n, size_t *len) {
    if (utf8_clean_prefix(s, n) == n) {
        *len = n;
        return s;
    }
    size_t need = UTF8_TEXT_MAX(n) + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return NULL;
        b->data = p;
        b->cap = cap;
    }
    *len = utf8_text(s, n, b->data);
    return b->data;
}

void utf8_buf_free(Utf8Buf *b) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

/* ---- character indexes ----------------------------------------------------- */

static void cursor_load(Utf8Cursor *c) {
    int kept;
    c->len = c->at < c->n ? utf8_unit((const char *)c->s + c->at, c->n - c->at, &kept) : 0;
}

void utf8_cursor_init(Utf8Cursor *c, const char *s, size_t n) {
    c->s = (const unsigned char *)s;
    c->n = n;
    c->at = 0;
    c->index = 0;
    cursor_load(c);
}

int64_t utf8_cursor_char(Utf8Cursor *c, size_t b) {
    if (b > c->n) b = c->n;
    if (b < c->at) utf8_cursor_init(c, (const char *)c->s, c->n);
    while (c->len && b >= c->at + c->len) {
        c->at += c->len;
        c->index++;
        /* ASCII runs: one byte, one character */
        if (c->at < c->n && c->s[c->at] - 1u < 0x7fu) {
            c->len = 1;
            continue;
        }
        cursor_load(c);
    }
    return c->index;
}

void utf8_cursor_span(Utf8Cursor *c, size_t b0, size_t b1, int64_t *c0, int64_t *c1) {
    if (b0 > c->n) b0 = c->n;
    if (b1 > c->n) b1 = c->n;
    *c0 = utf8_cursor_char(c, b0);
    *c1 = b1 > b0 ? utf8_cursor_char(c, b1 - 1) + 1 : *c0;
}
