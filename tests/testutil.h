/* testutil.h — helpers shared by the check suites.
 *
 * Reference values come from scripts that compute them independently and
 * are stored under tests/fixtures; compare with max_rel_err against a
 * stated tolerance and report the largest difference. */
#ifndef PROBE_TESTUTIL_H
#define PROBE_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* max |a-b| / max |b| over n values (b is the reference). */
static inline double max_rel_err(const float *a, const float *b, size_t n) {
    double maxdiff = 0, maxref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || d != d) maxdiff = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
    }
    return maxref > 0 ? maxdiff / maxref : maxdiff;
}

/* Path of the probe binary under test ($PROBE_BIN, set by make test). */
static inline const char *probe_bin(void) {
    const char *p = getenv("PROBE_BIN");
    return p && *p ? p : "./probe";
}

/* Runs a shell command, captures stdout+stderr (up to cap bytes) into out,
 * returns the exit status (or -1). */
static inline int run_capture(const char *cmd, char *out, size_t cap) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

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
    while (*p && *p != ')') {
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

/* The one runner every suite's main() ends with: runs all cases and
 * returns the process exit status (non-zero when any check failed). */
#include <check.h>
static inline int run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
