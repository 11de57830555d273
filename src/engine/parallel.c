/* parallel.c — see parallel.h.
 *
 * Dispatch: the caller publishes (task, ctx), sets `pending` to the number
 * of workers and bumps the generation counter; each worker that sees a new
 * generation runs its share and decrements `pending`; the caller runs share
 * 0 and spins until `pending` is 0. A worker spins on the generation for a
 * while (phases of a forward pass follow each other within microseconds),
 * then sleeps on a condition variable; the caller signals only when someone
 * sleeps. The generation is re-checked under the mutex before sleeping, and
 * the caller bumps it before taking the mutex, so no wake-up is lost. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT (builds that override CFLAGS) */
#endif
#include "parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Waiting: poll (phases of a forward pass follow each other within
 * microseconds), then yield the core (a team thread that was preempted, on a
 * loaded machine or with more threads than cores, needs it to finish its
 * share), then, for a worker, sleep. Pure spinning made 4 threads on 2
 * cores 20x slower than 2. */
#define SPIN_ROUNDS (1 << 11)  /* about 50 us of polling */
#define YIELD_ROUNDS (1 << 6)  /* then sched_yield before a worker sleeps */
#define MAX_THREADS 256

static struct {
    int n; /* team size, 1 = no workers */
    pthread_t th[MAX_THREADS];
    int started;
    ParallelTask task;
    void *ctx;
    atomic_uint gen;
    unsigned gen0; /* gen when the workers were created: what they have "seen" */
    atomic_int pending;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers; /* under mu */
} team = {.n = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg) {
    int tid = (int)(long)arg;
    /* not the current gen: a dispatch (or stop) may already have happened
     * between pthread_create and this line */
    unsigned seen = team.gen0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&team.gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                CPU_RELAX();
                continue;
            }
            if (spins < SPIN_ROUNDS + YIELD_ROUNDS) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&team.mu);
            team.sleepers++;
            while (atomic_load(&team.gen) == seen) pthread_cond_wait(&team.cv, &team.mu);
            team.sleepers--;
            pthread_mutex_unlock(&team.mu);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&team.stop)) return NULL;
        team.task(team.ctx, tid, team.n);
        atomic_fetch_sub_explicit(&team.pending, 1, memory_order_acq_rel);
    }
}

/* OpenBLAS is held to one thread from the moment the program starts, not
 * only from parallel_start: a matmul split by OpenBLAS's own threads is cut
 * into calls of other shapes, and other shapes give other bits (kernels.c).
 * Library constructors (OpenBLAS's own init) run before this one. */
__attribute__((constructor)) static void blas_single_threaded(void) { openblas_set_num_threads(1); }

const char *parallel_blas_core(void) {
    const char *c = openblas_get_corename();
    return c && c[0] ? c : "unknown";
}

static int usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    return 1;
}

int parallel_start(int nthreads, char *err) {
    if (team.started) return 0;
    int n = nthreads;
    if (n <= 0) {
        long v;
        if (env_long("PROBE_THREADS", 1, MAX_THREADS, 0, &v, err)) return -1;
        n = v ? (int)v : usable_cpus();
    }
    if (n > MAX_THREADS) n = MAX_THREADS;
    team.n = 1;
    team.gen0 = atomic_load(&team.gen);
    for (int i = 1; i < n; i++) {
        if (pthread_create(&team.th[i], NULL, worker_main, (void *)(long)i) != 0) {
            parallel_stop();
            return err_set(err, "cannot start compute thread %d of %d", i, n);
        }
        team.n = i + 1; /* parallel_stop joins the ones started so far */
    }
    team.started = 1;
    return 0;
}

int parallel_threads(void) { return team.n; }

void parallel_run(ParallelTask task, void *ctx) {
    if (team.n <= 1) {
        task(ctx, 0, 1);
        return;
    }
    team.task = task;
    team.ctx = ctx;
    atomic_store_explicit(&team.pending, team.n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&team.gen, 1, memory_order_acq_rel);
    pthread_mutex_lock(&team.mu);
    if (team.sleepers) pthread_cond_broadcast(&team.cv);
    pthread_mutex_unlock(&team.mu);
    task(ctx, 0, team.n);
    for (int spins = 0; atomic_load_explicit(&team.pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ROUNDS)
            CPU_RELAX();
        else
            sched_yield(); /* a worker may be waiting for this core */
    }
}

void parallel_stop(void) {
    int n = team.n;
    if (n <= 1) {
        team.started = 0;
        return;
    }
    atomic_store(&team.stop, 1);
    atomic_fetch_add(&team.gen, 1);
    pthread_mutex_lock(&team.mu);
    pthread_cond_broadcast(&team.cv);
    pthread_mutex_unlock(&team.mu);
    for (int i = 1; i < n; i++) pthread_join(team.th[i], NULL);
    atomic_store(&team.stop, 0);
    team.n = 1;
    team.started = 0;
}
