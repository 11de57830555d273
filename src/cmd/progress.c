/* progress.c — see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define BAR_WIDTH 24

struct Progress {
    int on;
    double t0, last, frac0;
    int drawn;
};

Progress *progress_new(int enabled, double frac_at_start) {
    Progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->on = enabled && isatty(2);
    p->t0 = p->last = now_sec();
    p->frac0 = frac_at_start;
    return p;
}

int progress_due(Progress *p) {
    if (!p || !p->on) return 0;
    double t = now_sec();
    if (t - p->last < 0.1) return 0;
    p->last = t;
    return 1;
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (s < 0 || s > 360000) {
        snprintf(buf, cap, "--");
        return;
    }
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else if (v >= 60)
        snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf(buf, cap, "%lds", v);
}

void progress_draw(Progress *p, double frac, const char *detail) {
    if (!p || !p->on) return;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    char bar[BAR_WIDTH + 1];
    int full = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < full ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    double el = now_sec() - p->t0, done = frac - p->frac0;
    char eta[32];
    fmt_eta(eta, sizeof eta, done > 1e-9 ? el * (1 - frac) / done : -1);
    fprintf(stderr, "\r\033[K[%s] %3d%%  %s  ETA %s", bar, (int)(frac * 100), detail ? detail : "", eta);
    fflush(stderr);
    p->drawn = 1;
}

void progress_end(Progress *p) {
    if (!p) return;
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    free(p);
}

const char *progress_count(char *buf, long long n) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%lld", n < 0 ? -n : n);
    int o = 0;
    if (n < 0) buf[o++] = '-';
    for (int i = 0; i < len; i++) {
        buf[o++] = tmp[i];
        int left = len - i - 1;
        if (left > 0 && left % 3 == 0) buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}
