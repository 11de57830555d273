/* util.c — see util.h. */
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unistd.h>

#include "utf8.h"

int err_set(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, PROBE_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int file_read_all(const char *path, char **data, size_t *len, char *err) {
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return err_set(err, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        if (!is_stdin) fclose(f);
        return err_set(err, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                if (!is_stdin) fclose(f);
                return err_set(err, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    if (!is_stdin) fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, "cannot read '%s': %s", path, strerror(errno ? errno : EIO));
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t hash64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int repo_path(const char *rel, char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    /* build-asan/probe lives one level down from the repository */
    const char *base = strrchr(exe, '/');
    const char *up = base && strncmp(base + 1, "build", 5) == 0 ? "/.." : "";
    int w = snprintf(out, cap, "%s%s/%s", exe, up, rel);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

const char *model_dir_resolve(const char *opt) {
    if (opt) return opt;
    const char *env = getenv("PROBE_MODEL");
    if (env && *env) return env;
    /* models/demo next to the binary, so ./probe works from any directory. */
    static char path[PATH_MAX + 32];
    if (repo_path("models/demo", path, sizeof path) == 0) return path;
    return "models/demo";
}

int parse_long(const char *s, long min, long max, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

void checksum_hex(uint64_t v, char out[PROBE_CHECKSUM_HEX]) { snprintf(out, PROBE_CHECKSUM_HEX, "%016" PRIx64, v); }

static const char *error_command;

void error_prefix_set(const char *command) { error_command = command; }

void print_error(const char *msg) {
    if (error_command)
        fprintf(stderr, "probe %s: %s\n", error_command, msg);
    else
        fprintf(stderr, "probe: %s\n", msg);
}

int process_info(long long pid, char *state, double *epoch) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* field 2 (comm) is in parentheses and may hold spaces: count from the
     * last ')'; starttime is field 22, the 20th after it */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2]) return -1;
    char st = p[2];
    unsigned long long ticks = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22) {
            ticks = strtoull(tok, NULL, 10);
            break;
        }
    if (field != 22) return -1;
    f = fopen("/proc/stat", "r");
    if (!f) return -1;
    long long btime = -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1) break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || hz <= 0) return -1;
    *state = st; /* out-parameters only on success */
    *epoch = (double)btime + (double)ticks / (double)hz;
    return 0;
}

int env_long(const char *name, long min, long max, long dflt, long *out, char *err) {
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    if (parse_long(v, min, max, out))
        return err_set(err, "%s=%s: expected an integer in %ld..%ld", name, v, min, max);
    return 0;
}

int ids_read_json(const char *path, int32_t **ids, int *n, char *err) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    cJSON *arr = cJSON_ParseWithLength(text, len);
    free(text);
    if (!arr || !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return err_set(err, "'%s' is not a JSON array of token ids", path);
    }
    int count = cJSON_GetArraySize(arr);
    int32_t *out = malloc(sizeof *out * (size_t)(count > 0 ? count : 1));
    if (!out) {
        cJSON_Delete(arr);
        return err_set(err, "out of memory reading '%s'", path);
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v > INT32_MAX || v != (double)(int32_t)v) {
            free(out);
            cJSON_Delete(arr);
            return err_set(err, "'%s': element %d is not a non-negative integer token id", path, i);
        }
        out[i++] = (int32_t)v;
    }
    cJSON_Delete(arr);
    *ids = out;
    *n = count;
    return 0;
}

void json_add_real(cJSON *obj, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

int json_add_text(cJSON *obj, const char *key, const char *s) {
    if (!s) s = "";
    char *text = utf8_text_dup(s, strlen(s), NULL);
    int ok = text && cJSON_AddStringToObject(obj, key, text) != NULL;
    free(text);
    return ok ? 0 : -1;
}

int text_printable(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}
