/* bench_forward.c — the bare forward pass of `probe record`, without the
 * database: the same corpus reading, tokenization and windows as record
 * (src/text/corpus.c), then model_forward on every window with all layers'
 * FFN post-activations handed to an observer that does nothing, and no
 * logits. This is the "forward" figure of `make bench`.
 *
 *   bench_forward MODEL_DIR CORPUS CTX [WINDOWS_OUT]
 *
 * Built by scripts/bench/bench.sh against probe's own objects (the build/ objects except
 * main.o), so it runs exactly the engine that ./probe runs. Documents are
 * paragraphs (record's default), each gets <|endoftext|> in front, and is cut
 * with windows_plan(n, CTX). One window (the first) is run once untimed as a
 * warm-up; then every window is timed. Prints
 *   windows W tokens N owned O seconds S tokens_per_s R
 * where N counts the tokens of all windows (the forward's work), O the tokens
 * the windows own, which is what record records (N less one <|endoftext|> per
 * document when no document is longer than CTX), and R = O / S. WINDOWS_OUT, when given, receives the windows
 * as int32 little-endian records (len, owned, ids[len]) for the PyTorch peer.
 * With BENCH_LOGITS=1 in the environment, every window also computes its
 * logits (what each forward pass of `probe ablate` needs): the reference of
 * the bench's ablate row. Part of `make bench`; not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "model.h"
#include "parallel.h"
#include "tokenizer.h"
#include "util.h"

typedef struct {
    int32_t *ids; /* [len], points into the owning document's tokens */
    int len, owned;
} BenchWindow;

static void observe_nothing(void *user, int layer, const float *act, int T, int F) {
    (void)user, (void)layer, (void)act, (void)T, (void)F;
}

int main(int argc, char **argv) {
    char err[PROBE_ERR_LEN];
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: bench_forward MODEL_DIR CORPUS CTX [WINDOWS_OUT]\n");
        return 2;
    }
    int ctx = atoi(argv[3]);
    if (parallel_start(0, err)) { /* as probe's main() does, before the model */
        fprintf(stderr, "bench_forward: %s\n", err);
        return 2;
    }
    Model *m = model_load(argv[1], err);
    if (!m) {
        fprintf(stderr, "bench_forward: %s\n", err);
        return 1;
    }
    if (ctx < 1 || ctx > m->cfg.n_positions) {
        fprintf(stderr, "bench_forward: ctx %d out of range 1..%d\n", ctx, m->cfg.n_positions);
        return 2;
    }
    Corpus *c = corpus_open(argv[2], SPLIT_PARAGRAPH, err);
    if (!c) {
        fprintf(stderr, "bench_forward: %s\n", err);
        return 1;
    }

    /* Tokenize every document (BOS first) and plan its windows. */
    int nd = corpus_count(c), nw = 0, capw = 0;
    TokBuf *bufs = calloc(nd, sizeof *bufs);
    BenchWindow *w = NULL;
    for (int d = 0; d < nd; d++) {
        const Doc *doc = corpus_doc(c, d);
        TokBuf *b = &bufs[d];
        b->cap = 1024;
        b->ids = malloc(b->cap * sizeof *b->ids);
        b->start = malloc(b->cap * sizeof *b->start);
        if (!b->ids || !b->start) return 1;
        b->ids[0] = TOK_EOT;
        b->start[0] = 0;
        b->n = 1;
        if (tok_encode(m->tok, doc->text, doc->len, b) != 0) {
            fprintf(stderr, "bench_forward: out of memory\n");
            return 1;
        }
        int k = windows_count((int)b->n, ctx);
        Window *plan = malloc((size_t)k * sizeof *plan);
        windows_plan((int)b->n, ctx, plan);
        for (int i = 0; i < k; i++) {
            if (nw == capw) {
                capw = capw ? 2 * capw : 64;
                w = realloc(w, (size_t)capw * sizeof *w);
            }
            w[nw].ids = b->ids + plan[i].start;
            w[nw].len = plan[i].len;
            /* <|endoftext|> is context only: record does not record it */
            w[nw].owned = plan[i].start + plan[i].len - plan[i].first_new - (plan[i].first_new == 0);
            nw++;
        }
        free(plan);
    }

    if (argc == 5) {
        FILE *f = fopen(argv[4], "wb");
        if (!f) {
            fprintf(stderr, "bench_forward: cannot create '%s'\n", argv[4]);
            return 1;
        }
        for (int i = 0; i < nw; i++) {
            int32_t hdr[2] = {w[i].len, w[i].owned};
            fwrite(hdr, sizeof hdr, 1, f);
            fwrite(w[i].ids, sizeof(int32_t), (size_t)w[i].len, f);
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "bench_forward: cannot write '%s'\n", argv[4]);
            return 1;
        }
    }

    uint8_t *capture = malloc((size_t)m->cfg.n_layer);
    memset(capture, 1, (size_t)m->cfg.n_layer);
    ForwardHooks hooks = {.capture = capture, .observe = observe_nothing};
    const char *want_logits = getenv("BENCH_LOGITS");
    float *logits = NULL;
    if (want_logits && !strcmp(want_logits, "1")) {
        logits = malloc(sizeof(float) * (size_t)m->cfg.n_positions * (size_t)m->cfg.vocab_size);
        if (!logits) {
            fprintf(stderr, "bench_forward: out of memory for logits\n");
            return 1;
        }
    }

    if (model_forward(m, w[0].ids, w[0].len, &hooks, logits, err) != 0) { /* warm-up */
        fprintf(stderr, "bench_forward: %s\n", err);
        return 1;
    }
    long tokens = 0, owned = 0;
    double t0 = now_sec();
    for (int i = 0; i < nw; i++) {
        if (model_forward(m, w[i].ids, w[i].len, &hooks, logits, err) != 0) {
            fprintf(stderr, "bench_forward: %s\n", err);
            return 1;
        }
        tokens += w[i].len;
        owned += w[i].owned;
    }
    double secs = now_sec() - t0;
    printf("windows %d tokens %ld owned %ld seconds %.4f tokens_per_s %.2f\n", nw, tokens, owned,
           secs, owned / secs);

    for (int d = 0; d < nd; d++) tok_buf_free(&bufs[d]);
    free(bufs);
    free(w);
    free(capture);
    free(logits);
    corpus_free(c);
    model_free(m);
    return 0;
}
