/* concept.h — concept probes: a named set of words, and which tokens end one.
 *
 *   ConceptOpts o = {.drop_flags = "participle"};      // or {0}: keep every word
 *   Concept *c;
 *   if (concept_load("probes/past_tense_verbs.json", &o, &c, err)) ...
 *   ConceptCursor k;
 *   concept_cursor_init(&k, doc, len);
 *   for (i = 0; i < n_tokens; i++)                     // token i is doc[start[i], end)
 *       in = concept_cursor_match(c, &k, end);
 *   concept_free(c);
 *
 * The probe file format is probes/README.md: a JSON object with "name",
 * "words" (a non-empty array of strings), optional "regexes" (POSIX extended
 * regular expressions), "match" (only "word"), "case" ("sensitive", the
 * default, or "insensitive"), "flags" (flag name -> array of listed words)
 * and free-form "description", "source", "cap", "notes".
 *
 * Match rule "word": a token matches when it ENDS a word of the concept. A
 * word is a GPT-2 pre-token (tokenizer.h: a run of letters ` ?\p{L}+`, of
 * numbers, or of other non-space characters, as the pre-tokenizer splits
 * text) without its leading space; a token ends it when the token's last byte
 * is the pre-token's last byte. So in " sleepwalked" (one pre-token) only the
 * word "sleepwalked" can match, never "walked"; in "(walked)." the word
 * "walked" ends before ')'; and of the tokens " walk" + "ed" only "ed" ends
 * it. Case "insensitive" folds ASCII A-Z only (WordNet's words are ASCII);
 * other letters compare byte for byte. Invalid UTF-8 bytes are never letters
 * (as in the tokenizer), so they end a word like punctuation does.
 *
 * Ownership: concept_load and concept_from_words return a Concept the caller
 * releases with concept_free; its fields are read-only for the caller. */
#ifndef PROBE_CONCEPT_H
#define PROBE_CONCEPT_H

#include <stddef.h>
#include <stdint.h>

#define CONCEPT_WORD_MAX 255 /* bytes in a word; longer pre-tokens never match */

typedef struct ConceptIndex ConceptIndex; /* private: hash set and regexes */

typedef struct {
    char *name;           /* the probe's "name"; "words" for concept_from_words */
    char *path;           /* the file loaded; NULL for concept_from_words */
    uint64_t checksum;    /* hash64 of the file's bytes (of the list for --words) */
    int case_insensitive; /* 1 for "case": "insensitive" */
    char **words;         /* [n_words] the words kept (after drop_flags), file order */
    size_t n_words;
    size_t n_regexes;
    size_t n_dropped; /* words left out by drop_flags */
    ConceptIndex *index;
} Concept;

typedef struct {
    /* Comma-separated flag names ("participle,ambiguous"): words carrying any
     * of them are left out. NULL or "" keeps every word. A name that the probe
     * does not define is an error (a typo never silently keeps every word). */
    const char *drop_flags;
} ConceptOpts;

/* Loads the probe file at path (opts may be NULL). Returns 0 and sets *out,
 * or -1 with a one-line message naming the file and the problem in err: not
 * readable, not JSON, not an object, a field of the wrong type, a missing or
 * empty "name" or "words", an empty word or one that is not a single GPT-2
 * pre-token (has spaces, or is longer than CONCEPT_WORD_MAX bytes), a
 * regex that does not compile, an unknown "match" or "case", a flag listing a
 * word that is not in "words", an unknown flag in opts->drop_flags, or no
 * word left after dropping. *out is written only on success. */
int concept_load(const char *path, const ConceptOpts *opts, Concept **out, char *err);

/* An ad-hoc concept from a comma-separated list ("walked,went,ran", the
 * --words option): surrounding spaces of each item are ignored, the match is
 * case-sensitive, name "words". Returns 0 and sets *out, or -1 with a message
 * in err (an empty list or item, an item that is not one pre-token). */
int concept_from_words(const char *list, Concept **out, char *err);

/* 1 when the word ending at byte token_end of doc[0..len) exists and belongs
 * to the concept: doc[token_end - 1] is the last byte of its pre-token, and
 * that pre-token without a leading space is a listed word (by the case rule)
 * or matches a regex. 0 otherwise, also for token_end == 0 or > len. Costs a
 * scan back to the nearest ASCII letter or digit followed by a space (the
 * previous word in most text; to the start of doc in text without one), then
 * forward to token_end; use a ConceptCursor for the tokens of a document in
 * order. */
int concept_match_end(const Concept *c, const char *doc, size_t len, size_t token_end);

/* A walk over one document's pre-tokens for concept_cursor_match calls with
 * non-decreasing token_end: each pre-token is read once. The document must
 * stay unchanged while the cursor is used; there is nothing to free. */
typedef struct {
    const char *doc;
    size_t len;
    size_t start, end; /* the current pre-token doc[start, end) */
} ConceptCursor;

void concept_cursor_init(ConceptCursor *k, const char *doc, size_t len);

/* concept_match_end(c, k->doc, k->len, token_end), in amortised constant
 * time when token_end does not decrease between calls (a smaller token_end
 * restarts from the nearest safe point, as concept_match_end does). */
int concept_cursor_match(const Concept *c, ConceptCursor *k, size_t token_end);

/* 1 when word[0..n) (a word as defined above) belongs to the concept. */
int concept_has_word(const Concept *c, const char *word, size_t n);

void concept_free(Concept *c); /* accepts NULL */

#endif
