/* concept_score.c — see concept_score.h. */
#include "concept_score.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act_hist.h"
#include "corpus.h"
#include "layer_stats.h"
#include "run_docs.h"
#include "tokenizer.h"
#include "util.h"

enum { B = ACT_HIST_BINS };

double concept_auroc_from_hist(const uint32_t *all, const uint32_t *pos, const double *fsum, int64_t n_pos,
                               int64_t n_all, double *error, int *mismatch) {
    int64_t n_neg = n_all - n_pos;
    *error = NAN;
    if (n_pos <= 0 || n_neg <= 0) return NAN;
    double s = 0, e = 0;
    int64_t below_neg = 0; /* negatives in the bins below b */
    for (int b = 0; b < B; b++) {
        int64_t neg = (int64_t)all[b] - (int64_t)pos[b];
        if (neg < 0) {
            neg = 0;
            *mismatch = 1;
        }
        if (pos[b]) {
            /* the estimate: the bin's negatives spread evenly over it */
            s += (double)pos[b] * (double)below_neg + fsum[b] * (double)neg;
            /* The bound. Whatever the negatives' places in the bin, the share
             * of them below a positive is G(x) for one non-decreasing G, so
             * the pairs won are sum_p G(x_p) * neg against the estimate's
             * sum_p f_p * neg. Over all such G the difference is extreme at
             * a step (k of the bin's positives above every negative), i.e.
             * k - fsum for k = 0..pos: at most max(fsum, pos - fsum) * neg.
             * One value in the exact-zero bin: its ties count 1/2 exactly. */
            double over = fsum[b] > (double)pos[b] - fsum[b] ? fsum[b] : (double)pos[b] - fsum[b];
            if (b != ACT_HIST_ZERO_BIN) e += over * (double)neg;
        }
        below_neg += neg;
    }
    double pairs = (double)n_pos * (double)n_neg;
    *error = e / pairs;
    return s / pairs;
}

typedef struct {
    int F, n_sc;
    const int *li_of; /* [n_layer] scored index of a model layer, -1 */
    int has_hist;
    const double *mean; /* [n_sc x F] recorded means */
    double *sum, *sumsq; /* [n_sc x F] over the positives, of x - mean */
    uint32_t *pcount;    /* [n_sc x F x B] positives per bin */
    double *fsum;        /* [n_sc x F x B] the positives' places f in their bins, summed */
    const int *pos;      /* positions (in the window) of the owned positives */
    int n_pos;
    /* exact mode: every owned token of every window, for a few neurons */
    int exact, n_exact;
    const int *ex_layer, *ex_neuron; /* [n_exact] */
    float *ex_val;                   /* [n_exact x ex_cap] every token's activation, in run order */
    int64_t ex_base, ex_cap;         /* tokens before the current window */
    const uint8_t *ex_flag;          /* [n_pos] of the current window: concept token or not */
    uint8_t *ex_flags;               /* [ex_cap] every token's flag, in run order */
    /* keeping (scoring mode): every owned token of a replayed window */
    ConceptKeep *keep;               /* NULL, or keep->val to fill */
    const ConceptKeep *kept;         /* exact mode: NULL, or the scoring pass's kept rows */
    int own0, n_own;                 /* the window's owned tokens: positions own0..own0+n_own */
    int64_t own_base;                /* run-order index of the first of them */
} Replay;

void concept_keep_free(ConceptKeep *k) {
    if (!k) return;
    free(k->val);
    free(k->have);
    memset(k, 0, sizeof *k);
}

/* The forward pass's observer: adds the owned positives of the window. */
static void replay_observe(void *user, int layer, const float *act, int T, int F) {
    Replay *r = user;
    (void)T;
    if (r->exact) { /* r->pos holds every owned position */
        for (int i = 0; i < r->n_exact; i++) {
            if (r->ex_layer[i] != layer) continue;
            float *o = r->ex_val + (size_t)i * r->ex_cap + r->ex_base;
            for (int p = 0; p < r->n_pos && r->ex_base + p < r->ex_cap; p++)
                o[p] = act[(size_t)r->pos[p] * F + r->ex_neuron[i]];
        }
        return;
    }
    int li = r->li_of[layer];
    if (li < 0) return;
    if (r->keep && layer == r->keep->layer)
        for (int p = 0; p < r->n_own; p++) {
            int64_t k = r->own_base + p;
            if (k >= r->keep->n) break;
            memcpy(r->keep->val + (size_t)k * F, act + (size_t)(r->own0 + p) * F, sizeof(float) * (size_t)F);
            r->keep->have[k] = 1;
        }
    const double *mean = r->mean + (size_t)li * F;
    double *sum = r->sum + (size_t)li * F, *sumsq = r->sumsq + (size_t)li * F;
    for (int p = 0; p < r->n_pos; p++) {
        const float *x = act + (size_t)r->pos[p] * F;
        for (int j = 0; j < F; j++) {
            double d = (double)x[j] - mean[j];
            sum[j] += d;
            sumsq[j] += d * d;
        }
        if (!r->has_hist) continue;
        size_t base = (size_t)li * F * B;
        for (int j = 0; j < F; j++) {
            double f;
            int b = act_hist_locate(x[j], &f);
            size_t k = base + (size_t)j * B + b;
            r->pcount[k]++;
            r->fsum[k] += f;
        }
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int64_t *v;
    size_t n, cap;
} RowList;

static int rows_push(RowList *l, int64_t x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *p = realloc(l->v, sizeof *p * cap);
        if (!p) return -1;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

/* Exact mode: whether the scoring pass kept every owned token of the
 * current window (ex_base..ex_base+n_pos) for every wanted neuron's layer;
 * then their values are copied from it and the window is not run again.
 * The kept rows came from the same window run whole, so they are the bits a
 * replay would give. */
static int kept_window(Replay *r, const ConceptKeep *k) {
    if (!k || !k->val || r->ex_base + r->n_pos > k->n || r->ex_base + r->n_pos > r->ex_cap) return 0;
    for (int i = 0; i < r->n_exact; i++)
        if (r->ex_layer[i] != k->layer) return 0;
    for (int p = 0; p < r->n_pos; p++)
        if (!k->have[r->ex_base + p]) return 0;
    for (int i = 0; i < r->n_exact; i++) {
        float *o = r->ex_val + (size_t)i * r->ex_cap + r->ex_base;
        for (int p = 0; p < r->n_pos; p++) o[p] = k->val[(size_t)(r->ex_base + p) * k->F + r->ex_neuron[i]];
    }
    return 1;
}

/* Reads the documents, finds the positives, replays the windows that own
 * one. */
static int replay_run(Store *s, int64_t run, Model *m, const Concept *c, const ConceptRunInfo *info, Replay *rp,
                      const uint8_t *capture, RowList *positives, ConceptTotals *t, ConceptProgress progress,
                      void *user, char *err) {
    RunDocs *docs = run_docs_open(s, run, RUN_DOCS_IDS, err);
    if (!docs) return -1;
    int rc = -1, got, n_docs = 0, bos = info->bos, ctx = info->ctx;
    int32_t *seq = NULL;
    int *pos_flag = NULL, *pos_list = NULL;
    uint8_t *ex_flag = NULL;
    int64_t tok_base = 0; /* run-order index of the window's first owned token */
    Window *win = NULL;
    size_t cap = 0;
    int win_cap = 0;
    RunDoc d;
    /* nothing above the highest scored layer is needed */
    int top = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        if (capture[l]) top = l + 1;
    ForwardHooks hooks = {.capture = capture, .observe = replay_observe, .user = rp, .stop_after = top};
    while ((got = run_docs_next(docs, &d, err)) == 1) {
        int ns = d.n + bos;
        if ((size_t)ns > cap) {
            cap = (size_t)ns * 2;
            int32_t *q = realloc(seq, cap * sizeof *q);
            int *pf = realloc(pos_flag, cap * sizeof *pf);
            int *pl = realloc(pos_list, cap * sizeof *pl);
            uint8_t *ef = realloc(ex_flag, cap);
            if (q) seq = q;
            if (pf) pos_flag = pf;
            if (pl) pos_list = pl;
            if (ef) ex_flag = ef;
            if (!q || !pf || !pl || !ef) {
                err_set(err, "out of memory for document %d", d.doc_index);
                goto done;
            }
        }
        /* which tokens end a concept word (spans index the document's bytes) */
        ConceptCursor k;
        concept_cursor_init(&k, d.bytes, d.n_bytes);
        int any = 0;
        for (int i = 0; i < d.n; i++) {
            int in = d.byte_end[i] >= 0 && (size_t)d.byte_end[i] <= d.n_bytes &&
                     concept_cursor_match(c, &k, (size_t)d.byte_end[i]);
            pos_flag[i + bos] = in;
            if (in) {
                any = 1;
                if (rows_push(positives, d.rows[i])) {
                    err_set(err, "out of memory");
                    goto done;
                }
            }
        }
        t->tokens += d.n;
        int nw = windows_count(ns, ctx);
        if (nw > win_cap) {
            Window *w = realloc(win, sizeof *w * (size_t)nw * 2);
            if (!w) {
                err_set(err, "out of memory for document %d", d.doc_index);
                goto done;
            }
            win = w;
            win_cap = nw * 2;
        }
        windows_plan(ns, ctx, win);
        if (bos) {
            seq[0] = TOK_EOT;
            pos_flag[0] = 0;
        }
        memcpy(seq + bos, d.ids, sizeof(int32_t) * (size_t)d.n);
        for (int w = 0; w < nw; w++) {
            /* the tokens a window owns, as `probe record` assigns them */
            int own_start, end;
            window_owned(&win[w], bos, &own_start, &end);
            if (end <= own_start) continue;
            t->windows++;
            int64_t base = tok_base;
            tok_base += end - own_start;
            hooks.rows_needed = 0;
            if (rp->exact) { /* every window, every owned token, with its flag */
                rp->n_pos = 0;
                for (int p = own_start; p < end; p++) {
                    ex_flag[rp->n_pos] = (uint8_t)pos_flag[p];
                    t->concept_tokens += pos_flag[p];
                    pos_list[rp->n_pos++] = p - win[w].start;
                }
                rp->pos = pos_list;
                rp->ex_flag = ex_flag;
                int64_t room = rp->ex_cap - rp->ex_base, nf = rp->n_pos < room ? rp->n_pos : room;
                if (nf > 0) memcpy(rp->ex_flags + rp->ex_base, ex_flag, (size_t)nf);
                if (kept_window(rp, rp->kept)) { /* the scoring pass ran it: its values */
                    rp->ex_base += rp->n_pos;
                    continue;
                }
                t->windows_replayed++;
                if (model_forward(m, seq + win[w].start, win[w].len, &hooks, NULL, err)) goto done;
                rp->ex_base += rp->n_pos;
                continue;
            }
            if (!any) continue;
            rp->n_pos = 0;
            for (int p = own_start; p < end; p++)
                if (pos_flag[p]) pos_list[rp->n_pos++] = p - win[w].start;
            if (rp->n_pos == 0) continue;
            rp->pos = pos_list;
            t->concept_tokens += rp->n_pos;
            t->windows_replayed++;
            /* the window's rows up to its last concept token (a causal model:
             * the rows after it change nothing before it), or all of them
             * when they are kept */
            hooks.rows_needed = pos_list[rp->n_pos - 1] + 1;
            if (rp->keep) {
                rp->own0 = own_start - win[w].start;
                rp->n_own = end - own_start;
                rp->own_base = base;
                hooks.rows_needed = 0;
            }
            if (model_forward(m, seq + win[w].start, win[w].len, &hooks, NULL, err)) goto done;
        }
        n_docs++;
        if (progress) progress(user, n_docs, info->n_docs, t->windows_replayed);
    }
    if (got < 0) goto done;
    rc = 0;
done:
    run_docs_close(docs);
    free(seq);
    free(pos_flag);
    free(pos_list);
    free(ex_flag);
    free(win);
    return rc;
}

/* Means, standard deviations and Cohen's d of one neuron from the
 * recorded mean and variance (n_all tokens) and the positives' sums of
 * x - mean. */
static void moments(ConceptScore *o, double mean, double var, int64_t n_all, int64_t n1, double sum, double sumsq) {
    int64_t n0 = n_all - n1;
    o->mean_in = mean + sum / (double)n1;
    o->mean_out = mean - sum / (double)n0;
    double ss_in = sumsq - sum * sum / (double)n1;
    double ss_out = ((double)n_all * var - sumsq) - sum * sum / (double)n0;
    if (ss_in < 0) ss_in = 0;
    if (ss_out < 0) ss_out = 0;
    o->sd_in = n1 > 1 ? sqrt(ss_in / (double)(n1 - 1)) : NAN;
    o->sd_out = n0 > 1 ? sqrt(ss_out / (double)(n0 - 1)) : NAN;
    double pooled = n_all > 2 ? sqrt((ss_in + ss_out) / (double)(n_all - 2)) : 0;
    o->cohen_d = pooled > 0 ? (o->mean_in - o->mean_out) / pooled : NAN;
}

int concept_score(Store *s, int64_t run, Model *m, const Concept *c, const int *layers, int n_layers,
                  ConceptScore *out, ConceptTotals *totals, ConceptKeep *keep, ConceptProgress progress, void *user,
                  char *err) {
    double t0 = now_sec();
    ConceptRunInfo info;
    if (concept_run_info(s, run, &info, err)) return -1;
    const int F = m->cfg.n_inner, L = m->cfg.n_layer;
    if (info.model_checksum != m->checksum) {
        char a[PROBE_CHECKSUM_HEX], b[PROBE_CHECKSUM_HEX];
        checksum_hex(m->checksum, a);
        checksum_hex(info.model_checksum, b);
        return err_set(err, "model '%s' (checksum %s) is not the model run %" PRId64 " recorded (checksum %s); "
                       "pass the run's model with --model", m->dir, a, run, b);
    }
    if (info.n_inner != F || info.n_layer != L)
        return err_set(err, "run %" PRId64 " was recorded with another model shape", run);
    if (info.ctx < 1 || info.ctx > m->cfg.n_positions)
        return err_set(err, "run %" PRId64 " has context %d, outside 1..%d", run, info.ctx, m->cfg.n_positions);
    for (int i = 0; i < n_layers; i++)
        if (layers[i] < 0 || layers[i] >= L) return err_set(err, "layer %d out of range 0..%d", layers[i], L - 1);

    int rc = -1;
    size_t nf = (size_t)n_layers * F, nfb = nf * B;
    int64_t *count = malloc(sizeof *count * nf);
    double *mean = malloc(sizeof *mean * nf), *var = malloc(sizeof *var * nf);
    double *sum = calloc(nf, sizeof *sum), *sumsq = calloc(nf, sizeof *sumsq);
    uint32_t *hist = malloc(sizeof *hist * nfb);
    int *li_of = malloc(sizeof *li_of * (size_t)L);
    uint8_t *capture = calloc((size_t)L, 1);
    int64_t *ex_rows = NULL;
    int *ex_n = NULL;
    RowList positives = {0};
    Replay rp = {0};
    if (!count || !mean || !var || !sum || !sumsq || !hist || !li_of || !capture) goto oom;
    for (int l = 0; l < L; l++) li_of[l] = -1;
    int has_hist = 1;
    for (int i = 0; i < n_layers; i++) {
        int h = 0;
        li_of[layers[i]] = i;
        capture[layers[i]] = 1;
        LayerStats st = {.count = count + (size_t)i * F, .mean = mean + (size_t)i * F, .var = var + (size_t)i * F};
        if (layer_stats_read(s, run, layers[i], F, &st, err) ||
            layer_hists_read(s, run, layers[i], F, B, hist + (size_t)i * F * B, &h, err))
            goto done;
        has_hist &= h;
    }
    rp = (Replay){.F = F, .n_sc = n_layers, .li_of = li_of, .has_hist = has_hist, .mean = mean, .sum = sum,
                  .sumsq = sumsq};
    if (has_hist) {
        rp.pcount = calloc(nfb, sizeof *rp.pcount);
        rp.fsum = calloc(nfb, sizeof *rp.fsum);
        if (!rp.pcount || !rp.fsum) goto oom;
    }
    if (keep) { /* one layer whose n x F floats fit: kept for the exact AUROC (ConceptKeep) */
        concept_keep_free(keep);
        if (n_layers == 1 && info.n_tokens > 0 &&
            (uint64_t)info.n_tokens * (uint64_t)F <= CONCEPT_KEEP_BYTES / sizeof(float)) {
            *keep = (ConceptKeep){.layer = layers[0], .F = F, .n = info.n_tokens};
            keep->val = malloc(sizeof(float) * (size_t)info.n_tokens * (size_t)F);
            keep->have = calloc((size_t)info.n_tokens, 1);
            if (!keep->val || !keep->have) concept_keep_free(keep); /* not kept: the exact pass replays */
            else rp.keep = keep;
        }
    }
    ConceptTotals t = {.has_hist = has_hist};
    if (replay_run(s, run, m, c, &info, &rp, capture, &positives, &t, progress, user, err)) goto done;
    if (t.concept_tokens == 0) {
        err_set(err, "no recorded token of run %" PRId64 " ends a word of concept '%s' (%zu words): it never occurs "
                "in the corpus", run, c->name, c->n_words);
        goto done;
    }
    if (t.concept_tokens >= t.tokens) {
        err_set(err, "every recorded token of run %" PRId64 " is in concept '%s': nothing to compare it with", run,
                c->name);
        goto done;
    }
    qsort(positives.v, positives.n, sizeof *positives.v, cmp_i64);
    int N = info.n_examples > 0 ? info.n_examples : 1;
    ex_rows = malloc(sizeof *ex_rows * (size_t)F * N);
    ex_n = malloc(sizeof *ex_n * (size_t)F);
    if (!ex_rows || !ex_n) goto oom;
    for (int i = 0; i < n_layers; i++) {
        if (concept_examples_load(s, run, layers[i], F, N, ex_rows, ex_n, err)) goto done;
        for (int j = 0; j < F; j++) {
            size_t k = (size_t)i * F + j;
            ConceptScore *o = &out[k];
            memset(o, 0, sizeof *o);
            o->layer = layers[i];
            o->neuron = j;
            if (count[k] != t.tokens) {
                err_set(err, "database '%s': run %" PRId64 " has %" PRId64 " tokens but neuron %d:%d counts %" PRId64
                        " (is the run complete?)", s->path, run, t.tokens, layers[i], j, count[k]);
                goto done;
            }
            moments(o, mean[k], var[k], count[k], t.concept_tokens, sum[k], sumsq[k]);
            o->auroc = o->auroc_error = NAN;
            if (has_hist)
                o->auroc = concept_auroc_from_hist(hist + k * B, rp.pcount + k * B, rp.fsum + k * B,
                                                   t.concept_tokens, count[k], &o->auroc_error, &t.mismatch);
            o->examples = ex_n[j];
            for (int e = 0; e < ex_n[j]; e++)
                o->examples_in += bsearch(&ex_rows[(size_t)j * N + e], positives.v, positives.n,
                                          sizeof *positives.v, cmp_i64) != NULL;
            o->precision = o->examples ? (double)o->examples_in / o->examples : NAN;
        }
    }
    t.seconds = now_sec() - t0;
    *totals = t;
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory scoring %d layers of %d neurons", n_layers, F);
done:
    free(count);
    free(mean);
    free(var);
    free(sum);
    free(sumsq);
    free(hist);
    free(li_of);
    free(capture);
    free(ex_rows);
    free(ex_n);
    free(positives.v);
    free(rp.pcount);
    free(rp.fsum);
    return rc;
}

/* ---- exact AUROC ------------------------------------------------------------ */

typedef struct {
    float v;
    uint8_t in;
} Pt;

static int pt_cmp(const void *a, const void *b) {
    float x = ((const Pt *)a)->v, y = ((const Pt *)b)->v;
    return (x > y) - (x < y);
}

/* Mann-Whitney: P(in > out) + P(equal) / 2 from every token's value. */
static double exact_auroc(Pt *p, int64_t n) {
    qsort(p, (size_t)n, sizeof *p, pt_cmp);
    double rank_sum = 0;
    int64_t n1 = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, k = 0;
        while (j < n && p[j].v == p[i].v) k += p[j++].in;
        rank_sum += (double)k * (0.5 * (double)(i + 1 + j)); /* ties share the mean rank of i+1..j */
        n1 += k;
        i = j;
    }
    int64_t n0 = n - n1;
    if (n1 == 0 || n0 == 0) return NAN;
    return (rank_sum - 0.5 * (double)n1 * (double)(n1 + 1)) / ((double)n1 * (double)n0);
}

int concept_score_exact(Store *s, int64_t run, Model *m, const Concept *c, ConceptScore *rows, int n_rows,
                        const ConceptKeep *keep, ConceptTotals *totals, ConceptProgress progress, void *user,
                        char *err) {
    double t0 = now_sec();
    ConceptRunInfo info;
    if (concept_run_info(s, run, &info, err)) return -1;
    if (info.model_checksum != m->checksum)
        return err_set(err, "model '%s' is not the model run %" PRId64 " recorded", m->dir, run);
    const int L = m->cfg.n_layer;
    int rc = -1;
    int64_t n = info.n_tokens;
    int *lay = malloc(sizeof *lay * (size_t)n_rows), *neu = malloc(sizeof *neu * (size_t)n_rows);
    uint8_t *capture = calloc((size_t)L, 1);
    float *val = malloc(sizeof *val * (size_t)n_rows * (size_t)(n > 0 ? n : 1));
    uint8_t *flags = malloc((size_t)(n > 0 ? n : 1));
    Pt *pts = malloc(sizeof *pts * (size_t)(n > 0 ? n : 1));
    RowList positives = {0};
    if (!lay || !neu || !capture || !val || !flags || !pts) {
        err_set(err, "out of memory for %d neurons x %" PRId64 " tokens", n_rows, n);
        goto done;
    }
    for (int i = 0; i < n_rows; i++) {
        lay[i] = rows[i].layer;
        neu[i] = rows[i].neuron;
        if (lay[i] < 0 || lay[i] >= L) {
            err_set(err, "layer %d out of range", lay[i]);
            goto done;
        }
        capture[lay[i]] = 1;
    }
    Replay rp = {.F = m->cfg.n_inner, .exact = 1, .n_exact = n_rows, .ex_layer = lay, .ex_neuron = neu,
                 .ex_val = val, .ex_cap = n, .ex_flags = flags,
                 .kept = keep && keep->val && keep->n == n && keep->F == m->cfg.n_inner ? keep : NULL};
    ConceptTotals t = {0};
    if (replay_run(s, run, m, c, &info, &rp, capture, &positives, &t, progress, user, err)) goto done;
    if (rp.ex_base != n) {
        err_set(err, "run %" PRId64 " has %" PRId64 " tokens but its documents hold %" PRId64, run, n, rp.ex_base);
        goto done;
    }
    for (int i = 0; i < n_rows; i++) {
        for (int64_t k = 0; k < n; k++) pts[k] = (Pt){val[(size_t)i * n + k], flags[k]};
        rows[i].auroc = exact_auroc(pts, n);
        rows[i].auroc_error = isnan(rows[i].auroc) ? NAN : 0.0;
    }
    t.seconds = now_sec() - t0;
    t.has_hist = 1;
    if (totals) *totals = t;
    rc = 0;
done:
    free(lay);
    free(neu);
    free(capture);
    free(val);
    free(flags);
    free(pts);
    free(positives.v);
    return rc;
}
