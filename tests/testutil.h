/* testutil.h — helpers shared by the check suites (header only).
 *
 *   Suite *s = suite_create("corpus");
 *   TCase *tc = case_add(s, "corpus", 60, (const TTest *[]){test_a, test_b, NULL});
 *   tcase_add_checked_fixture(tc, setup, teardown);
 *   return run_suite(s);
 *
 * Reference values come from scripts that compute them independently and
 * are stored under tests/fixtures; compare with max_rel_err (and its double
 * and JSON forms) against a stated tolerance and report the largest
 * difference. Every helper that can fail asserts with ck_assert and names
 * the file, the SQL or the command, so a test reads as a list of checks.
 * Suites run from the repository root (make test); repo_root() finds it
 * from $PROBE_BIN where an absolute path is needed. */
#ifndef PROBE_TESTUTIL_H
#define PROBE_TESTUTIL_H

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define PYTHON3 "/usr/bin/python3"

/* ---- numbers ------------------------------------------------------------ */

/* The running maximum of |got - ref| and of |ref| over values added. */
typedef struct {
    double maxdiff, maxref;
} RelErr;

/* Adds one value and its reference; a NaN difference counts as infinite. */
static inline void rel_err_add(RelErr *e, double got, double ref) {
    double d = fabs(got - ref);
    if (d != d) d = INFINITY;
    if (d > e->maxdiff) e->maxdiff = d;
    if (fabs(ref) > e->maxref) e->maxref = fabs(ref);
}

/* max |got - ref| / max |ref| over the values added (the absolute
 * difference when every reference is 0). */
static inline double rel_err_value(const RelErr *e) {
    return e->maxref > 0 ? e->maxdiff / e->maxref : e->maxdiff;
}

/* |got - ref| / |ref| of one value (|got - ref| when ref is 0). */
static inline double rel_diff(double got, double ref) {
    RelErr e = {0, 0};
    rel_err_add(&e, got, ref);
    return rel_err_value(&e);
}

/* max |a-b| / max |b| over n values (b is the reference). */
static inline double max_rel_err(const float *a, const float *b, size_t n) {
    RelErr e = {0, 0};
    for (size_t i = 0; i < n; i++) rel_err_add(&e, a[i], b[i]);
    return rel_err_value(&e);
}

/* max_rel_err of doubles. */
static inline double max_rel_err_d(const double *a, const double *b, size_t n) {
    RelErr e = {0, 0};
    for (size_t i = 0; i < n; i++) rel_err_add(&e, a[i], b[i]);
    return rel_err_value(&e);
}

/* max_rel_err against a JSON array of reference numbers; asserts it holds n. */
static inline double max_rel_err_json(const double *got, const cJSON *ref, int n) {
    ck_assert_int_eq(cJSON_GetArraySize(ref), n);
    RelErr e = {0, 0};
    for (int i = 0; i < n; i++) rel_err_add(&e, got[i], cJSON_GetArrayItem(ref, i)->valuedouble);
    return rel_err_value(&e);
}

/* The value of an IEEE binary16 bit pattern from the closed form
 * sign * 2^(e-15) * (1 + m/1024) (subnormals sign * m * 2^-24): an oracle
 * independent of src/util/fp16.c. */
static inline double f16_reference(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

/* ---- paths and files ---------------------------------------------------- */

/* Path of the probe binary under test ($PROBE_BIN, set by make test). */
static inline const char *probe_bin(void) {
    const char *p = getenv("PROBE_BIN");
    return p && *p ? p : "./probe";
}

/* 1 when path names an existing file of any kind (links followed), else 0. */
static inline int path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The repository: the directory of $PROBE_BIN or the one above it
 * (build-asan/probe) that holds tests/testutil.h; "." when neither does. */
static inline const char *repo_root(void) {
    static char root[4096];
    snprintf(root, sizeof root, "%s", probe_bin());
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(root, '/');
        if (!slash) break;
        *slash = '\0';
        char marker[4200];
        snprintf(marker, sizeof marker, "%s/tests/testutil.h", root);
        if (path_exists(marker)) return root;
    }
    return ".";
}

/* dir/name, in one of 64 rotating buffers: valid for the next 63 calls. */
static inline const char *path_in(const char *dir, const char *name) {
    static char ring[64][1024];
    static int next;
    char *p = ring[next = (next + 1) % 64];
    ck_assert_msg((size_t)snprintf(p, sizeof ring[0], "%s/%s", dir, name) < sizeof ring[0], "path too long: %s/%s",
                  dir, name);
    return p;
}

/* s as one shell word in out[cap]: in single quotes, each ' as '\''. Returns out. */
static inline const char *sh_quote(char *out, size_t cap, const char *s) {
    size_t k = 0;
    out[k++] = '\'';
    for (; *s; s++) {
        ck_assert_msg(k + 6 < cap, "sh_quote: '%s' does not fit in %zu bytes", s, cap);
        if (*s == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *s;
        }
    }
    out[k++] = '\'';
    out[k] = '\0';
    return out;
}

/* Makes a new directory /tmp/NAME.XXXXXX into dir[cap]; asserts. */
static inline void tmpdir_make(char *dir, size_t cap, const char *name) {
    ck_assert((size_t)snprintf(dir, cap, "/tmp/%s.XXXXXX", name) < cap);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
}

/* Removes path and everything under it (made writable first); a missing
 * path is no error. Asserts. */
static inline void tmpdir_remove(const char *path) {
    char q[1024], cmd[2200];
    sh_quote(q, sizeof q, path);
    snprintf(cmd, sizeof cmd, "chmod -R u+w %s 2>/dev/null; rm -rf %s", q, q);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

/* Writes len bytes of data to path (created or truncated); asserts.
 * Returns path. */
static inline const char *file_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_msg(fwrite(data, 1, len, f) == len, "short write to %s", path);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The whole file, malloc'd and NUL-terminated (caller frees); its length
 * in *len unless len is NULL. Asserts. (noinline: gcc 12 -O3 otherwise
 * warns of a dangling pointer to the local `data` at its callers.) */
__attribute__((noinline, unused)) static char *file_read(const char *path, size_t *len) {
    char *data = NULL, err[PROBE_ERR_LEN];
    size_t n;
    ck_assert_msg(file_read_all(path, &data, &n, err) == 0, "%s", err);
    if (len) *len = n;
    return data;
}

/* Copies the file src to dst byte for byte; asserts. */
static inline void file_copy(const char *src, const char *dst) {
    size_t n;
    char *data = file_read(src, &n);
    file_write(dst, data, n);
    free(data);
}

/* A copy of model directory src (config, weights, tokenizer files) in dst,
 * which exists. */
static inline void model_copy(const char *src, const char *dst) {
    static const char *files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        char from[1024];
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        char to[1024];
        snprintf(to, sizeof to, "%s/%s", dst, files[i]);
        file_copy(from, to);
    }
}

/* Where tensor `name`'s data lies in a safetensors file read into data[0..n):
 * its first byte, and its size in bytes in *len; asserts the tensor exists. */
static inline char *tensor_data(char *data, size_t n, const char *name, size_t *len) {
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | (unsigned char)data[k];
    ck_assert(hlen + 8 <= n);
    cJSON *h = cJSON_ParseWithLength(data + 8, (size_t)hlen);
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(h, name), "data_offsets");
    ck_assert_msg(off != NULL, "no tensor '%s'", name);
    size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, b = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    cJSON_Delete(h);
    ck_assert(a <= b && 8 + hlen + b <= n);
    *len = b - a;
    return data + 8 + hlen + a;
}

/* Overwrites element `index` (width bytes, as stored: little-endian) of
 * tensor `name` in dir/model.safetensors. */
static inline void tensor_patch(const char *dir, const char *name, long index, const void *bytes, int width) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n, len;
    char *data = file_read(path, &n), *t = tensor_data(data, n, name, &len);
    ck_assert((size_t)(index + 1) * (size_t)width <= len);
    memcpy(t + (size_t)index * (size_t)width, bytes, (size_t)width);
    file_write(path, data, n);
    free(data);
}

/* Reads `count` float32 elements of tensor `name` of dir/model.safetensors
 * from element `index` on into out. */
static inline void tensor_read_f32(const char *dir, const char *name, long index, size_t count, float *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n, len;
    char *data = file_read(path, &n), *t = tensor_data(data, n, name, &len);
    ck_assert(((size_t)index + count) * 4 <= len);
    memcpy(out, t + (size_t)index * 4, count * 4);
    free(data);
}

/* ---- JSON ---------------------------------------------------------------- */

/* The JSON document in the file at path (caller deletes); asserts it parses. */
static inline cJSON *json_load(const char *path) {
    size_t n;
    char *text = file_read(path, &n);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    ck_assert_msg(j != NULL, "bad JSON in %s", path);
    return j;
}

/* The number o[key] (exact key); asserts that it is a number. */
static inline double json_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "missing number '%s'", key);
    return v->valuedouble;
}

/* ---- .npy ------------------------------------------------------------------ */

/* Reads a little-endian float32 .npy file (C order). Returns a malloc'd
 * array and fills shape[0..*ndim) (at most 4 dims), or NULL. */
static inline float *npy_read_f32(const char *path, long *shape, int *ndim) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    char hdr[4096];
    float *data = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) goto out;
    size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) goto out;
    hdr[hl] = '\0';
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "True")) goto out;
    char *p = strchr(strstr(hdr, "'shape'"), '(') + 1;
    size_t n = 1;
    *ndim = 0;
    while (*p && *p != ')' && *ndim < 4) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        shape[(*ndim)++] = v;
        n *= (size_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    data = malloc(sizeof(float) * (n ? n : 1));
    if (data && fread(data, sizeof(float), n, f) != n) {
        free(data);
        data = NULL;
    }
out:
    fclose(f);
    return data;
}

/* ---- SQLite ---------------------------------------------------------------- */

/* The database at path, opened read-write (never created), waiting up to
 * 5 s for a lock; asserts. */
static inline sqlite3 *sql_open(const char *path) {
    sqlite3 *db = NULL;
    ck_assert_msg(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK, "cannot open %s", path);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first column of the first row of sql as an integer; asserts that the
 * statement prepares and returns a row. */
static inline long long sql_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* sql_int on the database at path, opened and closed around the query. */
static inline long long sql_int_at(const char *path, const char *sql) {
    sqlite3 *db = sql_open(path);
    long long v = sql_int(db, sql);
    sqlite3_close(db);
    return v;
}

/* The first column of the first row of sql as bytes (TEXT or BLOB), copied
 * into buf[cap] and NUL-terminated; its length in *len unless len is NULL.
 * Returns buf; asserts a row that fits. */
static inline const char *sql_bytes(sqlite3 *db, const char *sql, char *buf, size_t cap, int *len) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    int n = sqlite3_column_bytes(st, 0);
    ck_assert_msg((size_t)n < cap, "%s: %d bytes, more than %zu", sql, n, cap - 1);
    if (n) memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
    buf[n] = '\0';
    if (len) *len = n;
    sqlite3_finalize(st);
    return buf;
}

/* ---- the README's SQL ------------------------------------------------------ */

/* The text between <!-- NAME:start --> and <!-- NAME:end --> of the
 * repository's README.md, malloc'd (caller frees); asserts both markers. */
static inline char *readme_section(const char *name) {
    char start[64], end[64];
    snprintf(start, sizeof start, "<!-- %s:start -->", name);
    snprintf(end, sizeof end, "<!-- %s:end -->", name);
    char *text = file_read(path_in(repo_root(), "README.md"), NULL);
    char *a = strstr(text, start), *b = a ? strstr(a, end) : NULL;
    ck_assert_msg(a && b, "README.md lacks the markers %s ... %s", start, end);
    *b = '\0';
    memmove(text, a, (size_t)(b - a) + 1);
    return text;
}

/* The next ```sql block at or after *cursor, NUL-terminated in place, or
 * NULL when there is none; *cursor moves past it. */
static inline char *sql_block_next(char **cursor) {
    char *q = strstr(*cursor, "```sql\n");
    if (!q) return NULL;
    q += 7;
    char *end = strstr(q, "```");
    ck_assert_msg(end != NULL, "unterminated ```sql block: %s", q);
    *end = '\0';
    *cursor = end + 3;
    return q;
}

/* ---- commands ---------------------------------------------------------------- */

/* Runs a shell command, captures stdout+stderr (up to cap bytes) into out,
 * returns the exit status (or -1). */
static inline int run_capture(const char *cmd, char *out, size_t cap) {
    char full[8192];
    ck_assert_msg((size_t)snprintf(full, sizeof full, "%s 2>&1", cmd) < sizeof full, "command too long: %s", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* run_capture of the command printf(fmt, ...) would print. */
static inline int run_cmdf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int run_cmdf(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8000];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < sizeof cmd, "command too long: %s", cmd);
    return run_capture(cmd, out, cap);
}

/* Runs the probe under test with the shell words printf(fmt, ...) would
 * print (quote paths in them); output in out; returns the exit status. */
static inline int run_probe(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int run_probe(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8000];
    sh_quote(cmd, 2048, probe_bin());
    size_t k = strlen(cmd);
    cmd[k++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd + k, sizeof cmd - k, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < sizeof cmd - k, "command too long: %s", cmd);
    return run_capture(cmd, out, cap);
}

/* Asserts that /usr/bin/python3 is there; `why` says what the suite needs it for. */
static inline void python3_require(const char *why) {
    ck_assert_msg(access(PYTHON3, X_OK) == 0,
                  PYTHON3 " is missing: %s; install Debian's python3 package (apt-get install -y python3)", why);
}

/* ---- suites ------------------------------------------------------------------ */

/* Adds to s a test case `name` running tests[] (NULL-terminated), with a
 * timeout in seconds (0: check's default); returns it, for fixtures and
 * loop tests. */
static inline TCase *case_add(Suite *s, const char *name, int timeout, const TTest *const *tests) {
    TCase *tc = tcase_create(name);
    if (timeout > 0) tcase_set_timeout(tc, timeout);
    for (int i = 0; tests[i]; i++) tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return tc;
}

/* The one runner every suite's main() ends with: runs all cases and
 * returns the process exit status (non-zero when any check failed). */
static inline int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
