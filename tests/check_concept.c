/* check_concept.c — concept probes: the shipped probes load, bad probe files
 * get one clear error each, and the word-end matcher on hand-made text
 * (pre-token boundaries, case rules, punctuation, document ends, invalid
 * UTF-8), the cursor agreeing with the one-shot matcher everywhere. */
#include "testutil.h"

#include "concept.h"
#include "tokenizer.h"

static char tmpdir[256];

static void setup(void) { tmpdir_make(tmpdir, sizeof tmpdir, "check_concept"); }
static void teardown(void) { tmpdir_remove(tmpdir); }

static Concept *load_ok(const char *path, const char *drop) {
    ConceptOpts o = {.drop_flags = drop};
    Concept *c = NULL;
    char err[PROBE_ERR_LEN];
    ck_assert_msg(concept_load(path, &o, &c, err) == 0, "%s", err);
    ck_assert_ptr_nonnull(c);
    return c;
}

static Concept *shipped(const char *name, const char *drop) {
    char file[128];
    snprintf(file, sizeof file, "probes/%s.json", name);
    Concept *c = load_ok(path_in(repo_root(), file), drop);
    ck_assert_str_eq(c->name, name);
    return c;
}

/* A probe file in tmpdir holding json; returns its path. */
static const char *probe_file(const char *name, const char *json) {
    return file_write(path_in(tmpdir, name), json, strlen(json));
}

/* Does the word that ends at byte `end` of the C string doc belong to c? */
static int ends(const Concept *c, const char *doc, size_t end) { return concept_match_end(c, doc, strlen(doc), end); }

/* ends() at the end of the first occurrence of needle in doc. */
static int ends_at(const Concept *c, const char *doc, const char *needle) {
    const char *p = strstr(doc, needle);
    ck_assert_msg(p != NULL, "'%s' not in '%s'", needle, doc);
    return ends(c, doc, (size_t)(p - doc) + strlen(needle));
}

/* ------------------------------------------------------------ shipped --- */

START_TEST(test_shipped_probes_load) {
    const char *names[] = {"past_tense_verbs", "european_cities", "math_operations", "control_random_words"};
    for (int i = 0; i < 4; i++) {
        Concept *c = shipped(names[i], NULL);
        ck_assert_msg(c->n_words > 0, "%s has no words", names[i]);
        ck_assert_msg(c->n_words <= 2000, "%s has %zu words, over the documented cap", names[i], c->n_words);
        concept_free(c);
    }
    Concept *past = shipped("past_tense_verbs", NULL), *ctl = shipped("control_random_words", NULL);
    ck_assert(past->case_insensitive && ctl->case_insensitive);
    ck_assert(concept_has_word(past, "walked", 6) && concept_has_word(past, "went", 4));
    ck_assert(concept_has_word(past, "Walked", 6));
    ck_assert(!concept_has_word(past, "walk", 4) && !concept_has_word(past, "gone", 4));
    /* the control shares no word with the concept it controls for */
    for (size_t i = 0; i < ctl->n_words; i++)
        ck_assert_msg(!concept_has_word(past, ctl->words[i], strlen(ctl->words[i])), "control word '%s' is a past form",
                      ctl->words[i]);
    ck_assert_uint_eq(ctl->n_words, past->n_words);
    concept_free(past);
    concept_free(ctl);

    Concept *cities = shipped("european_cities", NULL);
    ck_assert(!cities->case_insensitive);
    ck_assert(concept_has_word(cities, "Paris", 5) && !concept_has_word(cities, "paris", 5));
    ck_assert(concept_has_word(cities, "Nice", 4));
    concept_free(cities);

    Concept *math = shipped("math_operations", NULL);
    ck_assert(concept_has_word(math, "+", 1) && concept_has_word(math, "\xc3\x97", 2)); /* × */
    ck_assert(concept_has_word(math, "Plus", 4) && concept_has_word(math, "subtraction", 11));
    concept_free(math);
}
END_TEST

START_TEST(test_shipped_flags_drop) {
    Concept *all = shipped("past_tense_verbs", NULL), *strict = shipped("past_tense_verbs", "participle");
    ck_assert_uint_eq(all->n_dropped, 0);
    ck_assert_uint_gt(strict->n_dropped, 0);
    ck_assert_uint_eq(strict->n_words + strict->n_dropped, all->n_words);
    ck_assert(!concept_has_word(strict, "walked", 6)); /* = the participle: dropped */
    ck_assert(concept_has_word(strict, "went", 4) && concept_has_word(strict, "sang", 4));
    concept_free(all);
    concept_free(strict);

    Concept *c = shipped("european_cities", "ambiguous");
    ck_assert(!concept_has_word(c, "Nice", 4) && !concept_has_word(c, "Reading", 7));
    ck_assert(concept_has_word(c, "Paris", 5) || concept_has_word(c, "Vienna", 6));
    concept_free(c);

    char err[PROBE_ERR_LEN];
    ConceptOpts o = {.drop_flags = "participle,typo"};
    Concept *none = NULL;
    ck_assert_int_eq(concept_load(path_in(repo_root(), "probes/past_tense_verbs.json"), &o, &none, err), -1);
    ck_assert_ptr_null(none);
    ck_assert_msg(strstr(err, "no flag 'typo'") && strstr(err, "past_tense_verbs.json"), "%s", err);
}
END_TEST

/* ------------------------------------------------------------ bad files --- */

/* concept_load of a file holding json fails, *out untouched, with one line
 * naming the file and holding `want`. */
static void expect_bad(const char *json, const char *drop, const char *want) {
    const char *path = probe_file("bad.json", json);
    ConceptOpts o = {.drop_flags = drop};
    Concept *sentinel = (Concept *)&o, *c = sentinel;
    char err[PROBE_ERR_LEN] = "";
    ck_assert_msg(concept_load(path, &o, &c, err) == -1, "'%s' loaded", json);
    ck_assert_msg(c == sentinel, "*out written on failure for '%s'", json);
    ck_assert_msg(strstr(err, path) != NULL, "error does not name the file: %s", err);
    ck_assert_msg(strstr(err, want) != NULL, "error for '%s' is '%s', expected '%s'", json, err, want);
    ck_assert_msg(!strchr(err, '\n'), "error is not one line: %s", err);
}

START_TEST(test_bad_probe_files) {
    expect_bad("{\"name\": \"x\", \"words\": [\"a\",", NULL, "not JSON");
    expect_bad("", NULL, "not JSON");
    expect_bad("[\"walked\"]", NULL, "not a JSON object");
    expect_bad("{\"name\": \"x\"}", NULL, "missing \"words\"");
    expect_bad("{\"name\": \"x\", \"words\": []}", NULL, "\"words\" is empty");
    expect_bad("{\"name\": \"x\", \"words\": \"walked\"}", NULL, "\"words\" must be an array of strings");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\", 3]}", NULL, "\"words\" item 1 is not a string");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"match\": \"prefix\"}", NULL, "unknown match rule 'prefix'");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"match\": 1}", NULL, "\"match\" must be a string");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"case\": \"upper\"}", NULL, "unknown case rule 'upper'");
    expect_bad("{\"words\": [\"walked\"]}", NULL, "missing \"name\"");
    expect_bad("{\"name\": 7, \"words\": [\"walked\"]}", NULL, "\"name\" must be a string");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"notes\": [1]}", NULL, "\"notes\" item 0 is not a string");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"flags\": []}", NULL, "\"flags\" must be an object");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"flags\": {\"p\": \"walked\"}}", NULL,
               "flag 'p' must be an array");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"flags\": {\"p\": [\"went\"]}}", NULL,
               "flag 'p' lists 'went', which is not in \"words\"");
    expect_bad("{\"name\": \"x\", \"words\": [\"New York\"]}", NULL, "'New York' is not one word");
    expect_bad("{\"name\": \"x\", \"words\": [\" walked\"]}", NULL, "' walked' is not one word");
    expect_bad("{\"name\": \"x\", \"words\": [\"\"]}", NULL, "an empty word");
    expect_bad("{\"name\": \"x\", \"words\": [\"a\"], \"regexes\": [\"(\"]}", NULL, "regex '(' does not compile");
    /* nested intervals made glibc's regcomp run for minutes (fuzz_concept) */
    expect_bad("{\"name\": \"x\", \"words\": [\"a\"], \"regexes\": [\"((a{0,50}){0,50}){0,50}\"]}", NULL,
               "is too complex");
    expect_bad("{\"name\": \"x\", \"words\": [\"a\"], \"regexes\": [\"x{5000}\"]}", NULL, "is too complex");
    /* stacked quantifiers (undefined in POSIX): 60 '+' took regcomp 24 GB (fuzz_concept) */
    expect_bad("{\"name\": \"x\", \"words\": [\"a\"], \"regexes\": [\"Durr+++++++++++++++++++++es\"]}", NULL,
               "is too complex");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"], \"flags\": {\"p\": [\"walked\"]}}", "p",
               "no word left after dropping");
    expect_bad("{\"name\": \"x\", \"words\": [\"walked\"]}", "p", "has no flag 'p'");

    char err[PROBE_ERR_LEN];
    Concept *c = NULL;
    const char *missing = path_in(tmpdir, "missing.json");
    ck_assert_int_eq(concept_load(missing, NULL, &c, err), -1);
    ck_assert_msg(strstr(err, "cannot open") && strstr(err, missing), "%s", err);
}
END_TEST

START_TEST(test_from_words) {
    char err[PROBE_ERR_LEN];
    Concept *c = NULL;
    ck_assert_msg(concept_from_words(" walked , went,ran", &c, err) == 0, "%s", err);
    ck_assert_str_eq(c->name, "words");
    ck_assert_ptr_null(c->path);
    ck_assert_uint_eq(c->n_words, 3);
    ck_assert_str_eq(c->words[0], "walked");
    ck_assert(!c->case_insensitive);
    ck_assert(ends_at(c, "She walked.", " walked") && !ends_at(c, "She Walked.", " Walked"));
    concept_free(c);
    const char *bad[][2] = {{"", "an empty word"},          {"a,,b", "an empty word"},
                            {"walked,", "an empty word"},   {"new york", "'new york' is not one word"},
                            {"it's", "'it's' is not one word"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = NULL;
        ck_assert_msg(concept_from_words(bad[i][0], &c, err) == -1, "'%s' accepted", bad[i][0]);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, bad[i][1]), "'%s': %s", bad[i][0], err);
    }
}
END_TEST

/* ------------------------------------------------------------ matching --- */

START_TEST(test_match_words) {
    Concept *c = load_ok(probe_file("t.json", "{\"name\": \"t\", \"case\": \"insensitive\", "
                                              "\"words\": [\"walked\", \"went\", \"don\"]}"),
                         NULL);
    /* a token ends a listed word */
    ck_assert(ends(c, " walked", 7));
    ck_assert(!ends(c, " walk", 5));
    ck_assert(ends(c, "walked", 6)); /* at the start and end of the document */
    /* multi-token word " walk" + "ed": only the token ending the word matches */
    ck_assert(!ends(c, "I walked home", 6));
    ck_assert(ends(c, "I walked home", 8));
    ck_assert(!ends(c, "I walked home", 9)); /* " home" ... the space's byte is not the end */
    /* one pre-token "sleepwalked": its word is not listed, so neither its end nor
     * any byte inside it matches, though it ends in "walked" */
    ck_assert(!ends(c, " sleepwalked", 12));
    for (size_t e = 0; e <= 12; e++) ck_assert(!ends(c, " sleepwalked", e));
    /* case rule: insensitive here */
    ck_assert(ends(c, "Walked away", 6) && ends(c, "WENT", 4));
    /* punctuation and other classes end a word */
    ck_assert(ends_at(c, "He walked.", "walked") && !ends(c, "He walked.", 10));
    ck_assert(ends_at(c, "(walked)", "walked"));
    ck_assert(ends_at(c, "\"Went!\"", "Went"));
    ck_assert(ends_at(c, "walked2", "walked"));
    ck_assert(ends_at(c, "x\nwent\n", "went"));
    ck_assert(ends_at(c, "a  walked", "walked")); /* "  walked": " " then " walked" */
    ck_assert(ends_at(c, "a\twalked", "walked"));
    /* contractions are their own pre-tokens: "don" + "'t" */
    ck_assert(ends_at(c, "I don't", "don") && ends_at(c, "walked's", "walked"));
    /* "'dwent": the contraction "'d" then "went" */
    ck_assert(ends_at(c, "x'dwent", "went"));
    /* outside the document */
    ck_assert(!ends(c, "walked", 0) && !ends(c, "walked", 7));
    /* letters beyond ASCII belong to the word: these are other words */
    ck_assert(!ends_at(c, "walked\xc3\xa9", "walked\xc3\xa9"));   /* walkedé */
    ck_assert(!ends_at(c, "\xc3\xa9walked", "walked"));           /* éwalked */
    ck_assert(!ends(c, "walked\xc3\xa9", 6));                     /* inside the word */
    /* invalid UTF-8 bytes are not letters: they end and start words */
    ck_assert(ends_at(c, "\xffwalked\xfe", "walked"));
    ck_assert(ends_at(c, "walked\xc3", "walked")); /* a truncated é */
    ck_assert(ends_at(c, "\xe2\x80walked", "walked"));
    ck_assert(!ends(c, "walked\xff", 7));
    concept_free(c);

    /* case-sensitive (the default) */
    c = load_ok(probe_file("s.json", "{\"name\": \"s\", \"words\": [\"Nice\", \"Paris\"]}"), NULL);
    ck_assert(ends_at(c, "in Nice.", "Nice") && !ends_at(c, "a nice day", "nice") && !ends_at(c, "PARIS", "PARIS"));
    concept_free(c);
}
END_TEST

START_TEST(test_match_symbols_and_regexes) {
    Concept *m = shipped("math_operations", NULL);
    ck_assert(ends_at(m, "2 + 3", "+") && ends_at(m, "2+3", "+"));
    ck_assert(!ends_at(m, "x += 1", "+") && !ends_at(m, "x += 1", "+="));
    ck_assert(ends_at(m, "3 \xc3\x97 4", "\xc3\x97"));             /* × */
    ck_assert(!ends(m, "3 \xc3\x97 4", 3));                        /* inside × */
    ck_assert(ends_at(m, "six divided by two", "divided") && ends_at(m, "x squared", "squared"));
    concept_free(m);

    Concept *r = load_ok(probe_file("r.json", "{\"name\": \"r\", \"case\": \"insensitive\", \"words\": [\"went\"], "
                                              "\"regexes\": [\"[a-z]+ed\"]}"),
                         NULL);
    ck_assert_uint_eq(r->n_regexes, 1);
    ck_assert(ends_at(r, "she Jumped", "Jumped") && ends_at(r, "went", "went"));
    ck_assert(ends_at(r, "red", "red")); /* [a-z]+ed: a regex is only as good as its author */
    ck_assert(!ends_at(r, "a jumper", "jumper") && !ends_at(r, "ed", "ed"));
    concept_free(r);
}
END_TEST

/* The cursor over a document's tokens in order gives the one-shot answer at
 * every byte, also when the ends go backwards; and on GPT-2's real tokens of
 * a sentence exactly the tokens that end listed words match. */
START_TEST(test_cursor_agrees) {
    Concept *c = load_ok(probe_file("t.json", "{\"name\": \"t\", \"case\": \"insensitive\", "
                                              "\"words\": [\"walked\", \"went\", \"+\", \"'t\", \"\\n\\n\"]}"),
                         NULL);
    const char *doc = "I don't   walked\n\nwent\xff+walked  (sleepwalked) 2+3 WENT\xc3\xa9 went";
    size_t len = strlen(doc);
    ConceptCursor k;
    concept_cursor_init(&k, doc, len);
    int hits = 0;
    for (size_t e = 0; e <= len + 1; e++) {
        int one = concept_match_end(c, doc, len, e);
        ck_assert_int_eq(concept_cursor_match(c, &k, e), one);
        hits += one;
    }
    /* 't, " walked", "went" (before \xff), "walked" (after the one pre-token
     * "\xff+"), "+" (of 2+3), " went"; never "\n\n" (two pre-tokens "\n" there)
     * nor "sleepwalked" nor "WENT\xc3\xa9" */
    ck_assert_int_eq(hits, 6);
    for (size_t e = len + 1; e-- > 0;) ck_assert_int_eq(concept_cursor_match(c, &k, e), concept_match_end(c, doc, len, e));
    concept_free(c);

    char err[PROBE_ERR_LEN];
    Tokenizer *tok = tok_load(path_in(repo_root(), "models/gpt2-tokenizer/vocab.json"),
                              path_in(repo_root(), "models/gpt2-tokenizer/merges.txt"), err);
    ck_assert_msg(tok != NULL, "%s", err);
    Concept *past = shipped("past_tense_verbs", NULL);
    const char *text = "He sleepwalked, then walked and went home; she overcame it.";
    TokBuf b = {0};
    ck_assert_int_eq(tok_encode(tok, text, strlen(text), &b), 0);
    ConceptCursor kk;
    concept_cursor_init(&kk, text, strlen(text));
    char matched[256] = "";
    for (size_t i = 0; i < b.n; i++) {
        size_t end = i + 1 < b.n ? b.start[i + 1] : strlen(text);
        if (concept_cursor_match(past, &kk, end)) {
            size_t at = strlen(matched);
            snprintf(matched + at, sizeof matched - at, "[%.*s]", (int)(end - b.start[i]), text + b.start[i]);
        }
    }
    /* "overcame" is 2+ GPT-2 tokens: only the last one matches */
    ck_assert_msg(!strcmp(matched, "[ walked][ went][came]") || !strcmp(matched, "[ walked][ went][ overcame]"),
                  "matched tokens: %s", matched);
    tok_buf_free(&b);
    tok_free(tok);
    concept_free(past);
}
END_TEST

int main(void) {
    Suite *s = suite_create("concept");
    TCase *tc = case_add(s, "concept", 60,
                         (const TTest *[]){test_shipped_probes_load, test_shipped_flags_drop, test_bad_probe_files,
                                           test_from_words, test_match_words, test_match_symbols_and_regexes,
                                           test_cursor_agrees, NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
