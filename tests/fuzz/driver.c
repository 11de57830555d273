/* driver.c — runs a libFuzzer harness without libFuzzer (plain cc), for the
 * regression run of `make test`: calls LLVMFuzzerTestOneInput once on every
 * regular file of each directory (or file) given as an argument, in name
 * order. Exit 0 when every input ran (a harness reports a failure by
 * crashing or aborting), 1 when an argument cannot be read. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) buf = realloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    /* an exact-size copy, so ASan sees a read past the input */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv) {
    int ran = 0, bad = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            perror(argv[a]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[a]) == 0) ran++; else bad = 1;
            continue;
        }
        struct dirent **ents;
        int n = scandir(argv[a], &ents, NULL, alphasort);
        if (n < 0) {
            perror(argv[a]);
            bad = 1;
            continue;
        }
        for (int i = 0; i < n; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", argv[a], ents[i]->d_name);
            if (ents[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(path) == 0) ran++; else bad = 1;
            }
            free(ents[i]);
        }
        free(ents);
    }
    printf("%s: %d inputs ran\n", argv[0], ran);
    return bad;
}
