/* tokenizer.c — GPT-2 byte-level BPE (see tokenizer.h).
 *
 * Three stages, each the exact equivalent of a step of OpenAI's encoder.py:
 *
 *   1. pre-tokenize: a hand-written matcher for encoder.py's regex over the
 *      decoded code points (classes from the generated unicode_tables.c);
 *      an invalid UTF-8 byte is a code point of its own that is neither
 *      letter, number nor space, so it lands in the punctuation class;
 *   2. BPE of each pre-token, on token ids: the pair with the lowest merge
 *      rank is merged at every occurrence, left to right, then again, until
 *      no pair has a rank (encoder.py's bpe(), in O(n log n) with a heap);
 *   3. a cache of the ids of short pre-tokens (most words repeat), so the
 *      steady state is one hash lookup per word and no allocation.
 *
 * The byte-to-unicode alphabet (bytes_to_unicode in encoder.py) only matters
 * when reading vocab.json / merges.txt: internally tokens are raw bytes. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "unicode_tables.h"
#include "util.h"

#define TOK_MAX_ID (1 << 24)        /* sanity bound on ids in vocab.json */
#define CACHE_MAX_KEY 48            /* pre-tokens longer than this are not cached */
#define CACHE_MAX_ENTRIES (1 << 18) /* the cache is emptied when it gets this full */

/* ---------------------------------------------------------------- types --- */

typedef struct {
    uint64_t key; /* left id << 32 | right id; 0 = empty slot (id pair 0,0 is stored +1) */
    uint32_t rank;
    int32_t result;
} MergeSlot;

typedef struct {
    uint64_t hash;
    uint32_t key_off, ids_off; /* into cache.keys / cache.ids */
    uint16_t key_len, n_ids;   /* key_len 0 = empty slot */
} CacheSlot;

typedef struct {
    CacheSlot *slots; /* [mask + 1] */
    size_t mask, used;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
} Cache;

/* Working memory of one BPE run, grown to the longest word seen. */
typedef struct {
    int32_t *sym;   /* [cap] token id of each symbol, -1 once merged away */
    int32_t *next;  /* [cap] index of the next live symbol, -1 at the end */
    int32_t *prev;  /* [cap] index of the previous live symbol, -1 at the start */
    uint64_t *heap; /* [2 * cap] rank << 32 | left symbol index, min-heap; each
                       merge pops one entry and pushes at most two, so the
                       n - 1 initial pairs grow to at most 2n - 2 */
    uint64_t *todo; /* [cap] pairs created during a pass, pushed after it */
    size_t cap;
} BpeScratch;

struct Tokenizer {
    int n_vocab;        /* max id + 1 */
    char *bytes;        /* raw bytes of all tokens */
    uint32_t *tok_off;  /* [n_vocab] offset into bytes */
    uint32_t *tok_len;  /* [n_vocab] byte length; UINT32_MAX = no such id */
    int32_t byte_id[256];
    MergeSlot *merges; /* [merge_mask + 1] */
    size_t merge_mask;
    /* tok_encode takes a const Tokenizer; the cache and scratch below are
     * its private memo, guarded by lock so concurrent callers stay safe. */
    pthread_mutex_t lock;
    Cache cache;
    BpeScratch bpe;
};

/* ------------------------------------------------------ unicode classes --- */

enum { CP_INVALID = 0x110000 }; /* code point returned for an invalid byte */

static const uint8_t ascii_class[128] = {
    ['\t'] = UNI_SPACE, ['\n'] = UNI_SPACE, ['\v'] = UNI_SPACE, ['\f'] = UNI_SPACE,
    ['\r'] = UNI_SPACE, [' '] = UNI_SPACE,
    ['0'] = UNI_NUMBER, ['1'] = UNI_NUMBER, ['2'] = UNI_NUMBER, ['3'] = UNI_NUMBER,
    ['4'] = UNI_NUMBER, ['5'] = UNI_NUMBER, ['6'] = UNI_NUMBER, ['7'] = UNI_NUMBER,
    ['8'] = UNI_NUMBER, ['9'] = UNI_NUMBER,
    ['A'] = UNI_LETTER, ['B'] = UNI_LETTER, ['C'] = UNI_LETTER, ['D'] = UNI_LETTER,
    ['E'] = UNI_LETTER, ['F'] = UNI_LETTER, ['G'] = UNI_LETTER, ['H'] = UNI_LETTER,
    ['I'] = UNI_LETTER, ['J'] = UNI_LETTER, ['K'] = UNI_LETTER, ['L'] = UNI_LETTER,
    ['M'] = UNI_LETTER, ['N'] = UNI_LETTER, ['O'] = UNI_LETTER, ['P'] = UNI_LETTER,
    ['Q'] = UNI_LETTER, ['R'] = UNI_LETTER, ['S'] = UNI_LETTER, ['T'] = UNI_LETTER,
    ['U'] = UNI_LETTER, ['V'] = UNI_LETTER, ['W'] = UNI_LETTER, ['X'] = UNI_LETTER,
    ['Y'] = UNI_LETTER, ['Z'] = UNI_LETTER,
    ['a'] = UNI_LETTER, ['b'] = UNI_LETTER, ['c'] = UNI_LETTER, ['d'] = UNI_LETTER,
    ['e'] = UNI_LETTER, ['f'] = UNI_LETTER, ['g'] = UNI_LETTER, ['h'] = UNI_LETTER,
    ['i'] = UNI_LETTER, ['j'] = UNI_LETTER, ['k'] = UNI_LETTER, ['l'] = UNI_LETTER,
    ['m'] = UNI_LETTER, ['n'] = UNI_LETTER, ['o'] = UNI_LETTER, ['p'] = UNI_LETTER,
    ['q'] = UNI_LETTER, ['r'] = UNI_LETTER, ['s'] = UNI_LETTER, ['t'] = UNI_LETTER,
    ['u'] = UNI_LETTER, ['v'] = UNI_LETTER, ['w'] = UNI_LETTER, ['x'] = UNI_LETTER,
    ['y'] = UNI_LETTER, ['z'] = UNI_LETTER,
};

static int cp_class(uint32_t cp) {
    if (cp < 128) return ascii_class[cp];
    if (cp >= CP_INVALID) return UNI_OTHER;
    size_t lo = 0, hi = uni_ranges_len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp > uni_ranges[mid].hi) lo = mid + 1;
        else if (cp < uni_ranges[mid].lo) hi = mid;
        else return uni_ranges[mid].cls;
    }
    return UNI_OTHER;
}

/* Decodes the code point at s[i] (i < len) and its length in bytes. A byte
 * that does not start a well-formed UTF-8 sequence (Unicode's definition:
 * no overlongs, no surrogates, nothing past U+10FFFF) is one byte long and
 * decodes to CP_INVALID, exactly like Python's errors='surrogateescape'. */
static inline uint32_t utf8_next(const uint8_t *s, size_t len, size_t i, size_t *nb) {
    uint8_t c = s[i];
    *nb = 1;
    if (c < 0x80) return c;
    size_t left = len - i;
    if (c >= 0xC2 && c <= 0xDF) {
        if (left >= 2 && (s[i + 1] & 0xC0) == 0x80) {
            *nb = 2;
            return (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
        }
    } else if (c >= 0xE0 && c <= 0xEF) {
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (left >= 3 && s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80) {
            *nb = 3;
            return (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (left >= 4 && s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80 &&
            (s[i + 3] & 0xC0) == 0x80) {
            *nb = 4;
            return (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 |
                   (uint32_t)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
        }
    }
    return CP_INVALID;
}

static inline int class_at(const uint8_t *s, size_t len, size_t i, size_t *nb) {
    if (s[i] < 0x80) {
        *nb = 1;
        return ascii_class[s[i]];
    }
    return cp_class(utf8_next(s, len, i, nb));
}

/* ------------------------------------------------------- pre-tokenizer --- */

/* End of the pre-token that starts at s[i], following encoder.py's regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * alternative by alternative (the first that matches wins). */
static size_t pretoken_end(const uint8_t *s, size_t len, size_t i) {
    if (s[i] == '\'' && i + 1 < len) { /* contractions, case-sensitive */
        uint8_t a = s[i + 1], b = i + 2 < len ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t nb, j = i;
    int cls = class_at(s, len, i, &nb);
    if (s[i] == ' ' && i + 1 < len) { /* " ?" takes the space when a run follows */
        size_t nb1;
        int cls1 = class_at(s, len, i + 1, &nb1);
        if (cls1 != UNI_SPACE) {
            cls = cls1;
            j = i + 1;
            nb = nb1;
        }
    }
    if (cls != UNI_SPACE) { /* \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+ */
        j += nb;
        while (j < len && class_at(s, len, j, &nb) == cls) j += nb;
        return j;
    }
    /* \s+(?!\S): the whole run at the end of the text, else all of it but
     * its last character (which then starts the next match); \s+: a single
     * whitespace character followed by a non-space. */
    size_t last = i;
    j = i + nb;
    while (j < len && class_at(s, len, j, &nb) == UNI_SPACE) {
        last = j;
        j += nb;
    }
    if (j == len) return len;
    return last > i ? last : j;
}

size_t tok_pretoken_end(const char *text, size_t len, size_t i) {
    return pretoken_end((const uint8_t *)text, len, i);
}

/* ----------------------------------------------------------------- BPE --- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t merge_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; /* never 0 */
}

/* The merge of pair (a, b), or NULL. */
static inline const MergeSlot *merge_find(const Tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = merge_key(a, b);
    for (size_t h = mix64(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        const MergeSlot *m = &t->merges[h];
        if (m->key == key) return m;
        if (m->key == 0) return NULL;
    }
}

static void heap_push(uint64_t *heap, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (heap[p] <= v) break;
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = v;
}

static uint64_t heap_pop(uint64_t *heap, size_t *n) {
    uint64_t top = heap[0], v = heap[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap[c + 1] < heap[c]) c++;
        if (v <= heap[c]) break;
        heap[i] = heap[c];
        i = c;
    }
    if (m) heap[i] = v;
    return top;
}

static int bpe_reserve(BpeScratch *w, size_t n) {
    if (n <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *sym = realloc(w->sym, cap * sizeof *sym);
    if (sym) w->sym = sym;
    int32_t *next = realloc(w->next, cap * sizeof *next);
    if (next) w->next = next;
    int32_t *prev = realloc(w->prev, cap * sizeof *prev);
    if (prev) w->prev = prev;
    uint64_t *heap = realloc(w->heap, 2 * cap * sizeof *heap);
    if (heap) w->heap = heap;
    uint64_t *todo = realloc(w->todo, cap * sizeof *todo);
    if (todo) w->todo = todo;
    if (!sym || !next || !prev || !heap || !todo) return -1;
    w->cap = cap;
    return 0;
}

/* Queues the pair starting at symbol i if it has a merge rank. */
static inline void bpe_pair(const Tokenizer *t, BpeScratch *w, int32_t i, uint64_t *q, size_t *nq) {
    if (i < 0 || w->next[i] < 0) return;
    const MergeSlot *m = merge_find(t, w->sym[i], w->sym[w->next[i]]);
    if (m) q[(*nq)++] = (uint64_t)m->rank << 32 | (uint32_t)i;
}

/* BPE of the n bytes at s; writes the resulting ids to out (at most n) and
 * returns their count, or -1 when out of memory.
 *
 * encoder.py merges, per pass, every occurrence of the lowest-ranked pair
 * from left to right. The heap orders pairs by (rank, position), so popping
 * all entries of the lowest rank visits that pair's occurrences in order;
 * an entry is stale when its symbols have changed since it was queued. The
 * pairs a pass creates never have its rank (their left or right symbol is
 * the longer, merged one), and are queued only after the pass, as in
 * encoder.py where they exist only for the next pass. */
static int bpe_word(const Tokenizer *t, BpeScratch *w, const uint8_t *s, size_t n, int32_t *out) {
    if (bpe_reserve(w, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = t->byte_id[s[i]];
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        w->prev[i] = (int32_t)i - 1;
    }
    size_t nh = 0, nq = 0;
    for (size_t i = 0; i + 1 < n; i++) bpe_pair(t, w, (int32_t)i, w->heap, &nh);
    for (size_t i = nh; i-- > 0;) { /* heapify what bpe_pair appended */
        uint64_t v = w->heap[i];
        size_t k = i;
        for (;;) {
            size_t c = 2 * k + 1;
            if (c >= nh) break;
            if (c + 1 < nh && w->heap[c + 1] < w->heap[c]) c++;
            if (v <= w->heap[c]) break;
            w->heap[k] = w->heap[c];
            k = c;
        }
        w->heap[k] = v;
    }
    while (nh) {
        uint32_t rank = (uint32_t)(w->heap[0] >> 32);
        while (nh && (uint32_t)(w->heap[0] >> 32) == rank) {
            int32_t i = (int32_t)(uint32_t)heap_pop(w->heap, &nh);
            int32_t j = w->next[i];
            if (w->sym[i] < 0 || j < 0) continue;
            const MergeSlot *m = merge_find(t, w->sym[i], w->sym[j]);
            if (!m || m->rank != rank) continue; /* stale */
            w->sym[i] = m->result;
            w->sym[j] = -1;
            w->next[i] = w->next[j];
            if (w->next[j] >= 0) w->prev[w->next[j]] = i;
            /* the new pairs (prev, i) and (i, next) wait for the pass end */
            bpe_pair(t, w, w->prev[i], w->todo, &nq);
            bpe_pair(t, w, i, w->todo, &nq);
        }
        for (size_t k = 0; k < nq; k++) heap_push(w->heap, &nh, w->todo[k]);
        nq = 0;
    }
    int k = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i]) out[k++] = w->sym[i];
    return k;
}

/* --------------------------------------------------------------- cache --- */

static void cache_free(Cache *c) {
    free(c->slots);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static const CacheSlot *cache_find(const Cache *c, const uint8_t *s, size_t n, uint64_t h) {
    if (!c->slots) return NULL;
    for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
        const CacheSlot *e = &c->slots[i];
        if (!e->key_len) return NULL;
        if (e->hash == h && e->key_len == n && !memcmp(c->keys + e->key_off, s, n)) return e;
    }
}

/* Remembers ids for pre-token s; failure only means it is not cached. */
static void cache_put(Cache *c, const uint8_t *s, size_t n, uint64_t h, const int32_t *ids, size_t k) {
    if (!c->slots || c->used >= CACHE_MAX_ENTRIES) {
        if (c->used >= CACHE_MAX_ENTRIES) { /* full: start over */
            memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
            c->used = c->keys_len = c->ids_len = 0;
        } else {
            size_t slots = (size_t)CACHE_MAX_ENTRIES * 2;
            if (!(c->slots = calloc(slots, sizeof *c->slots))) return;
            c->mask = slots - 1;
        }
    }
    if (c->keys_len + n > c->keys_cap) {
        size_t cap = c->keys_cap ? c->keys_cap * 2 : 1 << 16;
        char *p = realloc(c->keys, cap);
        if (!p) return;
        c->keys = p;
        c->keys_cap = cap;
    }
    if (c->ids_len + k > c->ids_cap) {
        size_t cap = c->ids_cap ? c->ids_cap * 2 : 1 << 15;
        int32_t *p = realloc(c->ids, cap * sizeof *p);
        if (!p) return;
        c->ids = p;
        c->ids_cap = cap;
    }
    size_t i = h & c->mask;
    while (c->slots[i].key_len) i = (i + 1) & c->mask;
    CacheSlot *e = &c->slots[i];
    e->hash = h;
    e->key_off = (uint32_t)c->keys_len;
    e->key_len = (uint16_t)n;
    e->ids_off = (uint32_t)c->ids_len;
    e->n_ids = (uint16_t)k;
    memcpy(c->keys + c->keys_len, s, n);
    memcpy(c->ids + c->ids_len, ids, k * sizeof *ids);
    c->keys_len += n;
    c->ids_len += k;
    c->used++;
}

/* -------------------------------------------------------------- encode --- */

static int buf_reserve(TokBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    int32_t *ids = realloc(b->ids, cap * sizeof *ids);
    if (!ids) return -1;
    b->ids = ids;
    uint32_t *start = realloc(b->start, cap * sizeof *start);
    if (!start) return -1;
    b->start = start;
    b->cap = cap;
    return 0;
}

/* Appends the BPE of pre-token text[i..e) to b. */
static int encode_pretoken(Tokenizer *t, const uint8_t *text, size_t i, size_t e, TokBuf *b) {
    const uint8_t *s = text + i;
    size_t n = e - i, k;
    if (buf_reserve(b, n)) return -1;
    int32_t *out = b->ids + b->n;
    if (n == 1) {
        out[0] = t->byte_id[s[0]];
        k = 1;
    } else if (n <= CACHE_MAX_KEY) {
        uint64_t h = hash64(s, n, PROBE_HASH_SEED);
        const CacheSlot *c = cache_find(&t->cache, s, n, h);
        if (c) {
            k = c->n_ids;
            memcpy(out, t->cache.ids + c->ids_off, k * sizeof *out);
        } else {
            int r = bpe_word(t, &t->bpe, s, n, out);
            if (r < 0) return -1;
            k = (size_t)r;
            cache_put(&t->cache, s, n, h, out, k);
        }
    } else {
        int r = bpe_word(t, &t->bpe, s, n, out);
        if (r < 0) return -1;
        k = (size_t)r;
    }
    uint32_t off = (uint32_t)i;
    for (size_t m = 0; m < k; m++) {
        b->start[b->n + m] = off;
        off += t->tok_len[out[m]];
    }
    b->n += k;
    return 0;
}

int tok_encode(const Tokenizer *tok, const char *text, size_t len, TokBuf *b) {
    Tokenizer *t = (Tokenizer *)tok; /* only the memo under t->lock changes */
    const uint8_t *s = (const uint8_t *)text;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < len;) {
        size_t e = pretoken_end(s, len, i);
        if (encode_pretoken(t, s, i, e, b)) {
            rc = -1;
            break;
        }
        i = e;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void tok_buf_free(TokBuf *b) {
    if (!b) return;
    free(b->ids);
    free(b->start);
    memset(b, 0, sizeof *b);
}

/* -------------------------------------------------------------- decode --- */

int tok_vocab_size(const Tokenizer *tok) { return tok->n_vocab; }

const char *tok_token_bytes(const Tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_vocab || tok->tok_len[id] == UINT32_MAX) return NULL;
    *len = tok->tok_len[id];
    return tok->bytes + tok->tok_off[id];
}

int tok_decode(const Tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *out_len,
               char *err) {
    size_t total = 0, len;
    for (size_t i = 0; i < n; i++) {
        if (!tok_token_bytes(tok, ids[i], &len))
            return err_set(err, "token id %ld at position %zu is not in the vocabulary (size %d)",
                           (long)ids[i], i, tok->n_vocab);
        total += len;
    }
    char *buf = malloc(total + 1);
    if (!buf) return err_set(err, "out of memory decoding %zu tokens", n);
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        const char *tb = tok_token_bytes(tok, ids[i], &len);
        memcpy(p, tb, len);
        p += len;
    }
    *p = '\0';
    *out = buf;
    *out_len = total;
    return 0;
}

/* ---------------------------------------------------------------- load --- */

/* encoder.py's bytes_to_unicode(): the printable bytes stand for themselves,
 * the others for U+0100 onwards, in byte order. */
static void byte_alphabet(uint32_t cp_of_byte[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp_of_byte[b] = printable ? (uint32_t)b : 256 + (uint32_t)n++;
    }
}

/* Symbol string -> id, for reading merges.txt (keys point into the cJSON tree). */
typedef struct {
    const char *key;
    size_t len;
    int32_t id;
} SymSlot;

typedef struct {
    SymSlot *slots;
    size_t mask;
} SymMap;

static SymSlot *sym_slot(SymMap *m, const char *key, size_t len) {
    for (size_t i = hash64(key, len, PROBE_HASH_SEED) & m->mask;; i = (i + 1) & m->mask) {
        SymSlot *e = &m->slots[i];
        if (!e->key || (e->len == len && !memcmp(e->key, key, len))) return e;
    }
}

/* A token name for an error message: at most 40 bytes, controls as '?'. */
static const char *shown(const char *s, size_t len, char buf[48]) {
    size_t n = len < 40 ? len : 40;
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    strcpy(buf + n, len > 40 ? "..." : "");
    return buf;
}

static size_t line_of(const char *text, const char *at) {
    size_t line = 1;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    return line;
}

/* Fills the id -> bytes tables and the symbol map from the vocab.json tree. */
static int load_vocab(Tokenizer *t, const cJSON *root, const char *path, SymMap *map, char *err) {
    uint32_t cp_of_byte[256], byte_of_cp[512];
    byte_alphabet(cp_of_byte);
    for (int i = 0; i < 512; i++) byte_of_cp[i] = UINT32_MAX;
    for (int b = 0; b < 256; b++) byte_of_cp[cp_of_byte[b]] = (uint32_t)b;

    char sb[48];
    int n_tokens = cJSON_GetArraySize(root), max_id = -1;
    size_t total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!(v >= 0 && v < TOK_MAX_ID && v == (double)(int)v))
            return err_set(err, "token \"%s\" in '%s' has an id that is not an integer in [0, %d)",
                           shown(it->string, strlen(it->string), sb), path, TOK_MAX_ID);
        if ((int)v > max_id) max_id = (int)v;
        total += strlen(it->string);
    }
    if (n_tokens == 0) return err_set(err, "no tokens in '%s'", path);
    t->n_vocab = max_id + 1;
    t->bytes = malloc(total + 1);
    t->tok_off = malloc((size_t)t->n_vocab * sizeof *t->tok_off);
    t->tok_len = malloc((size_t)t->n_vocab * sizeof *t->tok_len);
    size_t slots = 1;
    while (slots < 2 * (size_t)n_tokens) slots *= 2;
    map->slots = calloc(slots, sizeof *map->slots);
    map->mask = slots - 1;
    if (!t->bytes || !t->tok_off || !t->tok_len || !map->slots)
        return err_set(err, "out of memory loading '%s'", path);
    memset(t->tok_len, 0xff, (size_t)t->n_vocab * sizeof *t->tok_len);

    size_t off = 0;
    cJSON_ArrayForEach(it, root) {
        int id = (int)it->valuedouble;
        const char *key = it->string;
        size_t klen = strlen(key);
        SymSlot *e = sym_slot(map, key, klen);
        if (e->key) return err_set(err, "duplicate token \"%s\" in '%s'", shown(key, klen, sb), path);
        if (t->tok_len[id] != UINT32_MAX)
            return err_set(err, "duplicate id %d in '%s' (token \"%s\" and another)", id, path,
                           shown(key, klen, sb));
        *e = (SymSlot){key, klen, id};
        /* Map the key back to raw bytes through the byte alphabet; a key
         * outside it (an added special token) keeps its UTF-8 bytes. */
        size_t start = off, nb;
        for (size_t i = 0; i < klen; i += nb) {
            uint32_t cp = utf8_next((const uint8_t *)key, klen, i, &nb);
            if (cp >= 512 || byte_of_cp[cp] == UINT32_MAX) {
                memcpy(t->bytes + start, key, klen);
                off = start + klen;
                break;
            }
            t->bytes[off++] = (char)byte_of_cp[cp];
        }
        t->tok_off[id] = (uint32_t)start;
        t->tok_len[id] = (uint32_t)(off - start);
    }
    for (int b = 0; b < 256; b++) {
        char sym[4];
        size_t n = 0;
        uint32_t cp = cp_of_byte[b];
        if (cp < 0x80) sym[n++] = (char)cp;
        else {
            sym[n++] = (char)(0xC0 | cp >> 6);
            sym[n++] = (char)(0x80 | (cp & 0x3F));
        }
        SymSlot *e = sym_slot(map, sym, n);
        if (!e->key) return err_set(err, "no token for byte 0x%02x in '%s'", b, path);
        t->byte_id[b] = e->id;
    }
    return 0;
}

/* Reads merges.txt: an optional "#version" first line, then one merge per
 * line, "left right", its rank being its position (a later duplicate wins,
 * as in encoder.py's dict). */
static int load_merges(Tokenizer *t, const char *text, size_t len, const char *path, SymMap *map,
                       char *err) {
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    size_t slots = 1;
    while (slots < 2 * n_lines) slots *= 2;
    t->merges = calloc(slots, sizeof *t->merges);
    t->merge_mask = slots - 1;
    char *cat = malloc(len + 1);
    if (!t->merges || !cat) {
        free(cat);
        return err_set(err, "out of memory loading '%s'", path);
    }
    char sb[48];
    int rc = 0;
    uint32_t rank = 0;
    size_t line = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        const char *p = text + i, *nl = memchr(p, '\n', len - i);
        size_t n = nl ? (size_t)(nl - p) : len - i;
        i += n + 1;
        line++;
        if (n && p[n - 1] == '\r') n--;
        if (line == 1 && n && p[0] == '#') continue;
        /* exactly two fields separated by spaces or tabs */
        const char *f[3];
        size_t fl[3];
        int nf = 0;
        for (size_t k = 0; k < n;) {
            if (p[k] == ' ' || p[k] == '\t') {
                k++;
                continue;
            }
            size_t s = k;
            while (k < n && p[k] != ' ' && p[k] != '\t') k++;
            if (nf < 3) {
                f[nf] = p + s;
                fl[nf] = k - s;
            }
            nf++;
        }
        if (nf != 2) {
            rc = err_set(err, "line %zu of '%s' is not a merge of two symbols", line, path);
            break;
        }
        const SymSlot *a = sym_slot(map, f[0], fl[0]), *b = sym_slot(map, f[1], fl[1]);
        const SymSlot *bad = !a->key ? a : !b->key ? b : NULL;
        if (bad) {
            int which = !a->key ? 0 : 1;
            rc = err_set(err, "line %zu of '%s': symbol \"%s\" is not in the vocabulary", line, path,
                         shown(f[which], fl[which], sb));
            break;
        }
        memcpy(cat, f[0], fl[0]);
        memcpy(cat + fl[0], f[1], fl[1]);
        const SymSlot *r = sym_slot(map, cat, fl[0] + fl[1]);
        if (!r->key) {
            rc = err_set(err, "line %zu of '%s': merge result \"%s\" is not in the vocabulary", line,
                         path, shown(cat, fl[0] + fl[1], sb));
            break;
        }
        uint64_t key = merge_key(a->id, b->id);
        size_t h = mix64(key) & t->merge_mask;
        while (t->merges[h].key && t->merges[h].key != key) h = (h + 1) & t->merge_mask;
        t->merges[h] = (MergeSlot){key, rank++, r->id};
    }
    free(cat);
    return rc;
}

/* Every vocabulary token is a byte, a special token (<|...|>) or the
 * result of a merge; anything else can never be produced by encoding. A
 * merges.txt cut at a line boundary parses cleanly, so this is how a
 * truncated (or another vocabulary's) merges file shows. */
static int check_reachable(const Tokenizer *t, const char *merges_txt, char *err) {
    uint8_t *made = calloc((size_t)t->n_vocab, 1);
    if (!made) return err_set(err, "out of memory loading '%s'", merges_txt);
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] >= 0) made[t->byte_id[b]] = 1;
    for (size_t h = 0; h <= t->merge_mask; h++)
        if (t->merges[h].key) made[t->merges[h].result] = 1;
    int missing = 0, example = -1;
    for (int id = 0; id < t->n_vocab; id++) {
        uint32_t n = t->tok_len[id];
        if (made[id] || n == UINT32_MAX) continue;
        const char *s = t->bytes + t->tok_off[id];
        if (n >= 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2)) continue; /* special */
        if (example < 0) example = id;
        missing++;
    }
    free(made);
    if (!missing) return 0;
    char sb[48];
    return err_set(err, "'%s' produces none of %d vocabulary tokens (e.g. id %d \"%s\"): truncated, or the merges "
                   "of another vocabulary", merges_txt, missing, example,
                   shown(t->bytes + t->tok_off[example], t->tok_len[example], sb));
}

Tokenizer *tok_load(const char *vocab_json, const char *merges_txt, char *err) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        err_set(err, "out of memory loading '%s'", vocab_json);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    char *vtext = NULL, *mtext = NULL;
    size_t vlen, mlen;
    cJSON *root = NULL;
    SymMap map = {0};
    int rc = -1;
    if (file_read_all(vocab_json, &vtext, &vlen, err)) goto done;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(vtext, vlen, &end, 0);
    if (!root) {
        err_set(err, "malformed JSON in '%s' at line %zu", vocab_json,
                line_of(vtext, end && end >= vtext && end <= vtext + vlen ? end : vtext));
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        err_set(err, "'%s' is not a JSON object of token -> id", vocab_json);
        goto done;
    }
    if (load_vocab(t, root, vocab_json, &map, err)) goto done;
    if (file_read_all(merges_txt, &mtext, &mlen, err)) goto done;
    if (load_merges(t, mtext, mlen, merges_txt, &map, err) || check_reachable(t, merges_txt, err)) goto done;
    rc = 0;
done:
    free(map.slots);
    cJSON_Delete(root);
    free(vtext);
    free(mtext);
    if (rc) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(Tokenizer *tok) {
    if (!tok) return;
    free(tok->bytes);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->merges);
    cache_free(&tok->cache);
    free(tok->bpe.sym);
    free(tok->bpe.next);
    free(tok->bpe.prev);
    free(tok->bpe.heap);
    free(tok->bpe.todo);
    pthread_mutex_destroy(&tok->lock);
    free(tok);
}
