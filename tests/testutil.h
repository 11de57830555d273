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

#endif
