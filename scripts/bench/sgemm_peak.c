/* sgemm_peak.c — OpenBLAS single-precision GEMM throughput at the shapes a
 * GPT-2-small forward pass uses on a window of 1024 tokens.
 *
 *   cc -O2 -o bench-cache/sgemm_peak scripts/bench/sgemm_peak.c $(pkg-config --cflags --libs openblas)
 *   bench-cache/sgemm_peak [REPS]        # REPS timed calls per shape, best kept
 *
 * Prints one line per shape, "sgemm NAME M K N GFLOPS SECONDS", where the
 * product is [M x K] x [K x N] row-major (C = A B, no transposes, as
 * cblas_sgemm is called for y = x W with HF's [in x out] weights) and
 * GFLOPS = 2 M K N / best time. OpenBLAS runs with its default thread count
 * (all cores unless OPENBLAS_NUM_THREADS says otherwise), printed first.
 * Part of `make bench` (scripts/bench/bench.sh); not a test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *random_matrix(size_t n) {
    float *a = malloc(n * sizeof *a);
    if (!a) return NULL;
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        a[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return a;
}

int main(int argc, char **argv) {
    static const struct { const char *name; int M, K, N; } shapes[] = {
        {"c_attn", 1024, 768, 2304},
        {"attn.c_proj", 1024, 768, 768},
        {"c_fc", 1024, 768, 3072},
        {"mlp.c_proj", 1024, 3072, 768},
    };
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1) {
        fprintf(stderr, "usage: sgemm_peak [REPS >= 1]\n");
        return 2;
    }
    printf("threads %d\n", openblas_get_num_threads());
    printf("config %s\n", openblas_get_config());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s].M, K = shapes[s].K, N = shapes[s].N;
        float *A = random_matrix((size_t)M * K), *B = random_matrix((size_t)K * N);
        float *C = malloc((size_t)M * N * sizeof *C);
        if (!A || !B || !C) {
            fprintf(stderr, "sgemm_peak: out of memory\n");
            return 1;
        }
        double best = 1e30;
        for (int r = -1; r < reps; r++) { /* r = -1: warm-up, not timed */
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
                        0.0f, C, N);
            double dt = now() - t0;
            if (r >= 0 && dt < best) best = dt;
        }
        printf("sgemm %s %d %d %d %.2f %.6f\n", shapes[s].name, M, K, N,
               2.0 * M * K * N / best * 1e-9, best);
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
