/* safetensors.c — a validating, mmap-based reader of .safetensors files.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *
 *   [u64 LE: N] [N bytes: JSON header] [data section]
 *
 *   header = { "__metadata__": {"format": "pt"},
 *              "h.0.mlp.c_fc.weight": {"dtype": "F32", "shape": [768, 3072],
 *                                      "data_offsets": [begin, end]}, ... }
 *
 * data_offsets are relative to the start of the data section. Everything a
 * caller may touch is validated in st_open, with arithmetic that cannot
 * overflow on hostile input (the parser is fuzzed): a file that opens is a
 * file whose every tensor lies inside the map, has the size its dtype and
 * shape say, and overlaps no other tensor. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp16.h"
#include "util.h"

struct SafeTensors {
    char *path;
    const unsigned char *map; /* whole file, read-only */
    size_t size;
    int fd;        /* kept open for st_read; -1 once closed */
    StTensor *t;   /* [n], in header order */
    const StTensor **by_name; /* [n] into t, sorted by name, for st_find */
    int n;
};

/* Largest integer a JSON number (a double) represents exactly. */
#define ST_JSON_INT_MAX 9007199254740992.0 /* 2^53 */

/* ---- dtypes ------------------------------------------------------------ */

typedef struct {
    const char *name;
    StDtype dt;
    int size;
} DtypeInfo;

static const DtypeInfo dtypes[] = {
    {"F32", ST_F32, 4},       {"F16", ST_F16, 2},       {"BF16", ST_BF16, 2},
    {"F64", ST_OTHER, 8},     {"I64", ST_OTHER, 8},     {"I32", ST_OTHER, 4},
    {"I16", ST_OTHER, 2},     {"I8", ST_OTHER, 1},      {"U64", ST_OTHER, 8},
    {"U32", ST_OTHER, 4},     {"U16", ST_OTHER, 2},     {"U8", ST_OTHER, 1},
    {"BOOL", ST_OTHER, 1},    {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
    {"C64", ST_OTHER, 8},
};

static const DtypeInfo *dtype_lookup(const char *name) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, name)) return &dtypes[i];
    return NULL;
}

/* ---- helpers ----------------------------------------------------------- */

/* A JSON number that is a non-negative integer <= 2^53, as uint64. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > ST_JSON_INT_MAX || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

/* Sorts tensors by begin offset for the overlap check. */
typedef struct {
    uint64_t begin, end;
    int idx;
} Range;

static int cmp_range(const void *a, const void *b) {
    const Range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

/* Parses one header entry `name: {dtype, shape, data_offsets}` into *t.
 * data_size is the length of the data section. */
static int parse_entry(const char *path, const cJSON *e, const unsigned char *data, uint64_t data_size,
                       StTensor *t, uint64_t *begin_out, uint64_t *end_out, char *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return err_set(err, "'%s': tensor '%s' is not a JSON object", path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) return err_set(err, "'%s': tensor '%s' has no dtype string", path, name);
    const DtypeInfo *di = dtype_lookup(dt->valuestring);
    if (!di) {
        return err_set(err, "'%s': tensor '%s' has unknown dtype '%.15s'", path, name,
                       text_printable(dt->valuestring) ? dt->valuestring : "(unprintable)");
    }
    t->dtype = di->dt;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", di->name);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(shape)) return err_set(err, "'%s': tensor '%s' has no shape array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS) {
        return err_set(err, "'%s': tensor '%s' has %d dimensions (at most %d supported)", path, name, ndim,
                       ST_MAX_DIMS);
    }
    /* numel is bounded by the data size / dtype size once validated, but the
     * product of the claimed dims must be computed without overflow first. */
    uint64_t numel = 1;
    int overflow = 0, i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (json_uint(d, &v)) {
            return err_set(err, "'%s': tensor '%s' shape[%d] is not a non-negative integer", path, name, i);
        }
        t->shape[i++] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    t->ndim = ndim;
    if (numel == 0) overflow = 0; /* a zero dim makes any product empty */

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(cJSON_GetArrayItem(off, 0), &begin) ||
        json_uint(cJSON_GetArrayItem(off, 1), &end)) {
        return err_set(err, "'%s': tensor '%s' data_offsets is not a pair of non-negative integers", path, name);
    }
    if (begin > end) {
        return err_set(err, "'%s': tensor '%s' data_offsets [%llu,%llu] has begin after end", path, name,
                       (unsigned long long)begin, (unsigned long long)end);
    }
    if (end > data_size) {
        return err_set(err, "'%s': tensor '%s' data_offsets [%llu,%llu] past end of data (%llu bytes)", path, name,
                       (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
    }
    if (!overflow && numel > UINT64_MAX / (uint64_t)di->size) overflow = 1;
    uint64_t want = overflow ? 0 : numel * (uint64_t)di->size;
    if (overflow || want != end - begin) {
        char shp[160];
        size_t k = 0;
        shp[0] = '\0';
        for (int j = 0; j < ndim && k < sizeof shp - 24; j++)
            k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
        char need[32];
        if (overflow) snprintf(need, sizeof need, "more than 2^64");
        else snprintf(need, sizeof need, "%llu", (unsigned long long)want);
        return err_set(err, "'%s': tensor '%s' data_offsets [%llu,%llu] hold %llu bytes but %s shape [%s] needs %s",
                       path, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)(end - begin), di->name, shp, need);
    }
    t->numel = (int64_t)numel; /* <= data_size, fits */
    t->nbytes = (size_t)want;
    t->data = data + begin;
    *begin_out = begin;
    *end_out = end;
    return 0;
}

/* ---- public API -------------------------------------------------------- */

/* Maps the whole file read-only into st->map / st->size. */
static int map_file(SafeTensors *st, const char *path, char *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(err, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        int e = errno;
        err_set(err, "cannot read '%s': %s", path,
                fstat(fd, &sb) ? strerror(e) : S_ISDIR(sb.st_mode) ? "Is a directory" : "not a regular file");
        close(fd);
        return -1;
    }
    if ((uint64_t)sb.st_size < 8) {
        close(fd);
        return err_set(err, "'%s': truncated safetensors file (%lld bytes, shorter than the 8-byte header length)",
                       path, (long long)sb.st_size);
    }
    st->size = (size_t)sb.st_size;
    void *map = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    if (map == MAP_FAILED) {
        close(fd);
        return err_set(err, "cannot map '%s': %s", path, strerror(map_errno));
    }
    st->map = map;
    st->fd = fd;
    return 0;
}

/* The JSON header of the mapped file, checked: a length that fits, one JSON
 * object, nothing after it but the writers' space padding. Sets *hlen. */
static cJSON *parse_header(const SafeTensors *st, const char *path, uint64_t *hlen_out, char *err) {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | st->map[i];
    if (hlen < 2) {
        err_set(err, "'%s': header length %llu is too small for a JSON header", path, (unsigned long long)hlen);
        return NULL;
    }
    if (hlen > st->size - 8) {
        err_set(err, "'%s': header length %llu past end of file (%zu bytes): truncated or not a safetensors file",
                path, (unsigned long long)hlen, st->size);
        return NULL;
    }
    const char *hdr = (const char *)st->map + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    /* Writers pad the header with spaces to an 8-byte boundary; anything
     * else after the JSON value is garbage. */
    int trailing = 0;
    if (root && end) {
        for (const char *p = end; p < hdr + hlen; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') trailing = 1;
    }
    if (!root || !cJSON_IsObject(root) || trailing) {
        cJSON_Delete(root);
        err_set(err, "'%s': header is not a JSON object (%llu header bytes)", path, (unsigned long long)hlen);
        return NULL;
    }
    *hlen_out = hlen;
    return root;
}

/* Fills st->t / st->by_name (sorted, names unique) and ranges[] from the
 * header's entries; every entry validated against the data section. */
static int read_entries(SafeTensors *st, const char *path, const cJSON *root, uint64_t hlen, Range *ranges,
                        char *err) {
    const unsigned char *data = st->map + 8 + hlen;
    uint64_t data_size = st->size - 8 - hlen;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) return err_set(err, "'%s': __metadata__ is not a JSON object", path);
            continue;
        }
        if (!text_printable(e->string)) return err_set(err, "'%s': tensor %d has a name with control characters", path, st->n);
        StTensor *t = &st->t[st->n];
        Range *r = &ranges[st->n];
        if (parse_entry(path, e, data, data_size, t, &r->begin, &r->end, err)) return -1;
        if (!(t->name = strdup(e->string))) return err_set(err, "out of memory reading the header of '%s'", path);
        r->idx = st->n;
        st->by_name[st->n] = t;
        st->n++;
    }
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->by_name[i - 1]->name, st->by_name[i]->name))
            return err_set(err, "'%s': tensor '%s' appears twice in the header", path, st->by_name[i]->name);
    return 0;
}

/* No two non-empty tensors may share a byte (ranges[] gets sorted). */
static int check_overlaps(const SafeTensors *st, const char *path, Range *ranges, char *err) {
    qsort(ranges, (size_t)st->n, sizeof *ranges, cmp_range);
    int prev = -1;
    for (int i = 0; i < st->n; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (prev >= 0 && ranges[prev].end > ranges[i].begin) {
            const StTensor *a = &st->t[ranges[prev].idx], *b = &st->t[ranges[i].idx];
            return err_set(err, "'%s': tensor '%s' data_offsets [%llu,%llu] overlap tensor '%s' [%llu,%llu]", path,
                           b->name, (unsigned long long)ranges[i].begin, (unsigned long long)ranges[i].end,
                           a->name, (unsigned long long)ranges[prev].begin, (unsigned long long)ranges[prev].end);
        }
        prev = i;
    }
    return 0;
}

SafeTensors *st_open(const char *path, char *err) {
    SafeTensors *st = calloc(1, sizeof *st);
    if (st) st->fd = -1;
    cJSON *root = NULL;
    Range *ranges = NULL;
    uint64_t hlen = 0;
    if (!st || !(st->path = strdup(path))) {
        err_set(err, "out of memory opening '%s'", path);
        goto fail;
    }
    if (map_file(st, path, err) || !(root = parse_header(st, path, &hlen, err))) goto fail;
    int cap = cJSON_GetArraySize(root);
    st->t = calloc((size_t)(cap > 0 ? cap : 1), sizeof *st->t);
    st->by_name = calloc((size_t)(cap > 0 ? cap : 1), sizeof *st->by_name);
    ranges = calloc((size_t)(cap > 0 ? cap : 1), sizeof *ranges);
    if (!st->t || !st->by_name || !ranges) {
        err_set(err, "out of memory reading the header of '%s'", path);
        goto fail;
    }
    if (read_entries(st, path, root, hlen, ranges, err) || check_overlaps(st, path, ranges, err)) goto fail;
    free(ranges);
    cJSON_Delete(root);
    return st;

fail:
    free(ranges);
    cJSON_Delete(root);
    st_close(st);
    return NULL;
}

int st_read(const SafeTensors *st, const void *at, size_t n, void *dst, char *err) {
    size_t off = (size_t)((const unsigned char *)at - st->map);
    if ((const unsigned char *)at < st->map || off > st->size || n > st->size - off)
        return err_set(err, "'%s': read of %zu bytes outside the file", st->path, n);
    unsigned char *d = dst;
    while (n > 0) {
        ssize_t got = pread(st->fd, d, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return err_set(err, "cannot read '%s': %s", st->path, got < 0 ? strerror(errno) : "file shrank");
        d += got;
        off += (size_t)got;
        n -= (size_t)got;
    }
    return 0;
}

void st_close(SafeTensors *st) {
    if (!st) return;
    if (st->map) munmap((void *)st->map, st->size);
    if (st->fd >= 0) close(st->fd);
    if (st->t)
        for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    free(st->by_name);
    free(st->path);
    free(st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const StTensor *t = st->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int st_count(const SafeTensors *st) { return st->n; }

const StTensor *st_at(const SafeTensors *st, int i) { return i >= 0 && i < st->n ? &st->t[i] : NULL; }

const char *st_path(const SafeTensors *st) { return st->path; }

size_t st_file_size(const SafeTensors *st) { return st->size; }

/* ---- conversion -------------------------------------------------------- */

void st_to_f32(StDtype dt, const void *src, float *dst, size_t n) {
    const unsigned char *p = src; /* may be unaligned: read bytes (little-endian file) */
    switch (dt) {
    case ST_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case ST_F16:
        if (n >= (1u << 18)) {
            /* Big tensors: a 65536-entry table (built per call, so no shared
             * state) turns the branchy conversion into one load per value. */
            float *table = malloc(sizeof(float) << 16);
            if (table) {
                for (uint32_t h = 0; h < (1u << 16); h++) table[h] = f16_to_f32((uint16_t)h);
                for (size_t i = 0; i < n; i++) dst[i] = table[p[2 * i] | p[2 * i + 1] << 8];
                free(table);
                break;
            }
        }
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, sizeof bits);
        }
        break;
    case ST_OTHER:
        break; /* callers check the dtype first */
    }
}
