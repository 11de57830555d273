/* record.c — `probe record CORPUS`: stream a corpus through the model and
 * record FFN activations into a SQLite database.
 *
 *   probe record book.txt --db probe.db --layers 0-5 --full 5
 *   sqlite3 probe.db "SELECT * FROM neuron_top_examples WHERE layer = 5 AND neuron = 1234"
 *
 * Phases, each with an explicit outcome:
 *
 *   parse_options   options and PROBE_* variables        -> go on, or exit (help, usage error)
 *   set_up          corpus, model, layers, recorder       -> go on, or exit 1 / 2
 *   open_run        the database and the run              -> NEW / RESUME / DONE / FAILED
 *   record_loop     documents in batches                  -> COMPLETE / INTERRUPTED / STOPPED / FAILED
 *   finish          report; after STOPPED or FAILED, save the last commit's results -> exit code
 *
 * Every document is tokenized (after an <|endoftext|> unless --no-bos), cut
 * into windows (corpus.h), and each window runs through the model once; the
 * forward pass hands each recorded layer's post-activation to the Recorder,
 * which aggregates statistics and top examples in memory and produces each
 * owned token's top-k neurons. Tokens and their top-k rows go to the
 * database (results.h) inside one write transaction per batch (whole
 * documents, about every BATCH_SECONDS). Each batch commit also saves the
 * Recorder's state and the run's progress (runs.h), so after a crash
 * `--resume` continues from the last committed document with exact
 * aggregates. Statistics and top examples are written when the run stops
 * (complete, or interrupted by SIGINT/SIGTERM: the current batch is rolled
 * back to the last commit and the run is marked 'interrupted').
 *
 * Test hooks (environment): PROBE_RECORD_BATCH_DOCS=N commits every N
 * documents; PROBE_RECORD_CRASH_AFTER_DOCS=N kills the process (SIGKILL) right
 * after the first commit that covers N documents. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "act_hist.h"
#include "cli.h"
#include "commands.h"
#include "corpus.h"
#include "intervention.h"
#include "model.h"
#include "parallel.h"
#include "progress.h"
#include "recorder.h"
#include "results.h"
#include "runs.h"
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
    "  --shard I/N        record shard I of N only: the documents whose index is I-1\n"
    "                     modulo N (a run of its own; probe merge combines the N shards\n"
    "                     into what one recording of the whole corpus gives)\n"
    "  --force            with --resume: take the run over even though the process that\n"
    "                     recorded it seems alive (only when you know it is not recording)\n"
    "  --quiet            no progress bar and no warnings (the summary line stays)\n"
    "  --help             this text\n"
    "\n"
    "Ctrl-C stops after rolling back to the last commit; the run is 'interrupted'\n"
    "and --resume continues it. Recording a corpus that the database already holds\n"
    "completely (same model and options) does nothing.\n";

/* Seconds of work per transaction: at least BATCH_SECONDS, and at least
 * COMMIT_SHARE_INV times what the last commit took. A commit also rewrites
 * the recorder's state, histograms included (about 75 MB for GPT-2 small,
 * 0.28 s to commit: every 10 s that was 2.8% of a run; now at most 1%). A
 * crash or Ctrl-C loses at most this much work, which --resume redoes. */
#define BATCH_SECONDS 10.0
#define COMMIT_SHARE_INV 100.0

/* ---- signals ---------------------------------------------------------- */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    g_stop = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once (the database stays consistent) */
}

static void signals_catch(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void signals_restore(void) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

/* ---- state of a recording ------------------------------------------------ */

typedef struct {
    const char *corpus, *db, *model, *layers, *full;
    SplitMode split;
    long ctx, top_k, examples;
    int bos, resume, force, quiet;
    long batch_docs;  /* PROBE_RECORD_BATCH_DOCS: commit every N documents (0: every BATCH_SECONDS) */
    long crash_after; /* PROBE_RECORD_CRASH_AFTER_DOCS: SIGKILL after the commit covering N (0: never) */
    long shard, shards; /* --shard I/N; 0/0 = the whole corpus */
} Opts;

typedef struct {
    Opts o;
    Store *s;
    Model *m;
    Corpus *c;
    Recorder *rec;
    int L, F, k, ctx, n_rec;
    int *rec_layer;          /* [n_rec] model layer of recorded layer li */
    int *li_of;              /* [L] li, or -1 */
    uint8_t *capture, *full; /* [L] */
    char options_json[2048], layers_json[512], full_json[512];
    int64_t run_id;
    int new_run;      /* the run row is not committed yet */
    int docs_done;    /* committed */
    int64_t n_tokens; /* committed */
    int64_t tokens0;  /* committed before this session */
    int64_t next_row; /* rowid of the next token */
    double seconds0;  /* seconds spent by earlier sessions */
    double t_start;
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
    Example *examples;  /* [examples] a neuron's, from the recorder */
    ExampleRow *ex_rows; /* [examples] the same for the database */
    uint32_t *hist;      /* [ACT_HIST_BINS] one neuron's histogram */
    int states_loaded;  /* load_state's count */
    Utf8Buf doc_text, tok_text; /* text forms (utf8.h) of a document and a token */
    int own_off, n_own;
} Rec;

static void rec_free(Rec *r) {
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
    free(r->examples);
    free(r->ex_rows);
    free(r->hist);
    utf8_buf_free(&r->doc_text);
    utf8_buf_free(&r->tok_text);
    free(r->rec_layer);
    free(r->li_of);
    free(r->capture);
    free(r->full);
}

/* ---- phase 1: options ------------------------------------------------------- */

/* --shard I/N into o->shard and o->shards. */
static int parse_shard(const char *arg, void *opts) {
    Opts *o = opts;
    char *end;
    o->shard = strtol(arg, &end, 10);
    o->shards = *end == '/' ? strtol(end + 1, &end, 10) : 0;
    if (*end || o->shards < 1 || o->shards > 1000000 || o->shard < 1 || o->shard > o->shards)
        return cli_usage_error("--shard must be I/N with 1 <= I <= N, not '%s'", arg), -1;
    return 0;
}

/* Parses argv and the PROBE_RECORD_* variables into o. -1 to go on, else
 * the exit code (after --help, or a usage error already printed). */
static int parse_options(int argc, char **argv, Opts *o) {
    *o = (Opts){.db = "probe.db", .split = SPLIT_PARAGRAPH, .ctx = 0, .top_k = 16, .examples = 32, .bos = 1};
    const CliOption opts[] = {CLI_OPT_STRING("db", &o->db),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_SPLIT(&o->split),
                              CLI_OPT_COUNT("ctx", &o->ctx, 1, 1 << 20),
                              CLI_OPT_COUNT("top-k", &o->top_k, 1, 256),
                              CLI_OPT_COUNT("examples", &o->examples, 1, 1024),
                              CLI_OPT_STRING("full", &o->full),
                              CLI_OPT_STRING("layers", &o->layers),
                              CLI_OPT_SET("resume", &o->resume),
                              CLI_OPT_SET("quiet", &o->quiet),
                              CLI_OPT_CLEAR("no-bos", &o->bos),
                              CLI_OPT_SET("force", &o->force),
                              CLI_OPT_CALL("shard", parse_shard, o),
                              CLI_OPT_END};
    CliArgs args;
    int rc = cli_parse(argc, argv, usage_text, opts, &args);
    if (rc >= 0) return rc;
    if (args.n == 0) return cli_usage_error("missing CORPUS");
    if (args.n > 1) return cli_extra_argument(args.arg[1]);
    o->corpus = args.arg[0];
    if (o->force && !o->resume) return cli_usage_error("--force only applies with --resume");
    char err[PROBE_ERR_LEN];
    if (env_long("PROBE_RECORD_BATCH_DOCS", 1, 1L << 30, 0, &o->batch_docs, err) ||
        env_long("PROBE_RECORD_CRASH_AFTER_DOCS", 1, 1L << 30, 0, &o->crash_after, err) || store_env_check(err))
        return cli_error(PROBE_EXIT_USAGE, "%s", err);
    return -1;
}

/* ---- phase 2: set up -------------------------------------------------------- */

static const char *split_name(SplitMode m) {
    return m == SPLIT_LINE ? "line" : m == SPLIT_FILE ? "file" : "paragraph";
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

/* The options checked against the model: --ctx, --top-k, --layers, --full,
 * and the options JSON that identifies the run. *usage = 1 for an error of
 * the user's options. */
static int set_up_layers(Rec *r, int *usage, char *err) {
    const Opts *o = &r->o;
    const ModelConfig *cfg = &r->m->cfg;
    r->L = cfg->n_layer;
    r->F = cfg->n_inner;
    if (r->F > 65535)
        return err_set(err, "model '%s' has %d FFN neurons per layer; record supports at most 65535", r->m->dir,
                       r->F);
    *usage = 1;
    if (o->ctx > cfg->n_positions)
        return err_set(err, "--ctx %ld is above the model's n_positions %d", o->ctx, cfg->n_positions);
    r->ctx = o->ctx ? (int)o->ctx : cfg->n_positions;
    if (o->top_k > r->F) return err_set(err, "--top-k %ld is above the model's %d neurons per layer", o->top_k, r->F);
    r->k = (int)o->top_k;
    *usage = 0;
    r->capture = calloc((size_t)r->L, 1);
    r->full = calloc((size_t)r->L, 1);
    r->li_of = malloc(sizeof(int) * (size_t)r->L);
    r->rec_layer = malloc(sizeof(int) * (size_t)r->L);
    if (!r->capture || !r->full || !r->li_of || !r->rec_layer) return err_set(err, "out of memory");
    *usage = 1;
    if (o->layers) {
        if (parse_layer_list(o->layers, r->L, r->capture, err)) return -1;
    } else {
        memset(r->capture, 1, (size_t)r->L);
    }
    if (o->full && parse_layer_list(o->full, r->L, r->full, err)) return -1;
    for (int l = 0; l < r->L; l++) {
        r->li_of[l] = r->capture[l] ? r->n_rec : -1;
        if (r->capture[l]) r->rec_layer[r->n_rec++] = l;
        if (r->full[l] && !r->capture[l]) return err_set(err, "--full layer %d is not recorded (add it to --layers)", l);
    }
    *usage = 0;
    mask_json(r->capture, r->L, r->layers_json, sizeof r->layers_json);
    mask_json(r->full, r->L, r->full_json, sizeof r->full_json);
    char shard[64] = "";
    if (o->shards) snprintf(shard, sizeof shard, ",\"shard\":\"%ld/%ld\"", o->shard, o->shards);
    int olen = snprintf(r->options_json, sizeof r->options_json,
                        "{\"split\":\"%s\",\"ctx\":%d,\"top_k\":%d,\"examples\":%ld,\"layers\":%s,"
                        "\"full\":%s,\"bos\":%d%s}",
                        split_name(o->split), r->ctx, r->k, o->examples, r->layers_json, r->full_json, o->bos, shard);
    if (olen < 0 || olen >= (int)sizeof r->options_json)
        return err_set(err, "too many layers to record at once (%d)", r->n_rec);
    return 0;
}

/* Warns (once) about the first byte of the corpus that is not valid UTF-8. */
static void warn_invalid_utf8(const Rec *r) {
    for (int i = 0; i < corpus_count(r->c); i++) {
        const Doc *d = corpus_doc(r->c, i);
        size_t at = utf8_clean_prefix(d->text, d->len);
        if (at < d->len) {
            cli_error(0, "warning: '%s' is not valid UTF-8 %s(document %d, byte %zu); "
                      "such bytes are tokenized as bytes and shown as U+FFFD in text columns",
                      r->o.corpus, d->text[at] ? "" : "text: a NUL byte ", d->index, at);
            return;
        }
    }
}

/* Everything that can fail on input, checked before the database is
 * touched: the corpus, the model, the options against the model; then the
 * recorder and the buffers. 0, or an exit code after printing the error. */
static int set_up(Rec *r) {
    char err[PROBE_ERR_LEN];
    int usage = 0;
    r->c = corpus_open(r->o.corpus, r->o.split, err);
    if (!r->c) goto fail;
    if (r->o.shards) {
        int all = corpus_count(r->c);
        corpus_shard(r->c, (int)r->o.shard, (int)r->o.shards);
        if (corpus_count(r->c) == 0) {
            err_set(err, "shard %ld/%ld of '%s' has no documents (the corpus has %d)", r->o.shard, r->o.shards,
                    r->o.corpus, all);
            usage = 1;
            goto fail;
        }
    }
    r->m = model_load(model_dir_resolve(r->o.model), err);
    if (!r->m || set_up_layers(r, &usage, err)) goto fail;
    if (!r->o.quiet) warn_invalid_utf8(r);
    r->rec = recorder_new(r->n_rec, r->F, (int)r->o.examples, r->k, err);
    if (!r->rec) goto fail;
    int any_full = 0;
    for (int l = 0; l < r->L; l++) any_full |= r->full[l];
    r->rows = malloc(sizeof(int64_t) * (size_t)r->ctx);
    r->topk_buf = malloc((size_t)r->n_rec * r->ctx * r->k * RECORDER_TOPK_BYTES);
    r->full_buf = any_full ? malloc(sizeof(uint16_t) * (size_t)r->n_rec * r->ctx * r->F) : NULL;
    r->state_buf = malloc(recorder_state_size(r->rec));
    r->examples = malloc(sizeof(Example) * (size_t)r->o.examples);
    r->ex_rows = malloc(sizeof(ExampleRow) * (size_t)r->o.examples);
    r->hist = malloc(sizeof(uint32_t) * ACT_HIST_BINS);
    if (!r->rows || !r->topk_buf || (any_full && !r->full_buf) || !r->state_buf || !r->examples || !r->ex_rows ||
        !r->hist) {
        err_set(err, "out of memory");
        goto fail;
    }
    return 0;
fail:
    return cli_error(usage ? PROBE_EXIT_USAGE : PROBE_EXIT_RUNTIME, "%s", err);
}

/* ---- what a commit writes ------------------------------------------------------ */

/* Writes the results of a run that stops: neuron_stats and neuron_examples
 * from the recorder, then the summaries (replacing old ones). */
static int write_results(Rec *r, char *err) {
    NeuronWriter *w = results_neurons_begin(r->s, r->run_id, (int)r->o.examples, err);
    if (!w) return -1;
    for (int li = 0; li < r->n_rec; li++) {
        if (recorder_count(r->rec, li) == 0) continue;
        for (int j = 0; j < r->F; j++) {
            NeuronStats ns;
            recorder_stats(r->rec, li, j, &ns);
            NeuronStatsRow row = {ns.count, ns.mean, ns.variance, ns.min, ns.max, ns.frac_pos};
            int n;
            recorder_examples(r->rec, li, j, r->examples, &n);
            for (int e = 0; e < n; e++) r->ex_rows[e] = (ExampleRow){r->examples[e].token_row, r->examples[e].value};
            recorder_hist(r->rec, li, j, r->hist);
            if (results_neurons_add(w, r->rec_layer[li], j, &row, r->ex_rows, n, r->hist, ACT_HIST_BINS, err)) {
                results_neurons_end(w);
                return -1;
            }
        }
    }
    results_neurons_end(w);
    return results_summarize(r->s, r->run_id, err);
}

/* Saves the recorder's state (unless complete) and the run's progress into
 * the open transaction. */
static int save_progress(Rec *r, int docs_done, int64_t n_tokens, RunStatus status, char *err) {
    for (int li = 0; li < r->n_rec && status != RUN_COMPLETE; li++) {
        size_t len = recorder_state_save(r->rec, li, r->state_buf);
        if (runs_state_save(r->s, r->run_id, r->rec_layer[li], r->state_buf, len, err))
            return -1;
    }
    RunProgress p = {status, docs_done, n_tokens, r->seconds0 + now_sec() - r->t_start};
    return runs_progress(r->s, r->run_id, &p, err);
}

/* Ends the open batch: a run that stops (complete or interrupted) gets its
 * neuron results, a complete one loses its saved state; then progress and
 * COMMIT. */
static int commit_batch(Rec *r, int docs_done, int64_t n_tokens, RunStatus status, char *err) {
    int li, neuron;
    if (recorder_first_nonfinite(r->rec, &li, &neuron))
        return err_set(err, "layer %d neuron %d: a NaN or infinite activation in documents %d..%d of '%s' (the model "
                       "overflows on this text); the run keeps its last commit", r->rec_layer[li], neuron,
                       r->docs_done, docs_done - 1, r->o.corpus);
    if (status != RUN_RUNNING && write_results(r, err)) return -1;
    if (status == RUN_COMPLETE && runs_state_clear(r->s, r->run_id, err)) return -1;
    if (save_progress(r, docs_done, n_tokens, status, err) || store_commit(r->s, err)) return -1;
    r->new_run = 0;
    r->docs_done = docs_done;
    r->n_tokens = n_tokens;
    return 0;
}

/* Starts a batch: write transaction, next token row. */
static int batch_begin(Rec *r, char *err) {
    return store_begin(r->s, err) || results_next_token_row(r->s, &r->next_row, err) ? -1 : 0;
}

/* runs_state_load's callback: one saved layer into the recorder. */
static int load_layer(void *user, int layer, const void *state, size_t len, char *err) {
    Rec *r = user;
    if (layer < 0 || layer >= r->L || r->li_of[layer] < 0) return 0; /* not recorded: ignored */
    if (recorder_state_load(r->rec, r->li_of[layer], state, len, err)) return -1;
    r->states_loaded++;
    return 0;
}

/* Restores the recorder from the last committed state of the run. */
static int load_state(Rec *r, char *err) {
    r->states_loaded = 0;
    if (runs_state_load(r->s, r->run_id, load_layer, r, err)) return -1;
    if (r->docs_done > 0 && r->states_loaded != r->n_rec)
        return err_set(err, "database '%s': run %" PRId64 " has no saved state for every layer; cannot resume",
                       r->s->path, r->run_id);
    return 0;
}

/* ---- one document ------------------------------------------------------------ */

/* The forward pass's observer: a recorded layer's activations of the
 * window's owned tokens go to the recorder. */
static void rec_observe(void *user, int layer, const float *act, int T, int F) {
    Rec *r = user;
    (void)T;
    int li = r->li_of[layer];
    if (li < 0 || r->n_own == 0) return;
    size_t tk = (size_t)r->ctx * r->k * RECORDER_TOPK_BYTES;
    recorder_add(r->rec, li, act + (size_t)r->own_off * F, r->n_own, r->rows, r->topk_buf + (size_t)li * tk,
                 r->full[layer] ? r->full_buf + (size_t)li * r->ctx * F : NULL);
}

/* Tokenizes document di into r->tb and r->seq (after the BOS) and plans its
 * windows into r->win; *nw is their number. */
static int doc_prepare(Rec *r, const Doc *d, int di, int *nw, char *err) {
    r->tb.n = 0;
    if (tok_encode(r->m->tok, d->text, d->len, &r->tb)) return err_set(err, "out of memory tokenizing document %d", di);
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
    *nw = windows_count(ns, r->ctx);
    if (*nw > r->win_cap) {
        Window *w = realloc(r->win, (size_t)*nw * 2 * sizeof *w);
        if (!w) return err_set(err, "out of memory for document %d", di);
        r->win = w;
        r->win_cap = *nw * 2;
    }
    windows_plan(ns, r->ctx, r->win);
    return 0;
}

/* documents.text is the text form (valid UTF-8, schema 060), text_bytes the
 * exact bytes that byte spans index; for a valid document both are the
 * same buffer. */
static int doc_insert(Rec *r, const Doc *d, int di, int64_t *doc_id, char *err) {
    size_t text_len;
    const char *text = utf8_text_in(&r->doc_text, d->text, d->len, &text_len);
    if (!text) return err_set(err, "out of memory for document %d", di);
    DocumentRow row = {.run_id = r->run_id, .doc_index = d->index, .byte_offset = (int64_t)d->offset,
                       .n_tokens = (int)r->tb.n, .text = text, .text_len = text_len, .bytes = d->text,
                       .n_bytes = d->len};
    return results_add_document(r->s, &row, doc_id, err);
}

/* Writes the owned tokens of the window just run (the first at sequence
 * position own_start): their rows, top-k and full vectors. chars walks the
 * document's character spans in token order. */
static int window_write(Rec *r, const Doc *d, int64_t doc_id, int own_start, Utf8Cursor *chars, char *err) {
    const int n = (int)r->tb.n;
    const size_t tk = (size_t)r->k * RECORDER_TOPK_BYTES;
    for (int t = 0; t < r->n_own; t++) {
        int ti = own_start - r->o.bos + t;
        uint32_t b0 = r->tb.start[ti], b1 = ti + 1 < n ? r->tb.start[ti + 1] : (uint32_t)d->len;
        TokenRow row = {.row = r->rows[t], .run_id = r->run_id, .doc_id = doc_id, .pos = ti,
                        .token_id = r->tb.ids[ti], .byte_start = (int)b0, .byte_end = (int)b1};
        utf8_cursor_span(chars, b0, b1, &row.char_start, &row.char_end);
        row.text = utf8_text_in(&r->tok_text, d->text + b0, b1 - b0, &row.text_len);
        if (!row.text) return err_set(err, "out of memory for a token");
        if (results_add_token(r->s, &row, err)) return -1;
        for (int li = 0; li < r->n_rec; li++) {
            int layer = r->rec_layer[li];
            if (results_add_topk(r->s, r->rows[t], layer, r->topk_buf + ((size_t)li * r->ctx + t) * tk, tk, err))
                return -1;
            if (r->full[layer] &&
                results_add_full(r->s, r->rows[t], layer, r->full_buf + ((size_t)li * r->ctx + t) * r->F,
                                 (size_t)r->F * 2, err))
                return -1;
        }
    }
    return 0;
}

/* Tokenizes, runs and inserts document di. 0 done, 1 stopped by a signal
 * (between windows), -1 on error. */
static int record_doc(Rec *r, int di, char *err) {
    const Doc *d = corpus_doc(r->c, di);
    int nw = 0, bos = r->o.bos;
    int64_t doc_id;
    if (doc_prepare(r, d, di, &nw, err) || doc_insert(r, d, di, &doc_id, err)) return -1;
    Utf8Cursor chars; /* character spans of the tokens, in token order */
    utf8_cursor_init(&chars, d->text, d->len);
    int64_t first_row = r->next_row;
    r->next_row += (int64_t)r->tb.n;
    ForwardHooks hooks = {.capture = r->capture, .observe = rec_observe, .user = r};
    for (int w = 0; w < nw; w++) {
        if (g_stop) return 1;
        const Window *win = &r->win[w];
        int own_start, own_end;
        window_owned(win, bos, &own_start, &own_end);
        r->n_own = own_end - own_start;
        if (r->n_own <= 0) continue;
        r->own_off = own_start - win->start;
        for (int t = 0; t < r->n_own; t++) r->rows[t] = first_row + (own_start - bos + t);
        if (model_forward(r->m, r->seq + win->start, win->len, &hooks, NULL, err)) return -1;
        if (recorder_failed(r->rec)) return err_set(err, "out of memory for the activation histograms");
        if (window_write(r, d, doc_id, own_start, &chars, err)) return -1;
    }
    return 0;
}

/* ---- phase 3: open the run ------------------------------------------------------ */

typedef enum {
    OPEN_NEW,    /* a new run row, in the open first batch */
    OPEN_RESUME, /* an unfinished run reopened at its last commit, in the open first batch */
    OPEN_DONE,   /* the database holds this run complete: nothing to do */
    OPEN_FAILED  /* err says why */
} OpenOutcome;

/* Whether the run's recorder (process pid, last commit at `updated`) still
 * lives. A live process that started after the run's last commit cannot be
 * its recorder: the pid was reused by another process after the recorder
 * died, and the run is free to resume. (Start times come from /proc; where
 * they cannot be read, a live pid counts as the recorder, and --force
 * overrides.) */
static int recorder_alive(long long pid, int64_t updated) {
    if (pid <= 0 || pid == (long long)getpid()) return 0;
    if (!(kill((pid_t)pid, 0) == 0 || errno == EPERM)) return 0;
    char state;
    double started;
    if (process_info(pid, &state, &started) == 0) {
        if (state == 'Z' || state == 'X') return 0; /* dead, not yet reaped by its parent */
        if (updated > 0 && started > (double)updated + 2.0) return 0;
    }
    return 1;
}

/* What the run found for this corpus, model and options (if any) means. */
static OpenOutcome open_decide(Rec *r, const RunKey *key, int found, const RunInfo *run, char *err) {
    const Opts *o = &r->o;
    if (found && run->status == RUN_COMPLETE) {
        cli_error(0, "'%s' already holds complete run %" PRId64 " of '%s' with this model and options; "
                  "nothing recorded", o->db, run->id, o->corpus);
        return OPEN_DONE;
    }
    if (found && run->status == RUN_RUNNING && !o->force && recorder_alive(run->pid, run->updated)) {
        err_set(err, "database '%s': run %" PRId64 " of this corpus is being recorded by process %lld "
                "(if it is not, resume with --resume --force)", o->db, run->id, run->pid);
        return OPEN_FAILED;
    }
    if (found && !o->resume) {
        err_set(err, "database '%s' holds unfinished run %" PRId64 " of '%s' (%d/%d documents); "
                "continue it with --resume", o->db, run->id, o->corpus, run->docs_done, corpus_count(r->c));
        return OPEN_FAILED;
    }
    if (found) return OPEN_RESUME;
    if (!o->resume) return OPEN_NEW;
    RunInfo other;
    int f2 = runs_find_other_options(r->s, key, &other, err);
    if (f2 > 0)
        err_set(err, "database '%s': unfinished run %" PRId64 " of '%s' used other options %s; "
                "give the same options to --resume", o->db, other.id, o->corpus, other.options);
    else if (f2 == 0)
        err_set(err, "database '%s' holds no unfinished run of '%s' with this model to resume", o->db, o->corpus);
    return OPEN_FAILED;
}

/* The run row of a new run. */
static int create_run(Rec *r, const RunKey *key, char *err) {
    const ModelConfig *cfg = &r->m->cfg;
    char config[512];
    snprintf(config, sizeof config,
             "{\"n_layer\":%d,\"n_embd\":%d,\"n_head\":%d,\"n_inner\":%d,\"n_positions\":%d,"
             "\"vocab_size\":%d,\"layer_norm_epsilon\":%g,\"activation_function\":\"%s\"}",
             cfg->n_layer, cfg->n_embd, cfg->n_head, cfg->n_inner, cfg->n_positions, cfg->vocab_size,
             (double)cfg->layer_norm_epsilon, cfg->activation_name);
    RunSpec spec = {.key = *key, .model_dir = r->m->dir, .model_config = config, .corpus_path = r->o.corpus,
                    .layers = r->layers_json, .full_layers = r->full_json, .n_layer = r->L, .n_inner = r->F,
                    .ctx = r->ctx, .top_k = r->k, .n_examples = (int)r->o.examples, .bos = r->o.bos,
                    .n_docs = corpus_count(r->c), .corpus_bytes = (int64_t)corpus_bytes(r->c),
                    .blas = parallel_blas_core()};
    if (runs_create(r->s, &spec, (long long)getpid(), &r->run_id, err)) return -1;
    r->new_run = 1;
    return 0;
}

/* Opens (creates, migrates) the database, finds the run and, for NEW and
 * RESUME, opens the first batch's transaction with the run row in it. */
static OpenOutcome open_run(Rec *r, char *err) {
    const Opts *o = &r->o;
    if (o->resume && access(o->db, F_OK) != 0) {
        err_set(err, "cannot resume: database '%s' does not exist", o->db);
        return OPEN_FAILED;
    }
    r->s = store_open(o->db, STORE_WRITE, err);
    if (!r->s) return OPEN_FAILED;
    RunKey key = {r->m->checksum, corpus_checksum(r->c), r->options_json};
    RunInfo run;
    int found = runs_find(r->s, &key, &run, err);
    if (found < 0) return OPEN_FAILED;
    /* every value read back is untrusted: progress beyond the corpus (or
     * negative) would index documents that do not exist */
    if (found && (run.docs_done < 0 || run.docs_done > corpus_count(r->c) || run.n_tokens < 0)) {
        err_set(err, "run %lld in '%s' claims %d of %d documents and %lld tokens done (edited by hand or damaged); "
                "record into another database", (long long)run.id, o->db, run.docs_done, corpus_count(r->c),
                (long long)run.n_tokens);
        return OPEN_FAILED;
    }
    OpenOutcome out = open_decide(r, &key, found, &run, err);
    if (out != OPEN_NEW && out != OPEN_RESUME) return out;
    r->t_start = now_sec();
    if (batch_begin(r, err)) goto fail;
    if (out == OPEN_NEW) {
        if (create_run(r, &key, err)) goto fail;
        return OPEN_NEW;
    }
    r->run_id = run.id;
    r->docs_done = run.docs_done;
    r->n_tokens = r->tokens0 = run.n_tokens;
    r->seconds0 = run.seconds;
    int other_kernels;
    if (runs_reopen(r->s, run.id, run.docs_done, (long long)getpid(), err) || load_state(r, err) ||
        runs_add_blas(r->s, run.id, parallel_blas_core(), &other_kernels, err))
        goto fail;
    if (other_kernels && text_printable(run.blas)) { /* the same bits need the same kernels (schema 130);
                                                        run.blas is read back, untrusted */
        char first[64];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(run.blas, ","), run.blas);
        cli_error(0, "warning: run %lld was recorded with OpenBLAS's %s kernels and continues with %s: its results "
                  "will not be the same bits as one session's (OPENBLAS_CORETYPE=%s continues with the first)",
                  (long long)run.id, run.blas, parallel_blas_core(), first);
    }
    return OPEN_RESUME;
fail:
    store_rollback(r->s);
    return OPEN_FAILED;
}

/* ---- phase 4: the loop --------------------------------------------------------------- */

typedef enum {
    LOOP_COMPLETE,    /* every document committed, the run 'complete' */
    LOOP_INTERRUPTED, /* a signal between documents: committed as 'interrupted' */
    LOOP_STOPPED,     /* a signal inside a document: the batch is not committed */
    LOOP_FAILED       /* an error (in err); a batch may be open */
} LoopOutcome;

static void show_progress(Rec *r, Progress *prog, int di, int64_t tokens_now) {
    const Doc *d = corpus_doc(r->c, di);
    const double total = (double)corpus_bytes(r->c);
    char a[32], b[32], detail[160];
    double el = now_sec() - r->t_start;
    snprintf(detail, sizeof detail, "%d/%d docs  %s tokens  %s tok/s", di + 1, corpus_count(r->c),
             progress_count(a, tokens_now),
             progress_count(b, el > 0 ? (long long)((tokens_now - r->tokens0) / el) : 0));
    progress_draw(prog, total > 0 ? (double)(d->offset + d->len) / total : 1, detail);
}

/* Records the documents after the last commit, in batches; the first
 * batch's transaction is open. */
static LoopOutcome record_loop(Rec *r, char *err) {
    const int nd = corpus_count(r->c);
    if (r->docs_done == nd) /* nothing left: only the final commit */
        return commit_batch(r, nd, r->n_tokens, RUN_COMPLETE, err) ? LOOP_FAILED : LOOP_COMPLETE;
    const double total = (double)corpus_bytes(r->c);
    const Doc *next = corpus_doc(r->c, r->docs_done);
    Progress *prog = progress_new(!r->o.quiet, total > 0 ? (double)next->offset / total : 0);
    double batch_t0 = now_sec(), batch_seconds = BATCH_SECONDS;
    int in_batch = 0;
    int64_t tokens_now = r->n_tokens;
    LoopOutcome out = LOOP_COMPLETE;
    for (int di = r->docs_done; di < nd; di++) {
        int64_t before = r->next_row;
        int st = record_doc(r, di, err);
        if (st) {
            out = st < 0 ? LOOP_FAILED : LOOP_STOPPED;
            break;
        }
        tokens_now += r->next_row - before;
        in_batch++;
        if (progress_due(prog)) show_progress(r, prog, di, tokens_now);
        int last = di + 1 == nd;
        int stop = g_stop != 0; /* one snapshot: a signal arriving later is seen by the next document */
        if (!stop && !last &&
            (r->o.batch_docs ? in_batch < r->o.batch_docs : now_sec() - batch_t0 < batch_seconds))
            continue;
        RunStatus status = last ? RUN_COMPLETE : stop ? RUN_INTERRUPTED : RUN_RUNNING;
        double commit_t0 = now_sec();
        if (commit_batch(r, di + 1, tokens_now, status, err)) {
            out = LOOP_FAILED;
            break;
        }
        in_batch = 0;
        batch_t0 = now_sec();
        batch_seconds = fmax(BATCH_SECONDS, COMMIT_SHARE_INV * (batch_t0 - commit_t0));
        if (r->o.crash_after && r->docs_done >= r->o.crash_after) raise(SIGKILL);
        if (status != RUN_RUNNING) {
            out = status == RUN_COMPLETE ? LOOP_COMPLETE : LOOP_INTERRUPTED;
            break;
        }
        if (batch_begin(r, err)) {
            out = LOOP_FAILED;
            break;
        }
    }
    progress_end(prog);
    return out;
}

/* ---- phase 5: finish -------------------------------------------------------------- */

/* After STOPPED or FAILED: the batch is rolled back; the run is marked
 * 'interrupted' with the results of its committed documents, from the
 * state saved at the last commit. On failure the run stays 'running' at its
 * last commit, which --resume continues. */
static int save_committed(Rec *r, char *err) {
    store_rollback(r->s);
    recorder_free(r->rec);
    r->rec = recorder_new(r->n_rec, r->F, (int)r->o.examples, r->k, err);
    if (!r->rec || store_begin(r->s, err) || load_state(r, err) || write_results(r, err) ||
        save_progress(r, r->docs_done, r->n_tokens, RUN_INTERRUPTED, err) || store_commit(r->s, err)) {
        store_rollback(r->s);
        return -1;
    }
    return 0;
}

static void report_interrupted(const Rec *r) {
    cli_error(0, "interrupted: run %" PRId64 " saved with %d/%d documents (%" PRId64 " tokens) in '%s'; "
              "continue with --resume", r->run_id, r->docs_done, corpus_count(r->c), r->n_tokens, r->o.db);
}

static void report_complete(const Rec *r) {
    char a[32], b[32];
    int nd = corpus_count(r->c);
    double el = now_sec() - r->t_start;
    cli_error(0, "run %" PRId64 " complete: %d document%s, %s token%s in %.1f s (%s tokens/s) -> '%s'", r->run_id,
              nd, nd == 1 ? "" : "s", progress_count(a, r->n_tokens), r->n_tokens == 1 ? "" : "s", el,
              progress_count(b, el > 0 ? (long long)((r->n_tokens - r->tokens0) / el) : 0), r->o.db);
}

/* Reports the loop's outcome, saving what was committed when it stopped
 * inside a batch; returns the exit code. */
static int finish(Rec *r, LoopOutcome out, const char *err) {
    if (out == LOOP_COMPLETE) {
        report_complete(r);
        return PROBE_EXIT_OK;
    }
    if (out == LOOP_INTERRUPTED) {
        report_interrupted(r);
        return PROBE_EXIT_RUNTIME;
    }
    store_rollback(r->s);
    if (r->new_run) { /* nothing committed: the run never existed */
        if (out == LOOP_FAILED) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
        return cli_error(PROBE_EXIT_RUNTIME, "interrupted before the first commit; nothing recorded");
    }
    char err2[PROBE_ERR_LEN] = "";
    int saved = save_committed(r, err2) == 0;
    if (out == LOOP_FAILED) return cli_error(PROBE_EXIT_RUNTIME, "%s", err);
    if (!saved) return cli_error(PROBE_EXIT_RUNTIME, "%s", err2);
    report_interrupted(r);
    return PROBE_EXIT_RUNTIME;
}

/* ---- the command ---------------------------------------------------------------- */

int cmd_record(int argc, char **argv) {
    Rec R = {0}, *r = &R;
    char err[PROBE_ERR_LEN];
    int rc;
    if ((rc = parse_options(argc, argv, &r->o)) >= 0) return rc;
    rc = set_up(r);
    if (rc == 0) {
        switch (open_run(r, err)) {
        case OPEN_DONE: rc = PROBE_EXIT_OK; break;
        case OPEN_FAILED: rc = cli_error(PROBE_EXIT_RUNTIME, "%s", err); break;
        case OPEN_NEW:
        case OPEN_RESUME:
            signals_catch();
            rc = finish(r, record_loop(r, err), err);
            signals_restore();
            break;
        }
    }
    rec_free(r);
    return rc;
}
