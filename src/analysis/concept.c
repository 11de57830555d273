/* concept.c — concept probes (the JSON files in probes/, --words) and the word-end matcher.
 *
 *   probe file ─► cJSON ─► validated fields ─► kept words ─► hash set (+ regexes)
 *   document, token end ─► its pre-token (tokenizer's rules) ─► word ─► set lookup
 *
 * Word boundaries are the tokenizer's own (tok_pretoken_end), never a second
 * definition of letters here. See concept.h for the contracts. */
#include "concept.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "util.h"

struct ConceptIndex {
    char **keys;    /* [n] the words as compared: ASCII-folded when insensitive */
    size_t n;
    size_t *slots;  /* [cap] open addressing: index + 1 into keys, 0 = empty */
    size_t cap;     /* a power of two, at least 2 n */
    regex_t *re;    /* [n_re] compiled regexes, anchored to the whole word */
    size_t n_re;
    size_t max_len; /* longest key: a longer word is never in the set */
};

/* ------------------------------------------------------------ the set --- */

static void fold_ascii(char *dst, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        dst[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
}

/* The slot holding key[0..n), or the empty slot where it would go. */
static size_t *set_slot(const ConceptIndex *x, const char *key, size_t n) {
    size_t mask = x->cap - 1, i = (size_t)hash64(key, n, PROBE_HASH_SEED) & mask;
    for (;; i = (i + 1) & mask) {
        size_t v = x->slots[i];
        if (!v) return &x->slots[i];
        const char *k = x->keys[v - 1];
        if (strlen(k) == n && !memcmp(k, key, n)) return &x->slots[i];
    }
}

/* Index into x->keys of word[0..n) (folded as the concept says), or -1. */
static long set_find(const ConceptIndex *x, int fold, const char *word, size_t n) {
    if (n == 0 || n > x->max_len || !x->cap) return -1;
    char buf[CONCEPT_WORD_MAX];
    if (fold) {
        fold_ascii(buf, word, n);
        word = buf;
    }
    size_t v = *set_slot(x, word, n);
    return v ? (long)v - 1 : -1;
}

static void index_free(ConceptIndex *x) {
    if (!x) return;
    for (size_t i = 0; i < x->n; i++) free(x->keys[i]);
    for (size_t i = 0; i < x->n_re; i++) regfree(&x->re[i]);
    free(x->keys);
    free(x->slots);
    free(x->re);
    free(x);
}

/* Adds word[0..n) (folded when fold) unless present; *idx is its key index.
 * Returns 0, or -1 when out of memory. The table is sized by the caller. */
static int set_add(ConceptIndex *x, int fold, const char *word, size_t n, size_t *idx) {
    char *k = malloc(n + 1);
    if (!k) return -1;
    if (fold) fold_ascii(k, word, n);
    else memcpy(k, word, n);
    k[n] = '\0';
    size_t *slot = set_slot(x, k, n);
    if (*slot) {
        free(k);
        *idx = *slot - 1;
        return 0;
    }
    x->keys[x->n] = k;
    *slot = ++x->n;
    *idx = x->n - 1;
    if (n > x->max_len) x->max_len = n;
    return 0;
}

static ConceptIndex *index_new(size_t n_words) {
    ConceptIndex *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->cap = 16;
    while (x->cap < 2 * n_words) x->cap *= 2;
    x->slots = calloc(x->cap, sizeof *x->slots);
    x->keys = calloc(n_words ? n_words : 1, sizeof *x->keys);
    if (!x->slots || !x->keys) {
        index_free(x);
        return NULL;
    }
    return x;
}

/* ------------------------------------------------------------ words --- */

/* 0 when word[0..n) can be a word of a concept: non-empty, at most
 * CONCEPT_WORD_MAX bytes, not starting with the space a pre-token may carry,
 * and one whole pre-token by the tokenizer's rules. */
static int word_check(const char *w, size_t n, const char *where, char *err) {
    if (n == 0) return err_set(err, "%s: an empty word", where);
    if (n > CONCEPT_WORD_MAX)
        return err_set(err, "%s: word '%.40s...' is longer than %d bytes", where, w, CONCEPT_WORD_MAX);
    if (w[0] == ' ' || memchr(w, '\0', n) || tok_pretoken_end(w, n, 0) != n)
        return err_set(err,
                       "%s: '%s' is not one word (a GPT-2 pre-token: a run of letters, of digits or "
                       "of other non-space characters)",
                       where, w);
    return 0;
}

/* ------------------------------------------------------------ loading --- */

static Concept *concept_new(const char *name, const char *path, uint64_t checksum, int fold) {
    Concept *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->name = strdup(name);
    c->path = path ? strdup(path) : NULL;
    c->checksum = checksum;
    c->case_insensitive = fold;
    if (!c->name || (path && !c->path)) {
        concept_free(c);
        return NULL;
    }
    return c;
}

/* The optional field key of root when it has one of the cJSON types in
 * `types` (NULL when absent); -1 with a message naming `what` otherwise. */
static int field(const cJSON *root, const char *key, int types, const char *what, const char *path,
                 const cJSON **out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!v) return 0;
    if (!(v->type & types)) return err_set(err, "'%s': \"%s\" must be %s", path, key, what);
    *out = v;
    return 0;
}

/* 0 when a is an array of strings; else a message naming path and key. */
static int string_array(const cJSON *a, const char *path, const char *key, char *err) {
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a) {
        if (!cJSON_IsString(v))
            return err_set(err, "'%s': \"%s\" item %d is not a string", path, key, i);
        i++;
    }
    return 0;
}

/* Checks opts' flag names against the probe's "flags" and marks the words
 * they list in drop[] (by key index). */
static int drop_mark(const cJSON *flags, const char *drop_list, const ConceptIndex *x, int fold,
                     unsigned char *drop, const char *path, char *err) {
    for (const char *p = drop_list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t m = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        const cJSON *f;
        cJSON_ArrayForEach(f, flags) {
            if (strlen(f->string) != m || memcmp(f->string, p, m)) continue;
            found = 1;
            const cJSON *w;
            cJSON_ArrayForEach(w, f) drop[set_find(x, fold, w->valuestring, strlen(w->valuestring))] = 1;
        }
        if (!found) return err_set(err, "'%s' has no flag '%.*s' to drop", path, (int)m, p);
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* An upper bound on the size a POSIX regex compiles to: the atoms counted
 * with every interval ({m}, {m,}, {m,n}) multiplying the atom or group it
 * follows, as glibc's regcomp expands them. Why: a probe file is untrusted,
 * and nested intervals ("((a{0,50}){0,50}){0,50}") make regcomp run for
 * minutes (found by tests/fuzz/fuzz_concept.c); a word pattern needs a few
 * dozen nodes. Saturates at SIZE_MAX / 2. */
static size_t regex_size(const char *p) {
    enum { DEPTH = 64 };
    size_t group[DEPTH] = {0}, last = 0; /* the open groups' sizes; the size of the last atom */
    const size_t big = SIZE_MAX / 2;
    int d = 0, quantified = 0; /* the last atom already has a quantifier */
    for (; *p; p++) {
        size_t atom = 1;
        int is_quantifier = *p == '*' || *p == '+' || *p == '?' || *p == '{';
        /* stacked quantifiers ("a+++", "a*{2}") are undefined in POSIX and
         * blow up glibc's regcomp (24 GB for 60 '+', fuzz_concept) */
        if (is_quantifier && quantified) return big;
        quantified = is_quantifier;
        if (*p == '(') {
            if (++d >= DEPTH) return big;
            group[d] = 0;
            last = 0;
            continue;
        } else if (*p == ')') {
            if (d == 0) return big; /* regcomp rejects it anyway */
            atom = group[d--] + 2;
        } else if (*p == '{') {
            char *end;
            unsigned long m = strtoul(p + 1, &end, 10), n = m;
            if (*end == ',') n = end[1] == '}' ? m + 1 : strtoul(end + 1, &end, 10);
            else end--;
            while (*end && *end != '}') end++;
            if (!*end) return big;
            p = end;
            if (m > 4095 || n > 4095) return big; /* (regcomp's own limit is 32767) */
            unsigned long k = (n > m ? n : m) + 1;
            if (last > big / k) return big;
            group[d] += last * (k - 1); /* the atom, k times */
            last *= k;
            continue;
        } else if (*p == '[') {
            p++;
            if (*p == '^') p++;
            if (*p == ']') p++;
            while (*p && *p != ']') p++;
            if (!*p) return big;
        } else if (*p == '\\') {
            if (p[1]) p++;
        } else if (*p == '+') { /* regcomp builds x+ as x x* */
            group[d] = group[d] + last < big ? group[d] + last : big;
            last = last * 2 < big ? last * 2 : big;
            continue;
        } else if (*p == '*' || *p == '?' || *p == '|') {
            continue;
        }
        group[d] = group[d] + atom < big ? group[d] + atom : big;
        last = atom;
    }
    return group[0];
}

/* The most nodes a probe regex may compile to (see regex_size). */
#define REGEX_MAX_SIZE 2000

/* Compiles the regexes into x (already validated as strings). */
static int regexes_compile(const cJSON *regexes, ConceptIndex *x, int fold, const char *path, char *err) {
    size_t n = (size_t)cJSON_GetArraySize(regexes);
    if (!n) return 0;
    x->re = calloc(n, sizeof *x->re);
    if (!x->re) return err_set(err, "out of memory loading '%s'", path);
    const cJSON *r;
    cJSON_ArrayForEach(r, regexes) {
        size_t len = strlen(r->valuestring);
        if (regex_size(r->valuestring) > REGEX_MAX_SIZE)
            return err_set(err, "'%s': regex '%.60s%s' is too complex (its repetitions expand to more than %d "
                           "nodes)", path, r->valuestring, len > 60 ? "..." : "", REGEX_MAX_SIZE);
        char *anchored = malloc(len + 5);
        if (!anchored) return err_set(err, "out of memory loading '%s'", path);
        snprintf(anchored, len + 5, "^(%s)$", r->valuestring);
        int rc = regcomp(&x->re[x->n_re], anchored, REG_EXTENDED | REG_NOSUB | (fold ? REG_ICASE : 0));
        free(anchored);
        if (rc) {
            char msg[128];
            regerror(rc, NULL, msg, sizeof msg);
            return err_set(err, "'%s': regex '%s' does not compile: %s", path, r->valuestring, msg);
        }
        x->n_re++;
    }
    return 0;
}

/* Everything after parsing: validates root, builds *out. */
static int concept_build(const cJSON *root, const char *path, uint64_t checksum, const ConceptOpts *opts,
                         Concept **out, char *err) {
    const cJSON *name, *words, *regexes, *flags, *match, *cas, *tmp;
    if (!cJSON_IsObject(root)) return err_set(err, "'%s': not a JSON object (a concept probe)", path);
    if (field(root, "name", cJSON_String, "a string", path, &name, err) ||
        field(root, "words", cJSON_Array, "an array of strings", path, &words, err) ||
        field(root, "regexes", cJSON_Array, "an array of strings", path, &regexes, err) ||
        field(root, "flags", cJSON_Object, "an object of flag -> array of words", path, &flags, err) ||
        field(root, "match", cJSON_String, "a string", path, &match, err) ||
        field(root, "case", cJSON_String, "a string", path, &cas, err) ||
        field(root, "description", cJSON_String, "a string", path, &tmp, err) ||
        field(root, "source", cJSON_String | cJSON_Object, "a string or an object", path, &tmp, err) ||
        field(root, "notes", cJSON_String | cJSON_Array, "a string or an array of strings", path, &tmp, err) ||
        (tmp && cJSON_IsArray(tmp) && string_array(tmp, path, "notes", err)))
        return -1;
    if (!name || !*name->valuestring) return err_set(err, "'%s': missing \"name\"", path);
    if (!words) return err_set(err, "'%s': missing \"words\"", path);
    if (!cJSON_GetArraySize(words)) return err_set(err, "'%s': \"words\" is empty", path);
    if (string_array(words, path, "words", err) || (regexes && string_array(regexes, path, "regexes", err)))
        return -1;
    if (match && strcmp(match->valuestring, "word"))
        return err_set(err, "'%s': unknown match rule '%s' (known: word)", path, match->valuestring);
    int fold = 0;
    if (cas) {
        if (!strcmp(cas->valuestring, "insensitive")) fold = 1;
        else if (strcmp(cas->valuestring, "sensitive"))
            return err_set(err, "'%s': unknown case rule '%s' (known: sensitive, insensitive)", path,
                           cas->valuestring);
    }

    size_t n = (size_t)cJSON_GetArraySize(words);
    int rc = -1;
    unsigned char *drop = NULL;
    ConceptIndex *all = index_new(n), *kept = NULL;
    Concept *c = NULL;
    if (!all) goto oom;
    char where[PROBE_ERR_LEN / 2];
    snprintf(where, sizeof where, "'%s'", path);
    const cJSON *w;
    cJSON_ArrayForEach(w, words) {
        size_t len = strlen(w->valuestring), idx;
        if (word_check(w->valuestring, len, where, err)) goto out;
        if (set_add(all, fold, w->valuestring, len, &idx)) goto oom;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, flags) {
        if (!cJSON_IsArray(f)) {
            err_set(err, "'%s': flag '%s' must be an array of words", path, f->string);
            goto out;
        }
        if (string_array(f, path, f->string, err)) goto out;
        cJSON_ArrayForEach(w, f) {
            if (set_find(all, fold, w->valuestring, strlen(w->valuestring)) < 0) {
                err_set(err, "'%s': flag '%s' lists '%s', which is not in \"words\"", path, f->string,
                        w->valuestring);
                goto out;
            }
        }
    }
    drop = calloc(all->n ? all->n : 1, 1);
    if (!drop) goto oom;
    if (opts && opts->drop_flags && drop_mark(flags, opts->drop_flags, all, fold, drop, path, err)) goto out;

    c = concept_new(name->valuestring, path, checksum, fold);
    kept = index_new(all->n);
    if (!c || !kept) goto oom;
    c->words = calloc(all->n ? all->n : 1, sizeof *c->words);
    if (!c->words) goto oom;
    /* the kept words in file order, as listed (not folded) */
    cJSON_ArrayForEach(w, words) {
        size_t len = strlen(w->valuestring), idx, before = kept->n;
        long at = set_find(all, fold, w->valuestring, len);
        if (drop[at]) continue;
        if (set_add(kept, fold, w->valuestring, len, &idx)) goto oom;
        if (kept->n == before) continue; /* a repeat */
        if (!(c->words[c->n_words] = strdup(w->valuestring))) goto oom;
        c->n_words++;
    }
    c->n_dropped = all->n - kept->n;
    if (regexes && regexes_compile(regexes, kept, fold, path, err)) goto out;
    c->n_regexes = kept->n_re;
    if (!c->n_words && !c->n_regexes) {
        err_set(err, "'%s': no word left after dropping the words flagged %s", path, opts->drop_flags);
        goto out;
    }
    c->index = kept;
    kept = NULL;
    *out = c;
    c = NULL;
    rc = 0;
    goto out;
oom:
    err_set(err, "out of memory loading '%s'", path);
out:
    free(drop);
    index_free(all);
    index_free(kept);
    concept_free(c);
    return rc;
}

int concept_load(const char *path, const ConceptOpts *opts, Concept **out, char *err) {
    char *data = NULL;
    size_t len;
    if (file_read_all(path, &data, &len, err)) return -1;
    int rc = -1;
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t line = 1;
        if (at && at >= data && at <= data + len)
            for (const char *p = data; p < at; p++) line += *p == '\n';
        err_set(err, "'%s': not JSON (malformed near line %zu)", path, line);
    } else {
        rc = concept_build(root, path, hash64(data, len, PROBE_HASH_SEED), opts, out, err);
    }
    cJSON_Delete(root);
    free(data);
    return rc;
}

int concept_from_words(const char *list, Concept **out, char *err) {
    /* the list as a JSON probe, so that one validator serves both */
    if (!list) list = "";
    cJSON *root = cJSON_CreateObject(), *words = cJSON_AddArrayToObject(root, "words");
    int rc = -1;
    if (!root || !words || !cJSON_AddStringToObject(root, "name", "words")) {
        err_set(err, "out of memory reading --words");
        goto out;
    }
    for (const char *p = list;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && *p == ' ') p++;
        while (end > p && end[-1] == ' ') end--;
        if (end == p) {
            err_set(err, "an empty word in the --words list '%s'", list);
            goto out;
        }
        char *item = strndup(p, (size_t)(end - p));
        cJSON *s = item ? cJSON_CreateString(item) : NULL;
        free(item);
        if (!s || !cJSON_AddItemToArray(words, s)) {
            cJSON_Delete(s);
            err_set(err, "out of memory reading --words");
            goto out;
        }
        if (!e) break;
        p = e + 1;
    }
    Concept *c;
    rc = concept_build(root, "--words", hash64(list, strlen(list), PROBE_HASH_SEED), NULL, &c, err);
    if (!rc) {
        free(c->path);
        c->path = NULL;
        *out = c;
    }
out:
    cJSON_Delete(root);
    return rc;
}

void concept_free(Concept *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_words; i++) free(c->words[i]);
    free(c->words);
    free(c->name);
    free(c->path);
    index_free(c->index);
    free(c);
}

/* ------------------------------------------------------------ matching --- */

int concept_has_word(const Concept *c, const char *word, size_t n) {
    const ConceptIndex *x = c->index;
    if (n == 0) return 0;
    if (set_find(x, c->case_insensitive, word, n) >= 0) return 1;
    if (!x->n_re || n > CONCEPT_WORD_MAX || memchr(word, '\0', n)) return 0;
    char buf[CONCEPT_WORD_MAX + 1];
    memcpy(buf, word, n);
    buf[n] = '\0';
    for (size_t i = 0; i < x->n_re; i++)
        if (regexec(&x->re[i], buf, 0, NULL, 0) == 0) return 1;
    return 0;
}

static int is_ascii_alnum(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* A position at or before b (b < len) where a pre-token starts: 0, or a ' '
 * right after an ASCII letter or digit (tok_pretoken_end's contract: a
 * pre-token never runs from a non-space into a space). */
static size_t restart_at(const char *doc, size_t b) {
    const unsigned char *s = (const unsigned char *)doc;
    for (; b > 0; b--)
        if (s[b] == ' ' && is_ascii_alnum(s[b - 1])) return b;
    return 0;
}

void concept_cursor_init(ConceptCursor *k, const char *doc, size_t len) {
    k->doc = doc;
    k->len = len;
    k->start = k->end = 0;
}

int concept_cursor_match(const Concept *c, ConceptCursor *k, size_t token_end) {
    if (token_end == 0 || token_end > k->len) return 0;
    if (token_end <= k->start || k->end == 0) k->start = k->end = restart_at(k->doc, token_end - 1);
    while (k->end < token_end) {
        k->start = k->end;
        k->end = tok_pretoken_end(k->doc, k->len, k->start);
    }
    if (k->end != token_end) return 0;
    size_t s = k->start + (k->doc[k->start] == ' ');
    return concept_has_word(c, k->doc + s, token_end - s);
}

int concept_match_end(const Concept *c, const char *doc, size_t len, size_t token_end) {
    ConceptCursor k;
    concept_cursor_init(&k, doc, len);
    return concept_cursor_match(c, &k, token_end);
}
