/* fuzz_util.h — shared by the libFuzzer harnesses tests/fuzz/fuzz_*.c.
 *
 * probe's parsers read files by path, so a harness writes the fuzzer's bytes
 * to a file in a private scratch directory (made once per process with
 * mkdtemp under $TMPDIR, else /dev/shm, else /tmp; removed at exit) and
 * passes its path. The file name is the caller's, so the extension can
 * matter (corpus: ".jsonl").
 * Everything is single-threaded; no harness calls exit. */
#ifndef PROBE_FUZZ_UTIL_H
#define PROBE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[4096];
static char fuzz_files[8][4200];
static int fuzz_n_files;

static void fuzz_cleanup(void) {
    for (int i = 0; i < fuzz_n_files; i++) unlink(fuzz_files[i]);
    if (fuzz_dir[0]) rmdir(fuzz_dir);
}

/* Writes data[0..size) to <scratch dir>/name and returns the path (a static
 * buffer per name slot; at most 8 distinct names per process). Aborts if the
 * scratch file cannot be written: that is the harness's failure, not probe's. */
__attribute__((unused)) static const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
    if (!fuzz_dir[0]) {
        /* a file system in memory when there is one: with /tmp on disk the
         * writes, not probe's parsers, bound the rate (3.7k vs 33k runs/s
         * for config.json on the project's machine) */
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/probe-fuzz-XXXXXX", t);
        if (!mkdtemp(fuzz_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    int slot = -1;
    for (int i = 0; i < fuzz_n_files; i++) {
        const char *base = strrchr(fuzz_files[i], '/') + 1;
        if (strcmp(base, name) == 0) slot = i;
    }
    if (slot < 0) {
        if (fuzz_n_files == 8) abort();
        slot = fuzz_n_files++;
        snprintf(fuzz_files[slot], sizeof fuzz_files[slot], "%s/%s", fuzz_dir, name);
    }
    FILE *f = fopen(fuzz_files[slot], "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the scratch file");
        abort();
    }
    return fuzz_files[slot];
}

/* With FUZZ_VERBOSE set in the environment, prints what a parser said about
 * an input (its error, or "ok"): to read a reproducer's outcome. */
__attribute__((unused)) static void fuzz_note(const char *parser, int ok, const char *err) {
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s: %s\n", parser, ok ? "ok" : err);
}

#endif
