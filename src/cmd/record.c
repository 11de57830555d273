/* cmd_record.c — `probe record CORPUS`: stream a corpus through the model and
 * record FFN activations into a SQLite database.
 *
 *   probe record book.txt --db probe.db --layers 0-5 --full 5
 *   sqlite3 probe.db "SELECT * FROM neuron_top_examples WHERE layer = 5 AND neuron = 1234"
 *
 * Flow: every document is tokenized (after an <|endoftext|> unless --no-bos),
 * cut into windows (corpus.h), and each window runs through the model once;
 * the forward pass hands each recorded layer's post-activation to the
 * Recorder, which aggregates statistics and top examples in memory and
 * produces each owned token's top-k neurons. Tokens and their top-k rows are
 * inserted with reused prepared statements inside one write transaction per
 * batch (whole documents, about every BATCH_SECONDS). Each batch commit also
 * saves the Recorder's state (run_state) and the run's progress, so after a crash
 * `--resume` continues from the last committed document with exact
 * aggregates. Statistics and top examples are written when the run stops
 * (complete, or interrupted by SIGINT/SIGTERM: the current batch is rolled
 * back to the last commit and the run is marked 'interrupted').
 *
 * Test hooks (environment): PROBE_RECORD_BATCH_DOCS=N commits every N
 * documents; PROBE_RECORD_CRASH_AFTER_DOCS=N kills the process (SIGKILL) right
 * after the first commit that covers N documents. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "commands.h"
#include "corpus.h"
#include "intervention.h"
#include "model.h"
#include "progress.h"
#include "recorder.h"
#include "store.h"
#include "tokenizer.h"
#include "utf8.h"
#include "util.h"

static const char *usage_text =
    "usage: probe record CORPUS [options]\n"
    "\n"
    "Runs every document of CORPUS through the model and records, per FFN neuron,\n"
    "exact statistics (count, mean, variance, min, max, fraction > 0) and its top-N\n"
    "activating tokens; per token and layer its top-k neurons; optionally full\n"
    "activation vectors. The activation is the FFN post-activation\n"
    "(TransformerLens blocks.L.mlp.hook_post).\n"
    "\n"
    "CORPUS is a UTF-8 text file, a .jsonl file with a \"text\" field per line, or -\n"
    "(stdin). Documents longer than --ctx are cut into overlapping windows; every\n"
    "token is recorded once, with at least ctx/2 tokens of left context. The\n"
    "<|endoftext|> placed before each document is context only, not recorded.\n"
    "Documents above 16 MiB are refused.\n"
    "\n"
    "  --db FILE          database (default probe.db), created when missing\n"
    "  --model DIR        model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --split MODE       paragraph (blank-line separated, default), line, or file\n"
    "  --ctx N            context window in tokens (default and max: n_positions)\n"
    "  --layers LIST      layers to record, e.g. 0,3-5 (default all)\n"
    "  --top-k K          neurons kept per token and layer (default 16, max 256)\n"
    "  --examples N       top activating tokens kept per neuron (default 32, max 1024)\n"
    "  --full LIST        also store full fp16 vectors of these (recorded) layers\n"
    "  --no-bos           do not put <|endoftext|> before each document\n"
    "  --resume           continue an interrupted run of the same corpus, model, options\n"
    "  --quiet            no progress bar and no warnings (the summary line stays)\n"
    "  --help             this text\n"
    "\n"
    "Ctrl-C stops after rolling back to the last commit; the run is 'interrupted'\n"
    "and --resume continues it. Recording a corpus that the database already holds\n"
    "completely (same model and options) does nothing.\n";

/* ---- signals ---------------------------------------------------------- */

/* Seconds of work per transaction. A commit also rewrites the recorder's
 * state (about 16 MB for GPT-2 small): every 3 s that was 2% of a run; a
 * crash or Ctrl-C loses at most this much work, which --resume redoes. */
#define BATCH_SECONDS 10.0

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    g_stop = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once (the database stays consistent) */
}

/* ---- options ------------------------------------------------------------ */

typedef struct {
    const char *corpus, *db, *model, *layers, *full;
    SplitMode split;
    long ctx, top_k, examples;
    int bos, resume, quiet;
} Opts;

static const char *split_name(SplitMode m) {
    return m == SPLIT_LINE ? "line" : m == SPLIT_FILE ? "file" : "paragraph";
}

/* ---- the recording ------------------------------------------------------ */

typedef struct {
    Opts o;
    Store *s;
    Model *m;
    Corpus *c;
    Recorder *rec;
    int L, F, k, ctx, n_rec;
    int *rec_layer; /* [n_rec] model layer of recorded layer li */
    int *li_of;     /* [L] li, or -1 */
    uint8_t *capture, *full; /* [L] */
    char options_json[2048], layers_json[512], full_json[512];
    int64_t run_id;
    int new_run;      /* the run row is not committed yet */
    int docs_done;    /* committed */
    int64_t n_tokens; /* committed */
    int64_t next_row; /* rowid of the next token */
    double seconds0;  /* seconds spent by earlier sessions */
    double t_start;
    /* statements */
    sqlite3_stmt *ins_doc, *ins_tok, *ins_topk, *ins_full, *put_state, *upd_run;
    /* buffers */
    TokBuf tb;
    int32_t *seq;
    size_t seq_cap;
    Window *win;
    int win_cap;
    int64_t *rows;      /* [ctx] rows of the owned tokens of the window */
    uint8_t *topk_buf;  /* [n_rec x ctx x k x 6] */
    uint16_t *full_buf; /* [n_rec x ctx x F] when any --full */
    uint8_t *state_buf;
    Utf8Buf doc_text, tok_text; /* text forms (utf8.h) of a document and a token */
    int own_off, n_own;
} Rec;

static void rec_observe(void *user, int layer, const float *act, int T, int F) {
    Rec *r = user;
    (void)T;
    int li = r->li_of[layer];
    if (li < 0 || r->n_own == 0) return;
    size_t tk = (size_t)r->ctx * r->k * RECORDER_TOPK_BYTES;
    recorder_add(r->rec, li, act + (size_t)r->own_off * F, r->n_own, r->rows,
                 r->topk_buf + (size_t)li * tk,
                 r->full[layer] ? r->full_buf + (size_t)li * r->ctx * F : NULL);
}


/* Tokenizes, runs and inserts one document. */
static int record_doc(Rec *r, int di, char *err) {
    const Doc *d = corpus_doc(r->c, di);
    r->tb.n = 0;
    if (tok_encode(r->m->tok, d->text, d->len, &r->tb))
        return err_set(err, "out of memory tokenizing document %d", di);
    int n = (int)r->tb.n, bos = r->o.bos, ns = n + bos;
    if ((size_t)ns > r->seq_cap) {
        size_t cap = (size_t)ns * 2;
        int32_t *p = realloc(r->seq, cap * sizeof *p);
        if (!p) return err_set(err, "out of memory for document %d", di);
        r->seq = p;
        r->seq_cap = cap;
    }
    if (bos) r->seq[0] = TOK_EOT;
    memcpy(r->seq + bos, r->tb.ids, (size_t)n * sizeof(int32_t));
    int nw = windows_count(ns, r->ctx);
    if (nw > r->win_cap) {
        Window *w = realloc(r->win, (size_t)nw * 2 * sizeof *w);
        if (!w) return err_set(err, "out of memory for document %d", di);
        r->win = w;
        r->win_cap = nw * 2;
    }
    windows_plan(ns, r->ctx, r->win);

    /* documents.text is the text form (valid UTF-8, schema 060), text_bytes the
     * exact bytes that byte spans index; for a valid document both bind the
     * same buffer */
    size_t text_len;
    const char *text = utf8_text_in(&r->doc_text, d->text, d->len, &text_len);
    if (!text) return err_set(err, "out of memory for document %d", di);
    sqlite3_stmt *st = r->ins_doc;
    sqlite3_bind_int64(st, 1, r->run_id);
    sqlite3_bind_int(st, 2, di);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)d->offset);
    sqlite3_bind_int(st, 4, n);
    sqlite3_bind_text(st, 5, text, (int)text_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, d->text, (int)d->len, SQLITE_STATIC);
    if (store_step_done(r->s, st, err)) return -1;
    Utf8Cursor chars; /* character spans of the tokens, in token order */
    utf8_cursor_init(&chars, d->text, d->len);
    int64_t doc_id = sqlite3_last_insert_rowid(r->s->db);
    int64_t first_row = r->next_row;
    r->next_row += n;

    ForwardHooks hooks = {.capture = r->capture, .observe = rec_observe, .user = r};
    const size_t tk = (size_t)r->k * RECORDER_TOPK_BYTES;
    for (int w = 0; w < nw; w++) {
        if (g_stop) return 1;
        const Window *win = &r->win[w];
        int own_start = win->first_new > bos ? win->first_new : bos;
        int own_end = win->start + win->len;
        r->n_own = own_end - own_start;
        if (r->n_own <= 0) continue;
        r->own_off = own_start - win->start;
        for (int t = 0; t < r->n_own; t++) r->rows[t] = first_row + (own_start - bos + t);
        if (model_forward(r->m, r->seq + win->start, win->len, &hooks, NULL, err)) return -1;
        for (int t = 0; t < r->n_own; t++) {
            int ti = own_start - bos + t;
            uint32_t b0 = r->tb.start[ti];
            uint32_t b1 = ti + 1 < n ? r->tb.start[ti + 1] : (uint32_t)d->len;
            int64_t c0, c1;
            utf8_cursor_span(&chars, b0, b1, &c0, &c1);
            size_t tl;
            const char *tt = utf8_text_in(&r->tok_text, d->text + b0, b1 - b0, &tl);
            if (!tt) return err_set(err, "out of memory for document %d", di);
            st = r->ins_tok;
            sqlite3_bind_int64(st, 1, r->rows[t]);
            sqlite3_bind_int64(st, 2, r->run_id);
            sqlite3_bind_int64(st, 3, doc_id);
            sqlite3_bind_int(st, 4, ti);
            sqlite3_bind_int(st, 5, r->tb.ids[ti]);
            sqlite3_bind_text(st, 6, tt, (int)tl, SQLITE_STATIC);
            sqlite3_bind_int(st, 7, (int)b0);
            sqlite3_bind_int(st, 8, (int)b1);
            sqlite3_bind_int64(st, 9, c0);
            sqlite3_bind_int64(st, 10, c1);
            if (store_step_done(r->s, st, err)) return -1;
            for (int li = 0; li < r->n_rec; li++) {
                st = r->ins_topk;
                sqlite3_bind_int64(st, 1, r->rows[t]);
                sqlite3_bind_int(st, 2, r->rec_layer[li]);
                sqlite3_bind_blob(st, 3, r->topk_buf + ((size_t)li * r->ctx + t) * tk, (int)tk,
                                  SQLITE_STATIC);
                if (store_step_done(r->s, st, err)) return -1;
                if (!r->full[r->rec_layer[li]]) continue;
                st = r->ins_full;
                sqlite3_bind_int64(st, 1, r->rows[t]);
                sqlite3_bind_int(st, 2, r->rec_layer[li]);
                sqlite3_bind_blob(st, 3, r->full_buf + ((size_t)li * r->ctx + t) * r->F,
                                  r->F * 2, SQLITE_STATIC);
                if (store_step_done(r->s, st, err)) return -1;
            }
        }
    }
    return 0;
}

/* Creates the run row (inside the first batch's transaction). */
static int insert_run(Rec *r, char *err) {
    const ModelConfig *cfg = &r->m->cfg;
    char config[512], mck[17], cck[17];
    snprintf(config, sizeof config,
             "{\"n_layer\":%d,\"n_embd\":%d,\"n_head\":%d,\"n_inner\":%d,\"n_positions\":%d,"
             "\"vocab_size\":%d,\"layer_norm_epsilon\":%g,\"activation_function\":\"%s\"}",
             cfg->n_layer, cfg->n_embd, cfg->n_head, cfg->n_inner, cfg->n_positions,
             cfg->vocab_size, (double)cfg->layer_norm_epsilon, cfg->activation_name);
    snprintf(mck, sizeof mck, "%016" PRIx64, r->m->checksum);
    snprintf(cck, sizeof cck, "%016" PRIx64, corpus_checksum(r->c));
    sqlite3_stmt *st = store_prepare(
        r->s,
        "INSERT INTO runs (status, model_dir, model_checksum, model_config, n_layer, n_inner,"
        " corpus_path, corpus_checksum, corpus_bytes, options, layers, full_layers, ctx, top_k,"
        " n_examples, bos, n_docs, pid) VALUES ('running',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        err);
    /* paths are file names, any bytes: stored as their text form (utf8.h) */
    char *dir = utf8_text_dup(r->m->dir, strlen(r->m->dir), NULL);
    char *path = utf8_text_dup(r->o.corpus, strlen(r->o.corpus), NULL);
    if (!st || !dir || !path) {
        free(dir);
        free(path);
        sqlite3_finalize(st);
        return st ? err_set(err, "out of memory") : -1;
    }
    int i = 1;
    sqlite3_bind_text(st, i++, dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, mck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, r->L);
    sqlite3_bind_int(st, i++, r->F);
    sqlite3_bind_text(st, i++, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, cck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)corpus_bytes(r->c));
    sqlite3_bind_text(st, i++, r->options_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, r->layers_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, r->full_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, i++, r->ctx);
    sqlite3_bind_int(st, i++, r->k);
    sqlite3_bind_int(st, i++, (int)r->o.examples);
    sqlite3_bind_int(st, i++, r->o.bos);
    sqlite3_bind_int(st, i++, corpus_count(r->c));
    sqlite3_bind_int64(st, i++, (sqlite3_int64)getpid());
    int rc = store_step_done(r->s, st, err);
    sqlite3_finalize(st);
    free(dir);
    free(path);
    if (rc) return -1;
    r->run_id = sqlite3_last_insert_rowid(r->s->db);
    return 0;
}

/* Starts a batch: write transaction, next token row. */
static int batch_begin(Rec *r, char *err) {
    if (store_exec(r->s, "BEGIN IMMEDIATE", err)) return -1;
    sqlite3_stmt *st = store_prepare(r->s, "SELECT coalesce(max(id), 0) + 1 FROM tokens", err);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    r->next_row = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return store_fail(r->s, rc, err);
    return 0;
}

/* Saves aggregate state and progress into the open transaction. */
static int save_progress(Rec *r, int docs_done, int64_t n_tokens, const char *status, char *err) {
    int complete = !strcmp(status, "complete"); /* no state to keep */
    for (int li = 0; li < r->n_rec && !complete; li++) {
        recorder_state_save(r->rec, li, r->state_buf);
        sqlite3_stmt *st = r->put_state;
        sqlite3_bind_int64(st, 1, r->run_id);
        sqlite3_bind_int(st, 2, r->rec_layer[li]);
        sqlite3_bind_blob64(st, 3, r->state_buf, recorder_state_size(r->rec), SQLITE_STATIC);
        if (store_step_done(r->s, st, err)) return -1;
    }
    double secs = r->seconds0 + now_sec() - r->t_start;
    sqlite3_stmt *st = r->upd_run;
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, docs_done);
    sqlite3_bind_int64(st, 3, n_tokens);
    sqlite3_bind_double(st, 4, secs);
    if (secs > 0) sqlite3_bind_double(st, 5, (double)n_tokens / secs);
    sqlite3_bind_int64(st, 6, r->run_id);
    return store_step_done(r->s, st, err);
}

/* Writes neuron_stats and neuron_examples of the run (replacing old ones). */
static int write_results(Rec *r, char *err) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM neuron_stats WHERE run_id = %" PRId64 ";"
             "DELETE FROM neuron_examples WHERE run_id = %" PRId64,
             r->run_id, r->run_id);
    if (store_exec(r->s, sql, err)) return -1;
    sqlite3_stmt *ss = store_prepare(r->s, "INSERT INTO neuron_stats VALUES (?,?,?,?,?,?,?,?,?)", err);
    sqlite3_stmt *se = store_prepare(r->s, "INSERT INTO neuron_examples VALUES (?,?,?,?,?,?)", err);
    /* a neuron with a full list is written by one statement of N rows (about
     * twice as fast as N single-row inserts); run, layer and neuron are bound
     * once for all rows (?1, ?2, ?3), ranks are literals, and each row binds
     * only its token and value */
    const int N = (int)r->o.examples;
    const char *head = "INSERT INTO neuron_examples VALUES ";
    char *multi = malloc(strlen(head) + (size_t)N * 40 + 1);
    sqlite3_stmt *sm = NULL;
    int oom = multi == NULL;
    if (multi) {
        size_t o = (size_t)sprintf(multi, "%s", head);
        for (int e = 0; e < N; e++)
            o += (size_t)sprintf(multi + o, "%s(?1,?2,?3,%d,?%d,?%d)", e ? "," : "", e + 1, 4 + 2 * e,
                                 5 + 2 * e);
        sm = store_prepare(r->s, multi, err);
        free(multi);
    }
    Example *ex = malloc(sizeof *ex * (size_t)N);
    int rc = -1;
    if (!ss || !se || !sm || !ex) {
        if (!ex || oom) err_set(err, "out of memory writing results");
        goto done;
    }
    for (int li = 0; li < r->n_rec; li++) {
        if (recorder_count(r->rec, li) == 0) continue;
        int layer = r->rec_layer[li];
        for (int j = 0; j < r->F; j++) {
            NeuronStats ns;
            recorder_stats(r->rec, li, j, &ns);
            sqlite3_bind_int64(ss, 1, r->run_id);
            sqlite3_bind_int(ss, 2, layer);
            sqlite3_bind_int(ss, 3, j);
            sqlite3_bind_int64(ss, 4, ns.count);
            sqlite3_bind_double(ss, 5, ns.mean);
            sqlite3_bind_double(ss, 6, ns.variance);
            sqlite3_bind_double(ss, 7, ns.min);
            sqlite3_bind_double(ss, 8, ns.max);
            sqlite3_bind_double(ss, 9, ns.frac_pos);
            if (store_step_done(r->s, ss, err)) goto done;
            int n;
            recorder_examples(r->rec, li, j, ex, &n);
            if (n == N) {
                sqlite3_bind_int64(sm, 1, r->run_id);
                sqlite3_bind_int(sm, 2, layer);
                sqlite3_bind_int(sm, 3, j);
                for (int e = 0; e < n; e++) {
                    sqlite3_bind_int64(sm, 4 + 2 * e, ex[e].token_row);
                    sqlite3_bind_double(sm, 5 + 2 * e, ex[e].value);
                }
                if (store_step_done(r->s, sm, err)) goto done;
                continue;
            }
            for (int e = 0; e < n; e++) {
                sqlite3_bind_int64(se, 1, r->run_id);
                sqlite3_bind_int(se, 2, layer);
                sqlite3_bind_int(se, 3, j);
                sqlite3_bind_int(se, 4, e + 1);
                sqlite3_bind_int64(se, 5, ex[e].token_row);
                sqlite3_bind_double(se, 6, ex[e].value);
                if (store_step_done(r->s, se, err)) goto done;
            }
        }
    }
    rc = 0;
done:
    free(ex);
    sqlite3_finalize(ss);
    sqlite3_finalize(se);
    sqlite3_finalize(sm);
    return rc;
}

/* Restores the recorder from the last committed state of the run. */
static int load_state(Rec *r, char *err) {
    sqlite3_stmt *st = store_prepare(r->s, "SELECT layer, state FROM run_state WHERE run_id = ?", err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, r->run_id);
    int found = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int layer = sqlite3_column_int(st, 0);
        if (layer < 0 || layer >= r->L || r->li_of[layer] < 0) continue;
        const void *blob = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (recorder_state_load(r->rec, r->li_of[layer], blob, len, err)) {
            sqlite3_finalize(st);
            return -1;
        }
        found++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_fail(r->s, rc, err);
    if (r->docs_done > 0 && found != r->n_rec)
        return err_set(err, "database '%s': run %" PRId64 " has no saved state for every layer; cannot resume",
                       r->s->path, r->run_id);
    return 0;
}

/* Finds a run with this identity. Returns 1 and fills id/status/docs/pid
 * when found, 0 when none, -1 on error. With `other_options`, finds an
 * unfinished run of the same model and corpus whose options differ. */
static int find_run(Rec *r, int other_options, int64_t *id, char *status, int *docs, int64_t *tokens,
                    double *secs, long long *pid, char *opts_out, char *err) {
    char mck[17], cck[17];
    snprintf(mck, sizeof mck, "%016" PRIx64, r->m->checksum);
    snprintf(cck, sizeof cck, "%016" PRIx64, corpus_checksum(r->c));
    sqlite3_stmt *st = store_prepare(
        r->s,
        other_options
            ? "SELECT id, status, docs_done, n_tokens, seconds, pid, options FROM runs WHERE "
              "model_checksum = ? AND corpus_checksum = ? AND options <> ? AND status <> 'complete' "
              "ORDER BY id DESC LIMIT 1"
            : "SELECT id, status, docs_done, n_tokens, seconds, pid, options FROM runs WHERE "
              "model_checksum = ? AND corpus_checksum = ? AND options = ? "
              "ORDER BY status = 'complete' DESC, id DESC LIMIT 1",
        err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, mck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, cck, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->options_json, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        *id = sqlite3_column_int64(st, 0);
        snprintf(status, 16, "%s", (const char *)sqlite3_column_text(st, 1));
        *docs = sqlite3_column_int(st, 2);
        *tokens = sqlite3_column_int64(st, 3);
        *secs = sqlite3_column_double(st, 4);
        *pid = sqlite3_column_int64(st, 5);
        if (opts_out) snprintf(opts_out, 2048, "%s", (const char *)sqlite3_column_text(st, 6));
    } else if (rc != SQLITE_DONE) {
        store_fail(r->s, rc, err);
        found = -1;
    }
    sqlite3_finalize(st);
    return found;
}

static int pid_alive(long long pid) {
    if (pid <= 0 || pid == (long long)getpid()) return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* ---- the command -------------------------------------------------------- */

static int usage_error(const char *msg) {
    fprintf(stderr, "probe record: %s (see probe record --help)\n", msg);
    return PROBE_EXIT_USAGE;
}

static void rec_free(Rec *r) {
    sqlite3_finalize(r->ins_doc);
    sqlite3_finalize(r->ins_tok);
    sqlite3_finalize(r->ins_topk);
    sqlite3_finalize(r->ins_full);
    sqlite3_finalize(r->put_state);
    sqlite3_finalize(r->upd_run);
    store_close(r->s);
    recorder_free(r->rec);
    corpus_free(r->c);
    model_free(r->m);
    tok_buf_free(&r->tb);
    free(r->seq);
    free(r->win);
    free(r->rows);
    free(r->topk_buf);
    free(r->full_buf);
    free(r->state_buf);
    utf8_buf_free(&r->doc_text);
    utf8_buf_free(&r->tok_text);
    free(r->rec_layer);
    free(r->li_of);
    free(r->capture);
    free(r->full);
}

/* Builds "[0,1,2]" from a mask. */
static void mask_json(const uint8_t *mask, int L, char *out, size_t cap) {
    size_t o = (size_t)snprintf(out, cap, "[");
    int first = 1;
    for (int l = 0; l < L && o < cap; l++)
        if (mask[l]) {
            o += (size_t)snprintf(out + o, cap - o, "%s%d", first ? "" : ",", l);
            first = 0;
        }
    if (o < cap) snprintf(out + o, cap - o, "]");
}

int cmd_record(int argc, char **argv) {
    enum { O_DB = 1, O_MODEL, O_SPLIT, O_CTX, O_TOPK, O_EX, O_FULL, O_LAYERS, O_RESUME, O_QUIET, O_NOBOS, O_HELP };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},         {"model", required_argument, 0, O_MODEL},
        {"split", required_argument, 0, O_SPLIT},   {"ctx", required_argument, 0, O_CTX},
        {"top-k", required_argument, 0, O_TOPK},    {"examples", required_argument, 0, O_EX},
        {"full", required_argument, 0, O_FULL},     {"layers", required_argument, 0, O_LAYERS},
        {"resume", no_argument, 0, O_RESUME},       {"quiet", no_argument, 0, O_QUIET},
        {"no-bos", no_argument, 0, O_NOBOS},        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    Rec R = {0}, *r = &R;
    Opts *o = &r->o;
    *o = (Opts){.db = "probe.db", .split = SPLIT_PARAGRAPH, .ctx = 0, .top_k = 16, .examples = 32, .bos = 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_SPLIT:
            if (!strcmp(optarg, "paragraph")) o->split = SPLIT_PARAGRAPH;
            else if (!strcmp(optarg, "line")) o->split = SPLIT_LINE;
            else if (!strcmp(optarg, "file")) o->split = SPLIT_FILE;
            else return usage_error("--split must be paragraph, line or file");
            break;
        case O_CTX:
            if (parse_long(optarg, 1, 1 << 20, &o->ctx)) return usage_error("--ctx must be a positive integer");
            break;
        case O_TOPK:
            if (parse_long(optarg, 1, 256, &o->top_k)) return usage_error("--top-k must be 1..256");
            break;
        case O_EX:
            if (parse_long(optarg, 1, 1024, &o->examples)) return usage_error("--examples must be 1..1024");
            break;
        case O_FULL: o->full = optarg; break;
        case O_LAYERS: o->layers = optarg; break;
        case O_RESUME: o->resume = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_NOBOS: o->bos = 0; break;
        case O_HELP: fputs(usage_text, stdout); return PROBE_EXIT_OK;
        default: {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
            return usage_error(msg);
        }
        }
    }
    if (optind >= argc) return usage_error("missing CORPUS");
    if (optind + 1 < argc) {
        char msg[256];
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind + 1]);
        return usage_error(msg);
    }
    o->corpus = argv[optind];

    char err[PROBE_ERR_LEN];
    int rc = PROBE_EXIT_RUNTIME, usage = 0, interrupted = 0;
    Progress *prog = NULL;

    /* everything that can fail on input is checked before the database is touched */
    r->c = corpus_open(o->corpus, o->split, err);
    if (!r->c) goto fail;
    r->m = model_load(model_dir_resolve(o->model), err);
    if (!r->m) goto fail;
    const ModelConfig *cfg = &r->m->cfg;
    r->L = cfg->n_layer;
    r->F = cfg->n_inner;
    if (r->F > 65535) {
        err_set(err, "model '%s' has %d FFN neurons per layer; record supports at most 65535", r->m->dir, r->F);
        goto fail;
    }
    if (o->ctx > cfg->n_positions) {
        err_set(err, "--ctx %ld is above the model's n_positions %d", o->ctx, cfg->n_positions);
        usage = 1;
        goto fail;
    }
    r->ctx = o->ctx ? (int)o->ctx : cfg->n_positions;
    if (o->top_k > r->F) {
        err_set(err, "--top-k %ld is above the model's %d neurons per layer", o->top_k, r->F);
        usage = 1;
        goto fail;
    }
    r->k = (int)o->top_k;
    r->capture = calloc((size_t)r->L, 1);
    r->full = calloc((size_t)r->L, 1);
    r->li_of = malloc(sizeof(int) * (size_t)r->L);
    r->rec_layer = malloc(sizeof(int) * (size_t)r->L);
    if (!r->capture || !r->full || !r->li_of || !r->rec_layer) goto oom;
    if (o->layers) {
        if (parse_layer_list(o->layers, r->L, r->capture, err)) {
            usage = 1;
            goto fail;
        }
    } else {
        memset(r->capture, 1, (size_t)r->L);
    }
    if (o->full && parse_layer_list(o->full, r->L, r->full, err)) {
        usage = 1;
        goto fail;
    }
    for (int l = 0; l < r->L; l++) {
        r->li_of[l] = r->capture[l] ? r->n_rec : -1;
        if (r->capture[l]) r->rec_layer[r->n_rec++] = l;
        if (r->full[l] && !r->capture[l]) {
            err_set(err, "--full layer %d is not recorded (add it to --layers)", l);
            usage = 1;
            goto fail;
        }
    }
    mask_json(r->capture, r->L, r->layers_json, sizeof r->layers_json);
    mask_json(r->full, r->L, r->full_json, sizeof r->full_json);
    int olen = snprintf(r->options_json, sizeof r->options_json,
                        "{\"split\":\"%s\",\"ctx\":%d,\"top_k\":%d,\"examples\":%ld,\"layers\":%s,"
                        "\"full\":%s,\"bos\":%d}",
                        split_name(o->split), r->ctx, r->k, o->examples, r->layers_json, r->full_json, o->bos);
    if (olen < 0 || olen >= (int)sizeof r->options_json) {
        err_set(err, "too many layers to record at once (%d)", r->n_rec);
        goto fail;
    }
    if (!o->quiet) {
        for (int i = 0; i < corpus_count(r->c); i++) {
            const Doc *d = corpus_doc(r->c, i);
            size_t at = utf8_clean_prefix(d->text, d->len);
            if (at < d->len) {
                fprintf(stderr, "probe record: warning: '%s' is not valid UTF-8 %s(document %d, byte %zu); "
                        "such bytes are tokenized as bytes and shown as U+FFFD in text columns\n",
                        o->corpus, d->text[at] ? "" : "text: a NUL byte ", i, at);
                break;
            }
        }
    }

    r->rec = recorder_new(r->n_rec, r->F, (int)o->examples, r->k, err);
    if (!r->rec) goto fail;
    int any_full = 0;
    for (int l = 0; l < r->L; l++) any_full |= r->full[l];
    r->rows = malloc(sizeof(int64_t) * (size_t)r->ctx);
    r->topk_buf = malloc((size_t)r->n_rec * r->ctx * r->k * RECORDER_TOPK_BYTES);
    r->full_buf = any_full ? malloc(sizeof(uint16_t) * (size_t)r->n_rec * r->ctx * r->F) : NULL;
    r->state_buf = malloc(recorder_state_size(r->rec));
    if (!r->rows || !r->topk_buf || (any_full && !r->full_buf) || !r->state_buf) goto oom;

    /* the database */
    if (o->resume && access(o->db, F_OK) != 0) {
        err_set(err, "cannot resume: database '%s' does not exist", o->db);
        goto fail;
    }
    r->s = store_open(o->db, STORE_WRITE, err);
    if (!r->s) goto fail;
    int64_t id;
    char status[16], other_opts[2048];
    int docs;
    int64_t toks;
    double secs;
    long long pid;
    int found = find_run(r, 0, &id, status, &docs, &toks, &secs, &pid, NULL, err);
    if (found < 0) goto fail;
    if (found && !strcmp(status, "complete")) {
        fprintf(stderr, "probe record: '%s' already holds complete run %" PRId64
                " of '%s' with this model and options; nothing recorded\n", o->db, id, o->corpus);
        rc = PROBE_EXIT_OK;
        goto done;
    }
    if (found && pid_alive(pid) && !strcmp(status, "running")) {
        err_set(err, "database '%s': run %" PRId64 " of this corpus is being recorded by process %lld",
                o->db, id, pid);
        goto fail;
    }
    if (found && !o->resume) {
        err_set(err, "database '%s' holds unfinished run %" PRId64 " of '%s' (%d/%d documents); "
                "continue it with --resume", o->db, id, o->corpus, docs, corpus_count(r->c));
        goto fail;
    }
    if (!found && o->resume) {
        int f2 = find_run(r, 1, &id, status, &docs, &toks, &secs, &pid, other_opts, err);
        if (f2 < 0) goto fail;
        if (f2)
            err_set(err, "database '%s': unfinished run %" PRId64 " of '%s' used other options %s; "
                    "give the same options to --resume", o->db, id, o->corpus, other_opts);
        else
            err_set(err, "database '%s' holds no unfinished run of '%s' with this model to resume",
                    o->db, o->corpus);
        goto fail;
    }

    r->ins_doc = store_prepare(r->s, "INSERT INTO documents (run_id, doc_index, byte_offset, n_tokens, text, "
                                     "text_bytes) VALUES (?,?,?,?,?,?)", err);
    r->ins_tok = store_prepare(r->s, "INSERT INTO tokens (id, run_id, doc_id, pos, token_id, token, "
                                     "byte_start, byte_end, char_start, char_end) VALUES (?,?,?,?,?,?,?,?,?,?)", err);
    r->ins_topk = store_prepare(r->s, "INSERT INTO token_topk (token_row, layer, top) VALUES (?,?,?)", err);
    r->ins_full = store_prepare(r->s, "INSERT INTO token_full (token_row, layer, vec) VALUES (?,?,?)", err);
    r->put_state = store_prepare(r->s, "INSERT OR REPLACE INTO run_state (run_id, layer, state) VALUES (?,?,?)", err);
    r->upd_run = store_prepare(r->s,
        "UPDATE runs SET status = ?, docs_done = ?, n_tokens = ?, seconds = ?, tokens_per_sec = ?,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),"
        " finished_at = CASE WHEN ?1 = 'complete' THEN strftime('%Y-%m-%dT%H:%M:%SZ', 'now') END"
        " WHERE id = ?", err);
    if (!r->ins_doc || !r->ins_tok || !r->ins_topk || !r->ins_full || !r->put_state || !r->upd_run) goto fail;

    r->t_start = now_sec();
    if (batch_begin(r, err)) goto fail;
    if (found) { /* resume */
        r->run_id = id;
        r->docs_done = docs;
        r->n_tokens = toks;
        r->seconds0 = secs;
        char sql[512];
        snprintf(sql, sizeof sql,
                 "UPDATE runs SET status = 'running', pid = %lld WHERE id = %" PRId64 ";"
                 "DELETE FROM token_topk WHERE token_row IN (SELECT t.id FROM tokens t JOIN documents d"
                 " ON d.id = t.doc_id WHERE d.run_id = %" PRId64 " AND d.doc_index >= %d);"
                 "DELETE FROM token_full WHERE token_row IN (SELECT t.id FROM tokens t JOIN documents d"
                 " ON d.id = t.doc_id WHERE d.run_id = %" PRId64 " AND d.doc_index >= %d);",
                 (long long)getpid(), id, id, docs, id, docs);
        char sql2[384];
        snprintf(sql2, sizeof sql2,
                 "DELETE FROM tokens WHERE doc_id IN (SELECT id FROM documents WHERE run_id = %" PRId64
                 " AND doc_index >= %d);"
                 "DELETE FROM documents WHERE run_id = %" PRId64 " AND doc_index >= %d;"
                 "DELETE FROM neuron_stats WHERE run_id = %" PRId64 ";"
                 "DELETE FROM neuron_examples WHERE run_id = %" PRId64 ";",
                 id, docs, id, docs, id, id);
        if (store_exec(r->s, sql, err) || store_exec(r->s, sql2, err) || load_state(r, err)) {
            sqlite3_exec(r->s->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    } else {
        if (insert_run(r, err)) {
            sqlite3_exec(r->s->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        r->new_run = 1;
    }

    /* the loop: documents in batches */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    long batch_docs = 0, crash_after = 0;
    const char *env = getenv("PROBE_RECORD_BATCH_DOCS");
    if (env && *env) parse_long(env, 1, 1L << 30, &batch_docs);
    env = getenv("PROBE_RECORD_CRASH_AFTER_DOCS");
    if (env && *env) parse_long(env, 1, 1L << 30, &crash_after);

    const int nd = corpus_count(r->c);
    const double total_bytes = (double)corpus_bytes(r->c);
    const Doc *dd = r->docs_done < nd ? corpus_doc(r->c, r->docs_done) : NULL;
    prog = progress_new(!o->quiet, dd && total_bytes > 0 ? (double)dd->offset / total_bytes : 0);
    double batch_t0 = now_sec();
    int in_batch = 0, di = r->docs_done;
    int64_t tokens_now = r->n_tokens;
    int64_t tokens_session0 = r->n_tokens;
    int fail_mid = 0;
    for (; di < nd; di++) {
        int64_t before = r->next_row;
        int st = record_doc(r, di, err);
        if (st < 0) {
            fail_mid = 1;
            break;
        }
        if (st > 0) break; /* interrupted inside the document */
        tokens_now += r->next_row - before;
        in_batch++;
        if (progress_due(prog)) {
            const Doc *d = corpus_doc(r->c, di);
            char a[32], b[32], detail[160];
            double el = now_sec() - r->t_start;
            snprintf(detail, sizeof detail, "%d/%d docs  %s tokens  %s tok/s", di + 1, nd,
                     progress_count(a, tokens_now),
                     progress_count(b, el > 0 ? (long long)((tokens_now - tokens_session0) / el) : 0));
            progress_draw(prog, total_bytes > 0 ? (double)(d->offset + d->len) / total_bytes : 1, detail);
        }
        int last = di + 1 == nd;
        int stop = g_stop != 0; /* one snapshot: a signal arriving later is seen by the next document */
        if (stop || last || (batch_docs ? in_batch >= batch_docs : now_sec() - batch_t0 >= BATCH_SECONDS)) {
            const char *stt = last ? "complete" : stop ? "interrupted" : "running";
            if (last || stop) {
                if (write_results(r, err)) { fail_mid = 1; break; }
                if (last) {
                    char sql[96];
                    snprintf(sql, sizeof sql, "DELETE FROM run_state WHERE run_id = %" PRId64, r->run_id);
                    if (store_exec(r->s, sql, err)) { fail_mid = 1; break; }
                }
            }
            if (save_progress(r, di + 1, tokens_now, stt, err) || store_exec(r->s, "COMMIT", err)) {
                fail_mid = 1;
                break;
            }
            r->new_run = 0;
            r->docs_done = di + 1;
            r->n_tokens = tokens_now;
            in_batch = 0;
            batch_t0 = now_sec();
            if (crash_after && r->docs_done >= crash_after) raise(SIGKILL);
            if (last) break;
            if (stop) {
                interrupted = 1;
                break;
            }
            if (batch_begin(r, err)) {
                fail_mid = 2; /* no transaction open */
                break;
            }
        }
    }
    progress_end(prog);
    prog = NULL;

    if (r->docs_done == nd && !fail_mid) {
        char a[32], b[32];
        double el = now_sec() - r->t_start;
        fprintf(stderr, "probe record: run %" PRId64 " complete: %d document%s, %s token%s in %.1f s (%s tokens/s) -> '%s'\n",
                r->run_id, nd, nd == 1 ? "" : "s", progress_count(a, r->n_tokens), r->n_tokens == 1 ? "" : "s", el,
                progress_count(b, el > 0 ? (long long)((r->n_tokens - tokens_session0) / el) : 0), o->db);
        rc = PROBE_EXIT_OK;
        goto done;
    }
    if (interrupted) goto report_interrupt;

    /* stopped mid-batch (signal inside a document, or an error): back to the last commit */
    {
        char err2[PROBE_ERR_LEN] = "";
        if (fail_mid != 2) sqlite3_exec(r->s->db, "ROLLBACK", NULL, NULL, NULL);
        if (r->new_run) { /* nothing committed: the run never existed */
            if (fail_mid) goto fail;
            fprintf(stderr, "probe record: interrupted before the first commit; nothing recorded\n");
            goto done;
        }
        /* mark the run interrupted, with results of the committed documents */
        recorder_free(r->rec);
        r->rec = recorder_new(r->n_rec, r->F, (int)o->examples, r->k, err2);
        if (!r->rec || store_exec(r->s, "BEGIN IMMEDIATE", err2) || load_state(r, err2) ||
            write_results(r, err2) || save_progress(r, r->docs_done, r->n_tokens, "interrupted", err2) ||
            store_exec(r->s, "COMMIT", err2)) {
            if (r->s && r->s->db) sqlite3_exec(r->s->db, "ROLLBACK", NULL, NULL, NULL);
            if (!fail_mid) snprintf(err, PROBE_ERR_LEN, "%s", err2);
            goto fail; /* run left 'running' at its last commit: --resume continues it */
        }
        if (fail_mid) goto fail;
    }
report_interrupt:
    fprintf(stderr, "probe record: interrupted: run %" PRId64 " saved with %d/%d documents (%" PRId64
            " tokens) in '%s'; continue with --resume\n", r->run_id, r->docs_done, nd, r->n_tokens, o->db);
    rc = PROBE_EXIT_RUNTIME;
    goto done;

oom:
    err_set(err, "out of memory");
fail:
    fprintf(stderr, "probe record: %s\n", err);
    rc = usage ? PROBE_EXIT_USAGE : PROBE_EXIT_RUNTIME;
done:
    progress_end(prog);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    rec_free(r);
    return rc;
}
