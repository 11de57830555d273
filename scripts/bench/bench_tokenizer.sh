#!/bin/sh
# bench_tokenizer.sh — tokenizer throughput (MB/s) on English text.
#
#   sh scripts/bench/bench_tokenizer.sh [TEXTFILE] [MODEL_DIR]
#
# Builds a small driver from src/text/tokenizer.c (not a test), then encodes the
# text (default: the English fixture's input, ~1 MB) repeated to ~8 MB: a
# cold pass with a fresh tokenizer (BPE cache empty) and a warm pass.
set -e
cd "$(dirname "$0")/../.."
TEXT=${1:-}
MODEL=${2:-models/gpt2-tokenizer}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$TEXT" ]; then
    # the input bytes of tests/fixtures/tokenizer/english.tok (see its format)
    /usr/bin/python3 -c 'import struct,sys; d=open("tests/fixtures/tokenizer/english.tok","rb").read(); n=struct.unpack("<I",d[8:12])[0]; sys.stdout.buffer.write(d[12:12+n])' > "$TMP/in.txt"
    TEXT=$TMP/in.txt
fi
cat > "$TMP/bench.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer.h"
#include "util.h"
int main(int argc, char **argv) {
    char err[PROBE_ERR_LEN], v[4096], m[4096], *text;
    size_t len;
    snprintf(v, sizeof v, "%s/vocab.json", argv[2]);
    snprintf(m, sizeof m, "%s/merges.txt", argv[2]);
    if (file_read_all(argv[1], &text, &len, err)) { print_error(err); return 1; }
    int reps = (int)(8e6 / (double)(len ? len : 1)) + 1;
    char *big = malloc(len * reps);
    for (int i = 0; i < reps; i++) memcpy(big + i * len, text, len);
    size_t blen = len * reps;
    double t0 = now_sec();
    Tokenizer *tok = tok_load(v, m, err);
    if (!tok) { print_error(err); return 1; }
    double t1 = now_sec();
    TokBuf b = {0};
    tok_encode(tok, text, len, &b); /* cold: first sight of every word */
    double t2 = now_sec();
    b.n = 0;
    tok_encode(tok, big, blen, &b);
    double t3 = now_sec();
    printf("load %.1f ms; cold %.2f MB in %.3f s = %.1f MB/s; warm %.2f MB in %.3f s = %.1f MB/s (%.2f bytes/token)\n",
           (t1 - t0) * 1e3, len / 1e6, t2 - t1, len / 1e6 / (t2 - t1), blen / 1e6, t3 - t2,
           blen / 1e6 / (t3 - t2), (double)blen / (double)b.n);
    tok_buf_free(&b);
    tok_free(tok);
    free(big);
    free(text);
    return 0;
}
C
cc -O2 -std=c11 -D_GNU_SOURCE -march=native -Isrc/text -Isrc/util $(pkg-config --cflags libcjson) -o "$TMP/bench" \
    "$TMP/bench.c" src/text/tokenizer.c src/text/unicode_tables.c src/util/util.c src/util/utf8.c $(pkg-config --libs libcjson) -lpthread
"$TMP/bench" "$TEXT" "$MODEL"
