/* parallel.h — one process-wide team of compute threads for the forward
 * pass and the recorder.
 *
 *   parallel_start(0, err);          // once, early: one thread per usable CPU
 *   parallel_run(task, &ctx);        // task(&ctx, tid, n) on every thread
 *   parallel_stop();                 // at exit (optional)
 *
 * Why our own team instead of OpenBLAS's threads: a forward pass is a chain
 * of short phases (layer norm, a matmul, attention, GELU, the recorder), and
 * with OpenBLAS threading only the matmuls use the second core while its
 * thread spins through every single-threaded phase. The team runs every
 * phase on all cores; OpenBLAS is held to one thread (from program start)
 * and each team thread calls it on whole blocks (see kernels.c). Between phases the workers spin
 * briefly, then sleep, so a caller busy elsewhere (SQLite) gets its core.
 *
 * The caller of parallel_run is tid 0 and takes its share; it returns when
 * every thread has finished. parallel_run is not re-entrant: a task must not
 * call it. Before parallel_start (or with one thread) the task runs inline
 * with n = 1, so library code and tests work without a team. */
#ifndef PROBE_PARALLEL_H
#define PROBE_PARALLEL_H

typedef void (*ParallelTask)(void *ctx, int tid, int nthreads);

/* Starts the team: nthreads > 0 exactly, 0 = $PROBE_THREADS when set, else
 * the CPUs this process may run on. Idempotent after the first success.
 * (OpenBLAS is single-threaded from program start: parallel.c.) */
int parallel_start(int nthreads, char *err);
int parallel_threads(void); /* team size; 1 before parallel_start */
/* OpenBLAS's kernel set in use ("SkylakeX", "Haswell", ...): results are the
 * same bits on the same kernels, which OPENBLAS_CORETYPE can select. */
const char *parallel_blas_core(void);
void parallel_run(ParallelTask task, void *ctx);
void parallel_stop(void);

/* The slice [*lo, *hi) of 0..n that thread tid of nt takes, in whole
 * multiples of `align` (the last slice takes the remainder). */
static inline void parallel_slice(int n, int align, int tid, int nt, int *lo, int *hi) {
    int units = (n + align - 1) / align;
    int u0 = (int)((long long)units * tid / nt), u1 = (int)((long long)units * (tid + 1) / nt);
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}

#endif
