/* check_db_text.c — every table and view reads from Python's standard sqlite3
 * as is (SPEC §16), whatever bytes the corpus holds (§11), and every --json
 * output is valid UTF-8.
 *
 * Corpus: tests/fixtures/db_text/corpus.txt (scripts/fixtures/gen_db_text_fixtures.sh):
 * curly quotes and emoji that BPE splits between tokens, CJK, combining
 * marks, invalid bytes (lone FF, truncated E2 82, overlong C0 AF, surrogate
 * ED A0 80, F4 90 80 80), a NUL, and a document ending inside a character.
 * Its documents, by index: 0 curly quotes ("Abram’s ..."), 1 emoji, 2 CJK,
 * 3 combining marks, 4 invalid bytes, 5 NUL and FE FE, 6 ends in E2 80.
 *
 * The reader is tests/fixtures/db_text/read_all.py, run by /usr/bin/python3:
 * every table and view enumerated from sqlite_master, `SELECT *`, no
 * text_factory; then the text columns against Python's own UTF-8 decoder.
 * Counter-check: the same reader fails on tests/fixtures/db_text/v5.sqlite, the
 * same corpus recorded by probe before schema version 6, which is also the
 * database the migration test upgrades. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "util.h"

#define OPTS "--ctx 16 --layers 0 --examples 2 --top-k 1 --quiet" /* as v5.sqlite was recorded */
/* Python reading the JSON file argv[1] strictly as UTF-8 into d, then the rest of a -c script */
#define PY_JSON PYTHON3 " -c 'import json, sys; d = json.loads(open(sys.argv[1], \"rb\").read().decode(\"utf-8\")); "
#define R "\xef\xbf\xbd"                                            /* U+FFFD */

static char tmpdir[256];
static const char *root; /* the repository (repo_root) */
static char out[1 << 16];
static char corpus[512]; /* a copy of the corpus under a name that is not UTF-8 */
static char model[512];  /* tiny-f32 through a symlink whose name is not UTF-8 */

static void setup(void) {
    python3_require("this suite reads the database with Python's standard sqlite3 module");
    root = repo_root();
    tmpdir_make(tmpdir, sizeof tmpdir, "check_db_text");
    snprintf(corpus, sizeof corpus, "%s/corpus-\xff.txt", tmpdir);
    snprintf(model, sizeof model, "%s/tiny-\xfe", tmpdir);
    file_copy(path_in(root, "tests/fixtures/db_text/corpus.txt"), corpus);
    ck_assert_int_eq(symlink(path_in(root, "tests/fixtures/models/tiny-f32"), model), 0);
}

static void teardown(void) { tmpdir_remove(tmpdir); }

static const char *tpath(const char *name) { return path_in(tmpdir, name); }

/* Runs `probe ARGS` (printf-style); output in `out`; returns the exit status. */
#define probe(...) run_probe(out, sizeof out, __VA_ARGS__)

/* Records the corpus (as v5.sqlite was) into db, then ablates layer 0 on it. */
static void record_and_ablate(const char *db) {
    ck_assert_msg(probe("record '%s' --db '%s' --model '%s' " OPTS, corpus, db, model) == 0, "%s", out);
    ck_assert_msg(probe("ablate '%s' --db '%s' --model '%s' --ctx 16 --layers 0 --quiet", corpus, db, model) == 0,
                  "%s", out);
}

/* Runs read_all.py on db (with a file of queries, or NULL); output in `out`. */
static int python_reads(const char *db, const char *queries) {
    return run_cmdf(out, sizeof out, PYTHON3 " '%s/tests/fixtures/db_text/read_all.py' '%s' %s%s%s", root, db,
                    queries ? "'" : "", queries ? queries : "", queries ? "'" : "");
}

/* Rows of `name` as read_all.py printed them ("name rows"), -1 if absent. */
static long rows_read(const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(out, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Checks that `path` holds valid UTF-8 JSON (Python's strict decoder and
 * json module); prints the value of `field` of the top-level object. */
static int python_json(const char *path, const char *field) {
    return run_cmdf(out, sizeof out,
                    PY_JSON "sys.stdout.buffer.write((\"field=\" + d[sys.argv[2]] + \"\\n\").encode())' '%s' '%s'", path,
                    field);
}

/* ---- every table and view, from Python ------------------------------------- */

START_TEST(test_python_reads_everything) {
    const char *db = tpath("text.db");
    record_and_ablate(db);
    ck_assert_msg(python_reads(db, NULL) == 0, "Python cannot read '%s':\n%s", db, out);
    ck_assert_msg(strstr(out, "checked 7 documents"), "%s", out);
    /* every object was read, the ones with text columns with rows */
    static const char *tables[] = {"runs", "documents", "tokens", "token_context", "neuron_top_examples",
                                   "token_top_neurons", "ablations", "ablation_conditions", "ablation_tokens",
                                   "ablation_token_effects", "ablation_summary", "neuron_examples"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        ck_assert_msg(rows_read(tables[i]) > 0, "%s: %ld rows read\n%s", tables[i], rows_read(tables[i]), out);
    sqlite3 *h = sql_open(db);
    long long objects = sql_int(h, "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view')");
    long listed = 0;
    for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++) listed++;
    ck_assert_int_ge(listed, objects + 1);
    ck_assert_int_eq(sql_int(h, "PRAGMA user_version"), 13);
    /* paths that are not UTF-8 are stored as their text form */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM runs WHERE corpus_path LIKE '%corpus-' || char(65533) || '.txt'"
                                " AND model_dir LIKE '%tiny-' || char(65533)"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablations WHERE source LIKE '%corpus-' || char(65533) || '.txt'"
                                " AND model_dir LIKE '%tiny-' || char(65533)"), 1);
    /* ablation_tokens.token is tokens.token of the same document and position */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablation_tokens"), sql_int(h, "SELECT count(*) FROM tokens"));
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM ablation_tokens a JOIN documents d ON d.doc_index = a.doc"
                                " JOIN tokens t ON t.doc_id = d.id AND t.pos = a.pos WHERE a.token = t.token"),
                     sql_int(h, "SELECT count(*) FROM tokens"));
    sqlite3_close(h);
}
END_TEST

/* ---- what the text columns hold --------------------------------------------- */

START_TEST(test_text_values) {
    const char *db = tpath("text.db");
    record_and_ablate(db);
    sqlite3 *h = sql_open(db);
    int n;
    /* each of the four ’ of document 0 is split E2 80 | 99: each token alone
     * is one U+FFFD, and both show the whole character in context */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM token_context WHERE doc_index = 0 AND token_bytes IN (x'e280', x'99')"
                                " AND token = char(65533) AND token_text = '’'"), 8);
    char buf[4096];
    const char *ctx = sql_bytes(h, "SELECT context FROM token_context WHERE doc_index = 0 AND token_bytes = x'e280'"
                                   " ORDER BY pos LIMIT 1", buf, sizeof buf, NULL);
    ck_assert_str_eq(ctx, "Abram[[’]]s tent stood by the “great oak");
    ctx = sql_bytes(h, "SELECT context FROM token_context WHERE doc_index = 0 AND token_bytes = x'99' ORDER BY pos LIMIT 1",
                    buf, sizeof buf, NULL);
    ck_assert_str_eq(ctx, "Abram[[’]]s tent stood by the “great oak");
    /* the emoji: the tokens holding parts of 😀 all show it whole */
    ck_assert_int_ge(sql_int(h, "SELECT count(*) FROM token_context WHERE doc_index = 1 AND token_text LIKE '%😀%'"
                                " AND instr(token, char(65533)) > 0"), 2);
    /* CJK and combining marks survive as they are */
    ck_assert_int_eq(sql_int(h, "SELECT instr(text, '日本語のテキスト') > 0 AND instr(text, 'cafe' || char(769)) = 0"
                                " FROM documents WHERE doc_index = 2"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT instr(text, 'cafe' || char(769)) > 0 FROM documents WHERE doc_index = 3"), 1);
    /* invalid bytes: one U+FFFD per maximal subpart, exact bytes in BLOBs */
    const char *text = sql_bytes(h, "SELECT text FROM documents WHERE doc_index = 4", buf, sizeof buf, NULL);
    ck_assert_str_eq(text, "Invalid bytes: lone " R " here, truncated euro " R " there, overlong slash " R R
                           ", a surrogate " R R R " half, above max " R R R R " and a stray " R " byte.");
    const char *tok = sql_bytes(h, "SELECT token_bytes FROM token_context WHERE doc_index = 4 AND instr(token_bytes, x'ff') > 0",
                                buf, sizeof buf, &n);
    ck_assert_msg(memchr(tok, 0xff, (size_t)n) != NULL, "no token holds the byte FF");
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM tokens t JOIN documents d ON d.id = t.doc_id WHERE d.doc_index = 4"
                                " AND instr(substr(d.text_bytes, t.byte_start + 1, t.byte_end - t.byte_start), x'ed') > 0"
                                " AND instr(t.token, char(65533)) > 0"), 1);
    /* NUL: U+FFFD in TEXT (SQLite's length() would stop at a NUL), the byte in text_bytes */
    ck_assert_int_eq(sql_int(h, "SELECT instr(text, 'A NUL ' || char(65533) || ' byte') = 1 AND instr(text_bytes, x'00') = 7"
                                " FROM documents WHERE doc_index = 5"), 1);
    /* a document that ends inside a character */
    ck_assert_int_eq(sql_int(h, "SELECT substr(text, -1) = char(65533) AND substr(text_bytes, -2) = x'e280'"
                                " FROM documents WHERE doc_index = 6"), 1);
    /* SQLite's own character count agrees with the character spans: the last
     * token of every document ends at length(text) */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM documents d WHERE length(d.text) ="
                                " (SELECT max(char_end) FROM tokens t WHERE t.doc_id = d.id)"), 7);
    sqlite3_close(h);

    /* byte spans index the exact bytes: each document's bytes are the corpus
     * file's at its offset, and its tokens' spans tile them */
    size_t clen;
    char *cbytes = file_read(corpus, &clen);
    h = sql_open(db);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h,
                                        "SELECT d.byte_offset, t.byte_start, t.byte_end, c.token_bytes, d.text_bytes "
                                        "FROM tokens t JOIN documents d ON d.id = t.doc_id JOIN token_context c "
                                        "ON c.token_row = t.id ORDER BY t.id", -1, &st, NULL),
                     SQLITE_OK);
    int tokens = 0;
    long long next = 0, prev_off = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long off = sqlite3_column_int64(st, 0), b0 = sqlite3_column_int64(st, 1), b1 = sqlite3_column_int64(st, 2);
        int nb = sqlite3_column_bytes(st, 3), nd = sqlite3_column_bytes(st, 4);
        if (off != prev_off) next = 0, prev_off = off;
        ck_assert_int_eq(b0, next);
        next = b1;
        ck_assert_int_eq(nb, b1 - b0);
        ck_assert(off + nd <= (long long)clen);
        ck_assert_int_eq(memcmp(sqlite3_column_blob(st, 4), cbytes + off, (size_t)nd), 0);
        ck_assert_int_eq(memcmp(sqlite3_column_blob(st, 3), cbytes + off + b0, (size_t)nb), 0);
        tokens++;
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(tokens, sql_int(h, "SELECT count(*) FROM tokens"));
    sqlite3_close(h);
    free(cbytes);
}
END_TEST

/* ---- --json output ------------------------------------------------------------ */

START_TEST(test_json_valid_utf8) {
    const char *db = tpath("d\xfd.db");
    record_and_ablate(db);
    const char *js = tpath("top.json");
    ck_assert_msg(probe("top-neurons --db '%s' --json > '%s'", db, js) == 0, "%s", out);
    ck_assert_msg(python_json(js, "corpus") == 0, "top-neurons --json is not valid UTF-8 JSON: %s", out);
    ck_assert_msg(strstr(out, "field=") && strstr(out, "corpus-" R ".txt"), "%s", out);
    js = tpath("ablate.json");
    ck_assert_msg(probe("ablate '%s' --db '%s' --model '%s' --ctx 16 --layers 0 --json --quiet > '%s'", corpus, db,
                        model, js) == 0,
                  "%s", out);
    ck_assert_msg(python_json(js, "database") == 0, "ablate --json is not valid UTF-8 JSON: %s", out);
    ck_assert_msg(strstr(out, "d" R ".db"), "%s", out);
    ck_assert_msg(python_json(js, "model") == 0 && strstr(out, "tiny-" R), "%s", out);
    ck_assert_msg(python_json(js, "source") == 0 && strstr(out, "corpus-" R ".txt"), "%s", out);
    /* predict --json: "Abram" is followed by tokens such as E2 80 somewhere in
     * the top 200 of a random model; info --json names the model path */
    js = tpath("predict.json");
    ck_assert_msg(probe("predict --model '%s' --top 1000 --json 'Abram' > '%s'", model, js) == 0, "%s", out);
    ck_assert_msg(run_cmdf(out, sizeof out, PY_JSON "print(len(d), sum(\"\\ufffd\" in e[\"token\"] for e in d))' '%s'",
                           js) == 0,
                  "predict --json is not valid UTF-8 JSON: %s", out);
    int n = 0, replaced = 0;
    ck_assert_int_eq(sscanf(out, "%d %d", &n, &replaced), 2);
    ck_assert_int_eq(n, 1000);
    ck_assert_msg(replaced > 0, "no partial-character token among the top 1000: the check proves nothing");
    js = tpath("info.json");
    ck_assert_msg(probe("info --model '%s' --json > '%s'", model, js) == 0, "%s", out);
    ck_assert_msg(python_json(js, "model") == 0 && strstr(out, "tiny-" R), "info --json: %s", out);
}
END_TEST

/* ---- the README's cookbook, from Python ---------------------------------------- */

START_TEST(test_cookbook_from_python) {
    const char *db = tpath("text.db");
    record_and_ablate(db);
    char *text = readme_section("cookbook"), *cursor = text, *q;
    FILE *f = fopen(tpath("cookbook.sql"), "w");
    ck_assert_ptr_nonnull(f);
    int queries = 0;
    while ((q = sql_block_next(&cursor)) != NULL) {
        fprintf(f, "%s\n;;\n", q);
        queries++;
    }
    fclose(f);
    free(text);
    ck_assert_int_ge(queries, 8);
    ck_assert_msg(python_reads(db, tpath("cookbook.sql")) == 0, "%s", out);
    int ran = 0;
    for (const char *s = out; (s = strstr(s, "\nquery ")) != NULL; s++) ran++;
    ck_assert_int_eq(ran, queries);
}
END_TEST

/* ---- a database of schema version 5 ------------------------------------------ */

/* Copies tests/fixtures/db_text/v5.sqlite to a temporary file. */
static const char *old_db(const char *name) {
    const char *path = tpath(name);
    file_copy(path_in(root, "tests/fixtures/db_text/v5.sqlite"), path);
    return path;
}

START_TEST(test_migrate_v5) {
    const char *db = old_db("old.db");
    /* counter-check: an older probe's database fails the reader */
    ck_assert_msg(python_reads(db, NULL) != 0 && strstr(out, "Could not decode to UTF-8"),
                  "the reader accepted a database with invalid UTF-8 in TEXT columns: it proves nothing\n%s", out);
    /* read-only commands do not migrate, and their JSON is valid anyway */
    const char *js = tpath("top.json");
    ck_assert_msg(probe("top-neurons --db '%s' --json > '%s'", db, js) == 0, "%s", out);
    ck_assert_msg(python_json(js, "corpus") == 0 && strstr(out, "corpus-" R ".txt"), "%s", out);
    /* a reader that needs tables the old version lacks says how to upgrade it */
    ck_assert_int_eq(probe("report --db '%s' --out '%s' --stored", db, tpath("v5report")), 1);
    ck_assert_msg(strstr(out, "has schema version 5, older than this probe's 13") && strstr(out, "to upgrade it"),
                  "%s", out);
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sql_int(h, "PRAGMA user_version"), 5);
    sqlite3_close(h);
    /* opening it for writing migrates it: recording the same corpus again finds
     * the complete run and records nothing */
    ck_assert_msg(probe("record '%s' --db '%s' --model '%s' " OPTS, corpus, db, model) == 0, "%s", out);
    ck_assert_msg(strstr(out, "already holds complete run 1"), "%s", out);
    ck_assert_msg(python_reads(db, NULL) == 0, "Python cannot read the migrated database:\n%s", out);
    ck_assert_msg(strstr(out, "checked 7 documents"), "%s", out);
    /* exactly what this probe records and ablates on the same corpus */
    const char *fresh = tpath("fresh.db");
    record_and_ablate(fresh);
    h = sql_open(db);
    ck_assert_int_eq(sql_int(h, "PRAGMA user_version"), 13);
    /* the kernels of a run recorded before schema 13 are unknown */
    ck_assert_int_eq(sql_int(h, "SELECT count(*) FROM runs WHERE blas IS NULL"), 1);
    char sql[2048];
    snprintf(sql, sizeof sql, "ATTACH '%s' AS f", fresh);
    ck_assert_int_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    static const char *same[] = {
        "SELECT doc_index, byte_offset, n_tokens, text, text_bytes FROM %sdocuments",
        "SELECT d.doc_index, t.pos, t.token_id, t.token, t.byte_start, t.byte_end, t.char_start, t.char_end"
        " FROM %stokens t JOIN documents d ON d.id = t.doc_id",
        "SELECT doc, pos, token_id, token FROM %sablation_tokens",
        "SELECT token_row, context, token_bytes FROM %stoken_context",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char qm[512], qf[512];
        snprintf(qm, sizeof qm, same[i], "main.");
        snprintf(qf, sizeof qf, same[i], "f.");
        /* (the join reads main.documents: same ids in both databases) */
        long long nm;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s)", qm);
        nm = sql_int(h, sql);
        ck_assert_int_gt(nm, 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s)", qf);
        ck_assert_int_eq(sql_int(h, sql), nm);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s EXCEPT %s)", qm, qf);
        ck_assert_msg(sql_int(h, sql) == 0, "migrated and fresh databases differ: %s", qm);
    }
    /* the paths of the old run, as their text form */
    ck_assert_int_eq(sql_int(h, "SELECT corpus_path = 'corpus-' || char(65533) || '.txt' FROM main.runs"), 1);
    ck_assert_int_eq(sql_int(h, "SELECT source = 'corpus-' || char(65533) || '.txt' FROM main.ablations"), 1);
    sqlite3_close(h);
}
END_TEST

START_TEST(test_newer_version_refused) {
    const char *db = old_db("new.db");
    sqlite3 *h = sql_open(db);
    ck_assert_int_eq(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_int_eq(probe("record '%s' --db '%s' --model '%s' " OPTS, corpus, db, model), 1);
    ck_assert_msg(strstr(out, "new.db' has schema version 99, newer than this probe's 13 (upgrade probe)"), "%s", out);
    ck_assert_int_eq(probe("top-neurons --db '%s'", db), 1);
    ck_assert_msg(strstr(out, "newer than this probe's"), "%s", out);
    /* a negative version (once a crash: it indexed the schema files with it),
     * and a version on a file without tables */
    static const char *edits[] = {"PRAGMA user_version = -1", "PRAGMA user_version = 3"};
    for (int i = 0; i < 2; i++) {
        const char *bad = path_in(tmpdir, i ? "versioned_empty.db" : "negative.db");
        if (i == 0) file_copy(db, bad);
        h = NULL;
        ck_assert_int_eq(sqlite3_open(bad, &h), SQLITE_OK); /* creates the empty one */
        ck_assert_int_eq(sqlite3_exec(h, edits[i], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(h);
        ck_assert_int_eq(probe("record '%s' --db '%s' --model '%s' " OPTS, corpus, bad, model), 1);
        ck_assert_msg(strstr(out, "is not a probe database (schema version") && strstr(out, bad), "%s", out);
    }
    /* the right version, but a column renamed by hand: one clear line, not
     * SQLite's bare "no such column" */
    const char *edited = path_in(tmpdir, "edited.db");
    ck_assert_int_eq(probe("record '%s' --db '%s' --model '%s' " OPTS, corpus, edited, model), 0);
    h = sql_open(edited);
    ck_assert_int_eq(sqlite3_exec(h, "ALTER TABLE runs RENAME COLUMN id TO rid", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ck_assert_int_eq(probe("top-neurons --db '%s'", edited), 1);
    ck_assert_msg(strstr(out, "does not have the tables and columns of probe's schema") &&
                      strstr(out, "edited by hand"), "%s", out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("db_text");
    TCase *tc = case_add(s, "db_text", 120,
                         (const TTest *[]){test_python_reads_everything, test_text_values, test_json_valid_utf8,
                                           test_cookbook_from_python, test_migrate_v5, test_newer_version_refused,
                                           NULL});
    tcase_add_checked_fixture(tc, setup, teardown);
    return run_suite(s);
}
