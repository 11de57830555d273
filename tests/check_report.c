/* check_report.c — `probe report`: the static HTML report opened in a real
 * browser. A small corpus is recorded with the demo model, ranked for a
 * concept, run through `probe kv` and an ablation sweep, and reported; then
 * headless Chromium loads the pages (file://, as a user opens them) and the
 * rendered DOM is checked against the database: the FFN share from the
 * run's config, the neurons and their order in a layer table (also after
 * the page's script sorts it), a neuron page's heatmap (its top example's
 * token carries exactly the recorded activation, from the exact replay),
 * histogram total, value tokens, the concept page's ranking and marked
 * concept tokens, the ablation chart's bars and most affected token, a
 * neuron sweep's estimates in the database's order. Any
 * JavaScript error, console error or missing file fails; a page with a
 * planted script error proves that the check can fail. Screenshots go to
 * BUILD/report-screenshots/ (look at them).
 *
 * Needs Chromium (`sh scripts/install_deps.sh` installs Debian's
 * `chromium`): without it the browser tests fail, unless PROBE_NO_BROWSER=1
 * is set explicitly. Expected values come from the database by SQL, never
 * from figures of the current demo model. */
#include "testutil.h"

#include <dirent.h>

#include "parallel.h"
#include "report_html.h"

static char tmpdir[256], db[300], rep[300], browser[256], shots[1024];
static char out[1 << 20];
static char dom[1 << 23];

/* ---- set-up: one database and one report for every test --------------------- */

static void find_browser(void) {
    static const char *names[] = {"chromium", "chromium-browser", "google-chrome", NULL};
    browser[0] = '\0';
    for (int i = 0; names[i] && !browser[0]; i++) {
        char cmd[128], path[256] = "";
        snprintf(cmd, sizeof cmd, "command -v %s", names[i]);
        if (run_capture(cmd, path, sizeof path) == 0 && path[0] == '/') {
            path[strcspn(path, "\n")] = '\0';
            snprintf(browser, sizeof browser, "%s", path);
        }
    }
}

/* BUILD/report-screenshots, BUILD being the folder above this test binary's. */
static void shots_dir(void) {
    char exe[900];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert(n > 0);
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) *strrchr(exe, '/') = '\0';
    snprintf(shots, sizeof shots, "%s/report-screenshots", exe);
    mkdir(shots, 0755);
}

static void setup_once(void) {
    tmpdir_make(tmpdir, sizeof tmpdir, "check_report");
    snprintf(db, sizeof db, "%s/r.db", tmpdir);
    snprintf(rep, sizeof rep, "%s/report", tmpdir);
    const char *corpus = path_in(repo_root(), "tests/fixtures/concept_scores/corpus.txt");
    const char *model = path_in(repo_root(), "models/demo");
    int st = run_probe(out, sizeof out, "record %s --db %s --model %s --quiet", corpus, db, model);
    ck_assert_msg(st == 0, "record: %s", out);
    st = run_probe(out, sizeof out, "top-neurons --db %s --concept past_tense_verbs", db);
    ck_assert_msg(st == 0, "top-neurons --concept: %s", out);
    st = run_probe(out, sizeof out, "kv --db %s --quiet", db);
    ck_assert_msg(st == 0, "kv: %s", out);
    st = run_probe(out, sizeof out, "ablate --db %s --run 1 --sweep neurons --layer 5 --verify 2 --quiet", db);
    ck_assert_msg(st == 0, "ablate --sweep neurons: %s", out);
    st = run_probe(out, sizeof out, "ablate --db %s --run 1 --sweep layers", db);
    ck_assert_msg(st == 0, "ablate: %s", out);
    st = run_probe(out, sizeof out, "report --db %s --out %s", db, rep);
    ck_assert_msg(st == 0, "report: %s", out);
    find_browser();
    shots_dir();
}

static void teardown_once(void) { tmpdir_remove(tmpdir); }

/* ---- helpers ------------------------------------------------------------------ */

static int no_browser_ok(void) {
    const char *e = getenv("PROBE_NO_BROWSER");
    return e && !strcmp(e, "1");
}

/* 0 when the browser tests may run; 1 when they are skipped on purpose
 * (PROBE_NO_BROWSER=1); fails without a browser otherwise. */
static int browser_skip(void) {
    if (browser[0]) return 0;
    ck_assert_msg(no_browser_ok(), "no Chromium found (chromium, chromium-browser, google-chrome): the report tests "
                                   "open the pages in a real browser; run `sh scripts/install_deps.sh` (Debian's "
                                   "chromium), or set PROBE_NO_BROWSER=1 to skip them explicitly");
    fprintf(stderr, "check_report: PROBE_NO_BROWSER=1: browser checks skipped\n");
    return 1;
}

/* Runs headless Chromium on file://page (with #hash unless NULL): the
 * rendered DOM into dom[] with --dump-dom, or a screenshot at png. Asserts
 * that it ran, that its log holds no JavaScript or loading error and that
 * the page's script ran without an error. */
static const char *browse(const char *page, const char *hash, const char *png) {
    char url[1200], q[1300], logf[600], cmd[4000];
    snprintf(url, sizeof url, "file://%s/%s%s%s", rep, page, hash ? "#" : "", hash ? hash : "");
    sh_quote(q, sizeof q, url);
    snprintf(logf, sizeof logf, "%s/chromium.log", tmpdir);
    char what[1100];
    if (png)
        snprintf(what, sizeof what, "--hide-scrollbars --window-size=1200,900 --screenshot='%s'", png);
    else
        snprintf(what, sizeof what, "--dump-dom");
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--disable-extensions --user-data-dir='%s/chrome-profile' --enable-logging=stderr --v=0 %s %s "
             "2>'%s'",
             browser, tmpdir, what, q, logf);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    size_t n = fread(dom, 1, sizeof dom - 1, p);
    dom[n] = '\0';
    int st = pclose(p);
    char *log = file_read(logf, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chromium failed (%d) on %s:\n%s", st, url, log);
    static const char *bad[] = {"Uncaught", "ERR_FILE_NOT_FOUND", "Failed to load resource", "SyntaxError",
                                "ReferenceError", "TypeError", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(!strstr(log, bad[i]), "chromium reported '%s' on %s:\n%s", bad[i], url, log);
    free(log);
    if (png) {
        size_t len = 0;
        char *img = file_read(png, &len);
        ck_assert_msg(len > 5000 && !memcmp(img, "\x89PNG", 4), "screenshot %s: %zu bytes, not a PNG", png, len);
        free(img);
    } else {
        ck_assert_msg(strstr(dom, "<body data-js=\"ok\">"), "the page's script did not run to its end on %s:\n%.2000s",
                      url, dom);
        ck_assert_msg(strstr(dom, "<div id=\"js-error\" hidden=\"\"></div>"), "JavaScript error on %s: %.1000s", url,
                      strstr(dom, "js-error"));
    }
    return dom;
}

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* s HTML-escaped as the report writes it. */
static const char *escaped(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    for (; *s && k + 8 < cap; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;
        if (e) {
            memcpy(buf + k, e, strlen(e));
            k += strlen(e);
        } else if (*s == '\n') {
            memcpy(buf + k, "\xe2\x86\xb5", 3);
            k += 3;
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = '\0';
    return buf;
}

/* The text of the first element after `from` that starts with `open`, up to `close`. */
static const char *between(const char *from, const char *open, const char *close, char *buf, size_t cap) {
    const char *a = strstr(from, open);
    ck_assert_msg(a != NULL, "no '%s' in the page", open);
    a += strlen(open);
    const char *b = strstr(a, close);
    ck_assert_msg(b != NULL && (size_t)(b - a) < cap, "no '%s' after '%s'", close, open);
    memcpy(buf, a, (size_t)(b - a));
    buf[b - a] = '\0';
    return buf;
}

/* ---- the files ------------------------------------------------------------------ */

/* Every page is there, and every link and source in every page is a file
 * of the report or an anchor: nothing from the network, nothing missing. */
START_TEST(test_files_and_links) {
    ck_assert_msg(strstr(out, " of ") && strstr(out, "example tokens equal their recorded value"), "%s", out);
    int layers = (int)sql_int_at(db, "SELECT n_layer FROM runs WHERE id = 1");
    for (int l = 0; l < layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "layer-%d.html", l);
        ck_assert_msg(path_exists(path_in(rep, name)), "missing %s", name);
    }
    ck_assert(path_exists(path_in(rep, "index.html")));
    char name[128];
    snprintf(name, sizeof name, "concept-%lld.html", sql_int_at(db, "SELECT max(id) FROM concept_runs"));
    ck_assert_msg(path_exists(path_in(rep, name)), "missing %s", name);
    snprintf(name, sizeof name, "ablation-%lld.html", sql_int_at(db, "SELECT max(id) FROM ablations"));
    ck_assert_msg(path_exists(path_in(rep, name)), "missing %s", name);
    DIR *d = opendir(rep);
    ck_assert(d != NULL);
    struct dirent *e;
    int pages = 0, links = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".html")) continue;
        pages++;
        char *text = file_read(path_in(rep, e->d_name), NULL);
        ck_assert_msg(!strstr(text, "http://") && !strstr(text, "https://") && !strstr(text, "src=\""),
                      "%s refers to something outside the report", e->d_name);
        for (char *p = text; (p = strstr(p, "href=\"")); p += 6) {
            char target[256];
            size_t n = strcspn(p + 6, "\"#");
            ck_assert(n < sizeof target);
            memcpy(target, p + 6, n);
            target[n] = '\0';
            if (!n) continue; /* an anchor in the page */
            links++;
            ck_assert_msg(!strchr(target, ':') && path_exists(path_in(rep, target)), "%s links to missing '%s'",
                          e->d_name, target);
        }
        free(text);
    }
    closedir(d);
    ck_assert_int_gt(pages, layers + 3);
    ck_assert_int_gt(links, pages);
}
END_TEST

/* ---- the pages in the browser ------------------------------------------------------ */

START_TEST(test_index) {
    if (browser_skip()) return;
    const char *html = browse("index.html", NULL, NULL);
    /* the FFN share of all parameters, from the run's config (tied lm_head) */
    char sql[1200], want[64], got[64];
    snprintf(sql, sizeof sql,
             "WITH c(L, C, F, P, V) AS (SELECT json_extract(model_config, '$.n_layer'),"
             " json_extract(model_config, '$.n_embd'), json_extract(model_config, '$.n_inner'),"
             " json_extract(model_config, '$.n_positions'), json_extract(model_config, '$.vocab_size') FROM runs"
             " WHERE id = 1) SELECT printf('%%.2f%%%%', 100.0 * L * (2 * C * F + F + C) / (V * C + P * C + L * (4 * C"
             " * C + 4 * C) + L * (2 * C * F + F + C) + L * 4 * C + 2 * C)) FROM c");
    sqlite3 *h = sql_open(db);
    sql_bytes(h, sql, want, sizeof want, NULL);
    ck_assert_str_eq(between(html, "<b id=\"ffn-share\">", "</b>", got, sizeof got), want);
    /* one row per layer, the run's token count */
    ck_assert_int_eq(count(strstr(html, "id=\"layer-table\""), "<a href=\"layer-"),
                     (int)sql_int(h, "SELECT n_layer FROM runs WHERE id = 1"));
    sql_bytes(h, "SELECT printf('%,d', n_tokens) FROM runs WHERE id = 1", want, sizeof want, NULL);
    ck_assert_str_eq(between(html, "<td class=\"n-tokens\">", "</td>", got, sizeof got), want);
    sqlite3_close(h);
    browse("index.html", NULL, path_in(shots, "index.png"));
}
END_TEST

START_TEST(test_layer_table) {
    if (browser_skip()) return;
    sqlite3 *h = sql_open(db);
    long long F = sql_int(h, "SELECT n_inner FROM runs WHERE id = 1"),
              top = sql_int(h, "SELECT neuron FROM neuron_stats WHERE run_id = 1 AND layer = 5 ORDER BY max DESC, "
                               "neuron LIMIT 1");
    const char *html = browse("layer-5.html", NULL, NULL);
    const char *body = strstr(html, "<tbody>");
    ck_assert(body != NULL);
    ck_assert_int_eq(count(body, "<tr>"), (int)F);
    char got[64], want[64];
    between(body, "<td data-v=\"", "\"", got, sizeof got);
    snprintf(want, sizeof want, "%lld", top);
    ck_assert_str_eq(got, want);
    /* sorted by the page's script: #sort=frac puts a most active neuron first */
    html = browse("layer-5.html", "sort=frac", NULL);
    ck_assert_msg(strstr(html, "data-key=\"frac\" data-sorted=\"desc\""), "the script did not sort by frac");
    body = strstr(html, "<tbody>");
    long long first = atoll(between(body, "<td data-v=\"", "\"", got, sizeof got));
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT max(frac_pos) FROM neuron_stats WHERE run_id = 1 AND layer = 5) - frac_pos < 1e-4"
             " FROM neuron_stats WHERE run_id = 1 AND layer = 5 AND neuron = %lld",
             first);
    ck_assert_msg(sql_int(h, sql) == 1, "after sorting by frac, neuron %lld is first", first);
    sqlite3_close(h);
    browse("layer-5.html", NULL, path_in(shots, "layer.png"));
}
END_TEST

START_TEST(test_neuron_page) {
    if (browser_skip()) return;
    sqlite3 *h = sql_open(db);
    long long n = sql_int(h, "SELECT neuron FROM neuron_stats WHERE run_id = 1 AND layer = 5 ORDER BY max DESC, "
                             "neuron LIMIT 1");
    char page[64], sql[400], want[256], got[256], esc[512];
    snprintf(page, sizeof page, "neuron-5-%lld.html", n);
    const char *html = browse(page, NULL, NULL);
    /* the top example's own token: its text and exactly its recorded value (replayed) */
    snprintf(sql, sizeof sql,
             "SELECT printf('%%.9g', value) FROM neuron_examples WHERE run_id = 1 AND layer = 5 AND neuron = %lld"
             " AND rank = 1",
             n);
    sql_bytes(h, sql, want, sizeof want, NULL);
    const char *x = strstr(html, "<span class=\"x\"");
    ck_assert_msg(x != NULL, "no outlined example token");
    ck_assert_str_eq(between(x, "data-v=\"", "\"", got, sizeof got), want);
    /* its text: the characters it touches (less one its predecessor already shows) */
    snprintf(sql, sizeof sql,
             "SELECT c.token_text FROM neuron_examples e JOIN token_context c ON c.token_row = e.token_row"
             " WHERE e.run_id = 1 AND e.layer = 5 AND e.neuron = %lld AND e.rank = 1",
             n);
    sql_bytes(h, sql, want, sizeof want, NULL);
    between(x, "\">", "</span>", got, sizeof got);
    ck_assert_msg(!strcmp(got, "\xe2\x80\x89") || (strstr(escaped(want, esc, sizeof esc), got) && got[0]),
                  "the top example's token shows '%s', not part of '%s'", got, want);
    /* every example outlined, every context token coloured */
    int examples = count(html, "<span class=\"x\"");
    ck_assert_int_ge(examples, 1);
    ck_assert_int_gt(count(html, "style=\"background:#"), examples * 2);
    ck_assert_int_eq(count(html, "class=\"u\""), 0);
    ck_assert_msg(strstr(html, "class=\"legend\""), "no legend");
    /* the histogram holds every token of the run */
    snprintf(sql, sizeof sql, "SELECT count FROM neuron_stats WHERE run_id = 1 AND layer = 5 AND neuron = %lld", n);
    snprintf(want, sizeof want, "%lld", sql_int(h, sql));
    ck_assert_str_eq(between(html, "<svg class=\"hist\" data-total=\"", "\"", got, sizeof got), want);
    /* its value's top promoted token (probe kv) */
    snprintf(sql, sizeof sql,
             "SELECT token FROM value_tokens WHERE layer = 5 AND neuron = %lld AND variant = 'raw' AND"
             " direction = 'promoted' AND rank = 1",
             n);
    sql_bytes(h, sql, want, sizeof want, NULL);
    const char *values = strstr(html, "id=\"values\"");
    ck_assert_msg(values != NULL, "no value tokens");
    ck_assert_str_eq(between(values, "<span class=\"tk\">", "</span>", got, sizeof got),
                     escaped(want, esc, sizeof esc));
    sqlite3_close(h);
    browse(page, NULL, path_in(shots, "neuron.png"));
}
END_TEST

START_TEST(test_concept_page) {
    if (browser_skip()) return;
    sqlite3 *h = sql_open(db);
    long long id = sql_int(h, "SELECT max(id) FROM concept_runs");
    char page[64], want[64], got[64], cell[300], sql[300];
    snprintf(page, sizeof page, "concept-%lld.html", id);
    const char *html = browse(page, NULL, NULL);
    snprintf(sql, sizeof sql,
             "SELECT neuron_name FROM concept_top_neurons WHERE concept_run_id = %lld ORDER BY rank, layer, neuron"
             " LIMIT 1",
             id);
    sql_bytes(h, sql, want, sizeof want, NULL);
    const char *body = strstr(strstr(html, "id=\"ranking\""), "<tbody>");
    between(body, "<td data-v=", "</td>", cell, sizeof cell);
    ck_assert_str_eq(between(cell, ".html\">", "</a>", got, sizeof got), want);
    /* concept tokens marked in the best neurons' examples */
    int marked = atoi(between(html, "id=\"marked\" data-n=\"", "\"", got, sizeof got));
    ck_assert_int_gt(marked, 0);
    ck_assert_int_eq(count(html, " cm\"") + count(html, "class=\"cm\""), marked + 1); /* + the note's sample */
    sqlite3_close(h);
    browse(page, NULL, path_in(shots, "concept.png"));
}
END_TEST

START_TEST(test_ablation_page) {
    if (browser_skip()) return;
    sqlite3 *h = sql_open(db);
    long long id = sql_int(h, "SELECT max(id) FROM ablations");
    char page[64], want[256], got[256], esc[512], sql[400];
    snprintf(page, sizeof page, "ablation-%lld.html", id);
    const char *html = browse(page, NULL, NULL);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ablation_conditions WHERE ablation_id = %lld", id);
    int n = (int)sql_int(h, sql);
    ck_assert_int_eq(n, (int)sql_int(h, "SELECT n_layer FROM runs WHERE id = 1"));
    ck_assert_int_eq(count(html, "<rect class=\"bar\""), n);
    ck_assert_int_eq(count(html, "<path class=\"err\""), n);
    snprintf(sql, sizeof sql,
             "SELECT printf('%%.6g', delta_loss) FROM ablation_conditions WHERE ablation_id = %lld AND layer = 0", id);
    sql_bytes(h, sql, want, sizeof want, NULL);
    ck_assert_str_eq(between(html, "data-label=\"layer 0\" data-v=\"", "\"", got, sizeof got), want);
    /* the token that layer 0's removal hurts most, first in its list */
    snprintf(sql, sizeof sql,
             "SELECT t.token FROM ablation_tokens t JOIN ablation_conditions c ON c.id = t.condition_id"
             " WHERE c.ablation_id = %lld AND c.idx = 0 ORDER BY t.ablated_loss - t.baseline_loss DESC, t.doc, t.pos"
             " LIMIT 1",
             id);
    sql_bytes(h, sql, want, sizeof want, NULL);
    const char *row = strstr(html, "<tr class=\"affected\">");
    ck_assert_msg(row != NULL, "no affected tokens");
    ck_assert_str_eq(between(row, "<span class=\"tk\">", "</span>", got, sizeof got), escaped(want, esc, sizeof esc));
    ck_assert_msg(strstr(row, "<span class=\"x\""), "the affected token is not outlined in its context");
    sqlite3_close(h);
    browse(page, NULL, path_in(shots, "ablation.png"));
}
END_TEST

/* A neuron sweep's page: its two verified neurons as conditions, and its
 * largest estimates in the database's order, the verified ones measured. */
START_TEST(test_sweep_page) {
    if (browser_skip()) return;
    sqlite3 *h = sql_open(db);
    long long id = sql_int(h, "SELECT min(ablation_id) FROM ablation_neuron_estimates");
    char page[64], sql[300], want[64], got[64];
    snprintf(page, sizeof page, "ablation-%lld.html", id);
    const char *html = browse(page, NULL, NULL);
    ck_assert_int_eq(count(html, "<tr class=\"est\""), 30);
    const char *row = html;
    for (int rank = 1; rank <= 3; rank++) {
        snprintf(sql, sizeof sql,
                 "SELECT layer || ':' || neuron FROM ablation_neuron_estimates WHERE ablation_id = %lld"
                 " ORDER BY estimate DESC, layer, neuron LIMIT 1 OFFSET %d", id, rank - 1);
        sql_bytes(h, sql, want, sizeof want, NULL);
        row = strstr(row, "<tr class=\"est\"");
        ck_assert_msg(row != NULL, "estimate row %d missing", rank);
        ck_assert_str_eq(between(row, "data-neuron=\"", "\"", got, sizeof got), want);
        row++;
    }
    /* the first two are the verified ones: their measured column is filled */
    const char *first = strstr(html, "<tr class=\"est\"");
    const char *third = strstr(strstr(strstr(first, "<tr class=\"est\"") + 1, "<tr class=\"est\"") + 1, "<tr class=\"est\"");
    char cell[2048];
    snprintf(cell, sizeof cell, "%.*s", (int)(third - first), first);
    /* (the DOM holds the em dash as a character) */
    ck_assert_int_eq(count(cell, "\xe2\x80\x94"), 0);
    ck_assert_msg(strstr(third, "\xe2\x80\x94"), "an unverified neuron shows a measurement");
    sqlite3_close(h);
    browse(page, NULL, path_in(shots, "sweep.png"));
}
END_TEST

/* The check can fail: a page whose script throws shows the error in the
 * DOM, and browse()'s assertion on it would fire. */
START_TEST(test_error_detection) {
    if (browser_skip()) return;
    const char *bad = path_in(tmpdir, "bad.html");
    FILE *f = fopen(bad, "w");
    ck_assert(f != NULL);
    html_begin(f, "bad");
    fputs("<script>undefined_function_of_the_test();</script>\n", f);
    html_end(f);
    ck_assert_int_eq(fclose(f), 0);
    char url[600], cmd[2000], q[700];
    snprintf(url, sizeof url, "file://%s", bad);
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
             "--user-data-dir='%s/chrome-profile' --dump-dom %s 2>/dev/null",
             browser, tmpdir, sh_quote(q, sizeof q, url));
    ck_assert_int_eq(run_capture(cmd, dom, sizeof dom), 0);
    ck_assert_msg(strstr(dom, "JavaScript error: ") && strstr(dom, "undefined_function_of_the_test"),
                  "a script error went unnoticed: %s", dom);
}
END_TEST

/* --stored: the heatmaps from the database, and the page says so. */
START_TEST(test_stored_and_errors) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/stored", tmpdir);
    int st = run_probe(out, sizeof out, "report --db %s --out %s --stored --top 2", db, dir);
    ck_assert_msg(st == 0 && strstr(out, "heatmaps: stored activations"), "%s", out);
    char *text = file_read(path_in(dir, "index.html"), NULL);
    ck_assert_msg(strstr(text, "Token activations are stored values"), "the report does not say where values come from");
    free(text);
    ck_assert_int_eq(run_probe(out, sizeof out, "report --db %s", db), 2);
    ck_assert_msg(strstr(out, "--out"), "%s", out);
    ck_assert_int_eq(run_probe(out, sizeof out, "report --db %s --out %s --run 99", db, dir), 2);
    ck_assert_int_eq(run_probe(out, sizeof out, "report --db %s/none.db --out %s", tmpdir, dir), 1);
    ck_assert_int_eq(run_probe(out, sizeof out, "report --db %s --out %s/no/such/dir", db, tmpdir), 1);
    ck_assert_msg(strstr(out, "cannot create"), "%s", out);
}
END_TEST

/* Replayed values that differ from the recorded ones (a run recorded with
 * other BLAS kernels or on another CPU; here the recorded values are
 * nudged by 1e-6) are reported as such, not as exact. */
START_TEST(test_replay_mismatch_is_said) {
    char alt[400], dir[400], cmd[1000];
    snprintf(alt, sizeof alt, "%s/altered.db", tmpdir);
    snprintf(dir, sizeof dir, "%s/altered", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", db, alt);
    ck_assert_int_eq(system(cmd), 0);
    sqlite3 *h = sql_open(alt);
    ck_assert_int_eq(sqlite3_exec(h, "UPDATE neuron_examples SET value = value * (1 + 1e-6);"
                                     "UPDATE runs SET blas = 'OtherCore'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    int st = run_probe(out, sizeof out, "report --db %s --out %s --top 1", alt, dir);
    ck_assert_msg(st == 0 && strstr(out, "exact: 0 of ") && strstr(out, "the others differ in the last bits"), "%s",
                  out);
    /* said before the replay: the run's kernels (runs.blas) are not this machine's */
    ck_assert_msg(strstr(out, "note: run 1 was recorded with OpenBLAS's OtherCore kernels") &&
                      strstr(out, "OPENBLAS_CORETYPE=OtherCore replays them exactly"),
                  "%s", out);
    char *text = file_read(path_in(dir, "index.html"), NULL);
    const char *said = strstr(text, "Token activations are recomputed");
    ck_assert_msg(said && strstr(said, "differ by at most 1.") && strstr(said, "e-06 of their value"), "the report does not say that replayed values "
                  "differ: %.400s", said ? said : text);
    free(text);
    text = file_read(path_in(rep, "index.html"), NULL); /* the unaltered run: every value equal */
    ck_assert_msg(strstr(text, "Token activations are exact") && !strstr(text, "differ by at most"),
                  "the report of the unaltered run does not say its values are exact");
    char cell[128];
    snprintf(cell, sizeof cell, "<td class=\"l blas\">%s</td>", parallel_blas_core());
    ck_assert_msg(strstr(text, cell), "the runs table does not show the run's kernels (%s)", cell);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("report");
    TCase *tc = case_add(s, "report", 600,
                         (const TTest *[]){test_files_and_links, test_index, test_layer_table, test_neuron_page,
                                           test_concept_page, test_ablation_page, test_sweep_page, test_error_detection,
                                           test_stored_and_errors, test_replay_mismatch_is_said, NULL});
    tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
    return run_suite(s);
}
