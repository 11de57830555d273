/* cmd_trace.c — `probe trace`: run one text through the model, with optional
 * interventions, and write what it computed as NumPy files.
 *
 *   probe trace --text "The cat sat" --out run/ --zero 3:100
 *   python3 -c "import numpy; a = numpy.load('run/ffn_3.npy')"
 *
 * Writes DIR/ffn_L.npy (float32 [T, n_inner], the post-activation of layer
 * L after edits: TransformerLens blocks.L.mlp.hook_post), the residual
 * stream DIR/resid_pre_L.npy, DIR/resid_post_L.npy and the attention
 * output DIR/attn_out_L.npy (float32 [T, n_embd]: blocks.L.hook_resid_pre,
 * hook_resid_post, hook_attn_out), DIR/logits.npy (float32 [T, vocab]),
 * DIR/loss.npy (float32 [T-1], next-token cross-entropy in nats) and
 * DIR/ids.json. A text longer than the context (--ctx, default
 * n_positions) is cut into the windows `record` uses (text/corpus.h): the
 * same files per window in DIR/w0/, DIR/w1/, ..., and DIR/windows.json
 * says where each window starts and which tokens it owns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "intervention.h"
#include "logits.h"
#include "model.h"
#include "npy.h"
#include "util.h"

static const char *usage_text =
    "usage: probe trace (--ids FILE.json | --text STRING | --file FILE) --out DIR [options]\n"
    "\n"
    "Runs one window through the model and writes, for every layer L:\n"
    "  DIR/ffn_L.npy        float32 [T, n_inner]  FFN post-activation (blocks.L.mlp.hook_post)\n"
    "  DIR/resid_pre_L.npy  float32 [T, n_embd]   residual stream into layer L (blocks.L.hook_resid_pre)\n"
    "  DIR/attn_out_L.npy   float32 [T, n_embd]   attention output incl. c_proj bias (blocks.L.hook_attn_out)\n"
    "  DIR/resid_post_L.npy float32 [T, n_embd]   residual stream out of layer L (blocks.L.hook_resid_post)\n"
    "and DIR/logits.npy (float32 [T, vocab]), DIR/loss.npy (float32 [T-1]), DIR/ids.json.\n"
    "\n"
    "Input longer than --ctx tokens is cut into the windows of probe record: ctx\n"
    "tokens advancing by ctx/2, the last one aligned to the end. Each window's\n"
    "files go to DIR/w0/, DIR/w1/, ...; DIR/ids.json holds all ids and\n"
    "DIR/windows.json each window's start, length and first owned token.\n"
    "\n"
    "  --ids FILE.json       a JSON array of token ids (used as is, no BOS added)\n"
    "  --text STRING         text to tokenize (<|endoftext|> is prepended)\n"
    "  --file FILE           text file to tokenize (<|endoftext|> is prepended)\n"
    "  --no-bos              do not prepend <|endoftext|> to --text/--file\n"
    "  --out DIR             output directory (created if missing)\n"
    "  --ctx N               context window in tokens (default and max: n_positions)\n"
    "  --no-ffn              remove every layer's FFN (output not added to the residual)\n"
    "  --no-ffn-layers LIST  remove the FFN of these layers, e.g. 3,5-7\n"
    "  --zero LIST           zero these neurons' post-activation, e.g. 3:100,5:2000\n"
    "  --set LIST            set neurons to values, e.g. 5:7=1.5\n"
    "  --model DIR           model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --help                this text\n";

/* What one window's forward pass wrote, each sized for the largest window. */
typedef struct {
    float *acts;       /* [L x T x F] */
    float *resid_pre;  /* [L x T x C] */
    float *attn_out;   /* [L x T x C] resid_mid - resid_pre */
    float *resid_post; /* [L x T x C] */
    int T, F, C;
} TraceCapture;

static void trace_observe(void *user, int layer, const float *act, int T, int F) {
    TraceCapture *c = user;
    memcpy(c->acts + (size_t)layer * T * F, act, sizeof(float) * (size_t)T * F);
}

/* The pass adds the attention output to the residual stream in place, so
 * attn_out is the float difference resid_mid - resid_pre: what the block
 * added, within a rounding at the residual stream's scale. */
static void trace_observe_resid(void *user, int layer, ResidPoint point, const float *resid, int T, int C) {
    TraceCapture *c = user;
    size_t n = (size_t)T * C, at = (size_t)layer * n;
    if (point == RESID_PRE) memcpy(c->resid_pre + at, resid, sizeof(float) * n);
    else if (point == RESID_POST) memcpy(c->resid_post + at, resid, sizeof(float) * n);
    else
        for (size_t i = 0; i < n; i++) c->attn_out[at + i] = resid[i] - c->resid_pre[at + i];
}

static int write_ids_json(const char *path, const int32_t *ids, int T, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, "cannot create '%s': %s", path, strerror(errno));
    fputc('[', f);
    for (int t = 0; t < T; t++) fprintf(f, t ? ", %d" : "%d", ids[t]);
    fputs("]\n", f);
    if (fclose(f) != 0) return err_set(err, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

typedef struct {
    const char *ids_path, *text, *file, *out, *model;
    const char *noffn_layers, *zero, *set;
    long ctx; /* 0: n_positions */
    int bos, noffn;
} TraceOptions;

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int trace_options(int argc, char **argv, TraceOptions *o) {
    *o = (TraceOptions){.bos = 1};
    const CliOption opts[] = {CLI_OPT_STRING("ids", &o->ids_path),
                              CLI_OPT_STRING("text", &o->text),
                              CLI_OPT_STRING("file", &o->file),
                              CLI_OPT_CLEAR("no-bos", &o->bos),
                              CLI_OPT_STRING("out", &o->out),
                              CLI_OPT_SET("no-ffn", &o->noffn),
                              CLI_OPT_STRING("no-ffn-layers", &o->noffn_layers),
                              CLI_OPT_STRING("zero", &o->zero),
                              CLI_OPT_STRING("set", &o->set),
                              CLI_OPT_STRING("model", &o->model),
                              CLI_OPT_COUNT("ctx", &o->ctx, 1, 1 << 20),
                              CLI_OPT_END};
    int rc = cli_parse(argc, argv, usage_text, opts, NULL);
    if (rc >= 0) return rc;
    if (!!o->ids_path + !!o->text + !!o->file != 1) return cli_usage_error("give exactly one of --ids, --text, --file");
    if (!o->out) return cli_usage_error("--out DIR is required");
    return -1;
}

/* The ids to trace: --ids as given, else --text / --file tokenized (with
 * <|endoftext|> first unless --no-bos). *ids is malloc'd. */
static int trace_input(const TraceOptions *o, const Model *m, int32_t **ids, int *T, char *err) {
    if (o->ids_path) return ids_read_json(o->ids_path, ids, T, err);
    char *data = NULL;
    size_t len = 0;
    if (o->file && file_read_all(o->file, &data, &len, err)) return -1;
    TokBuf b = {0};
    int bad = tok_encode(m->tok, o->file ? data : o->text, o->file ? len : strlen(o->text), &b);
    free(data);
    *T = (int)b.n + o->bos;
    *ids = bad ? NULL : malloc(sizeof **ids * (size_t)(*T > 0 ? *T : 1));
    if (*ids) {
        if (o->bos) (*ids)[0] = TOK_EOT;
        if (b.n) memcpy(*ids + o->bos, b.ids, sizeof **ids * b.n); /* b.ids is NULL for "" */
    }
    tok_buf_free(&b);
    return *ids ? 0 : err_set(err, "out of memory");
}

/* dir/name into path[cap]; -1 with a message when it does not fit. */
static int path_join(char *path, size_t cap, const char *dir, const char *name, char *err) {
    int n = snprintf(path, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap ? 0 : err_set(err, "path too long: '%s/%s'", dir, name);
}

/* Writes dir/NAME_L.npy (l >= 0) or dir/NAME.npy: float32 [rows, cols], or
 * [rows] when cols is 0. */
static int npy_write_2d(const char *dir, const char *name, int l, const float *data, int64_t rows, int64_t cols,
                        char *err) {
    char file[64], path[4400];
    if (l >= 0) snprintf(file, sizeof file, "%s_%d.npy", name, l);
    else snprintf(file, sizeof file, "%s.npy", name);
    if (path_join(path, sizeof path, dir, file, err)) return -1;
    int64_t shape[2] = {rows, cols};
    return npy_write_f32(path, data, cols ? 2 : 1, shape, err);
}

static int dir_make(const char *dir, char *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return err_set(err, "cannot create '%s': %s", dir, strerror(errno));
    return 0;
}

/* Writes one window's files into out: ffn_L, resid_pre_L, attn_out_L,
 * resid_post_L for every layer, logits, loss, ids.json. */
static int trace_write(const char *out, const TraceCapture *cap, int L, const float *logits, int V,
                       const float *loss, const int32_t *ids, char *err) {
    const int T = cap->T, F = cap->F, C = cap->C;
    if (dir_make(out, err)) return -1;
    for (int l = 0; l < L; l++) {
        size_t at = (size_t)l * T * C;
        if (npy_write_2d(out, "ffn", l, cap->acts + (size_t)l * T * F, T, F, err) ||
            npy_write_2d(out, "resid_pre", l, cap->resid_pre + at, T, C, err) ||
            npy_write_2d(out, "attn_out", l, cap->attn_out + at, T, C, err) ||
            npy_write_2d(out, "resid_post", l, cap->resid_post + at, T, C, err))
            return -1;
    }
    if (npy_write_2d(out, "logits", -1, logits, T, V, err) || npy_write_2d(out, "loss", -1, loss, T - 1, 0, err))
        return -1;
    char path[4400];
    return path_join(path, sizeof path, out, "ids.json", err) || write_ids_json(path, ids, T, err) ? -1 : 0;
}

/* DIR/windows.json: [{"window": 0, "dir": "w0", "start": s, "len": n,
 * "first_new": f}, ...] in sequence positions (windows_plan's). */
static int write_windows_json(const char *out, const Window *win, int nw, char *err) {
    char path[4400];
    if (path_join(path, sizeof path, out, "windows.json", err)) return -1;
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, "cannot create '%s': %s", path, strerror(errno));
    fputs("[\n", f);
    for (int w = 0; w < nw; w++)
        fprintf(f, "  {\"window\": %d, \"dir\": \"w%d\", \"start\": %d, \"len\": %d, \"first_new\": %d}%s\n", w, w,
                win[w].start, win[w].len, win[w].first_new, w + 1 < nw ? "," : "");
    fputs("]\n", f);
    if (fclose(f) != 0) return err_set(err, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

/* What a trace holds: the interventions, the windows and one window's
 * buffers (sized for the largest). */
typedef struct {
    uint8_t *remove, *capture; /* [L] */
    NeuronEdit *edits;
    int n_edits;
    int ctx, nw;
    Window *win;               /* [nw] */
    TraceCapture cap;
    float *logits, *loss;      /* [W x V], [W] */
} Trace;

static void trace_free(Trace *t) {
    free(t->remove);
    free(t->capture);
    free(t->edits);
    free(t->win);
    free(t->cap.acts);
    free(t->cap.resid_pre);
    free(t->cap.attn_out);
    free(t->cap.resid_post);
    free(t->logits);
    free(t->loss);
}

/* --ctx and the interventions, checked against the model before any work.
 * -1 to go on, else the exit code after the error. */
static int trace_setup(const TraceOptions *o, const ModelConfig *cfg, Trace *t) {
    const int L = cfg->n_layer;
    char err[PROBE_ERR_LEN];
    if (o->ctx > cfg->n_positions)
        return cli_usage_error("--ctx %ld is above the model's n_positions %d", o->ctx, cfg->n_positions);
    t->ctx = o->ctx ? (int)o->ctx : cfg->n_positions;
    t->remove = calloc((size_t)L, 1);
    t->capture = malloc((size_t)L);
    if (!t->remove || !t->capture) return cli_error(PROBE_EXIT_RUNTIME, "out of memory");
    memset(t->capture, 1, (size_t)L);
    if (o->noffn) memset(t->remove, 1, (size_t)L);
    if ((o->noffn_layers && parse_layer_list(o->noffn_layers, L, t->remove, err)) ||
        (o->zero && parse_neuron_list(o->zero, cfg, 0.0f, &t->edits, &t->n_edits, err)) ||
        (o->set && parse_neuron_sets(o->set, cfg, &t->edits, &t->n_edits, err)))
        return cli_usage_error("%s", err);
    return -1;
}

/* The windows of record (text/corpus.h) over T tokens, and the buffers of
 * the largest. */
static int trace_plan(const ModelConfig *cfg, int T, Trace *t, char *err) {
    const int L = cfg->n_layer, F = cfg->n_inner, C = cfg->n_embd, V = cfg->vocab_size;
    int W = T < t->ctx ? T : t->ctx;
    size_t nc = (size_t)L * W * C;
    t->nw = windows_count(T, t->ctx);
    t->win = malloc(sizeof *t->win * (size_t)t->nw);
    t->cap.acts = malloc(sizeof(float) * (size_t)L * W * F);
    t->cap.resid_pre = malloc(sizeof(float) * nc);
    t->cap.attn_out = malloc(sizeof(float) * nc);
    t->cap.resid_post = malloc(sizeof(float) * nc);
    t->logits = malloc(sizeof(float) * (size_t)W * V);
    t->loss = malloc(sizeof(float) * (size_t)W);
    if (!t->win || !t->cap.acts || !t->cap.resid_pre || !t->cap.attn_out || !t->cap.resid_post || !t->logits ||
        !t->loss)
        return err_set(err, "out of memory");
    windows_plan(T, t->ctx, t->win);
    t->cap.F = F;
    t->cap.C = C;
    return 0;
}

/* Runs every window and writes its files: into out itself for one window,
 * else into out/wI/ beside ids.json and windows.json. *mean is the mean
 * loss, each predicted token counted once, in the window that owns it. */
static int trace_windows(Model *m, const char *out, const int32_t *ids, int T, Trace *t, double *mean, char *err) {
    const int L = m->cfg.n_layer, V = m->cfg.vocab_size, nw = t->nw;
    ForwardHooks hooks = {.capture = t->capture, .observe = trace_observe, .user = &t->cap, .remove_ffn = t->remove,
                          .edits = t->edits, .n_edits = t->n_edits, .observe_resid = trace_observe_resid};
    if (nw > 1) {
        char path[4400];
        if (dir_make(out, err) || path_join(path, sizeof path, out, "ids.json", err) ||
            write_ids_json(path, ids, T, err) || write_windows_json(out, t->win, nw, err))
            return -1;
    }
    double sum = 0;
    int n_loss = 0;
    for (int w = 0; w < nw; w++) {
        const int32_t *wids = ids + t->win[w].start;
        t->cap.T = t->win[w].len;
        if (model_forward(m, wids, t->cap.T, &hooks, t->logits, err)) return -1;
        for (int i = 0; i + 1 < t->cap.T; i++) {
            t->loss[i] = (float)logits_nll(t->logits + (size_t)i * V, V, wids[i + 1]);
            if (t->win[w].start + i + 1 >= t->win[w].first_new) {
                sum += t->loss[i];
                n_loss++;
            }
        }
        char wdir[4400], wname[32];
        snprintf(wname, sizeof wname, "w%d", w);
        if (nw > 1 && path_join(wdir, sizeof wdir, out, wname, err)) return -1;
        if (trace_write(nw > 1 ? wdir : out, &t->cap, L, t->logits, V, t->loss, wids, err)) return -1;
    }
    *mean = n_loss ? sum / n_loss : 0.0;
    return 0;
}

int cmd_trace(int argc, char **argv) {
    TraceOptions o;
    int rc = trace_options(argc, argv, &o);
    if (rc >= 0) return rc;

    char err[PROBE_ERR_LEN];
    const char *dir = model_dir_resolve(o.model);
    Model *m = o.ids_path ? model_load_weights(dir, err) : model_load(dir, err);
    int32_t *ids = NULL;
    int T = 0;
    double mean = 0;
    Trace t = {0};
    if (!m) goto fail;
    if ((rc = trace_setup(&o, &m->cfg, &t)) >= 0) goto done;
    if (trace_input(&o, m, &ids, &T, err)) goto fail;
    if (T < 1) {
        err_set(err, "%s has 0 tokens; a trace needs at least 1", o.ids_path ? o.ids_path : o.file ? o.file : "--text");
        goto fail;
    }
    if (trace_plan(&m->cfg, T, &t, err) || trace_windows(m, o.out, ids, T, &t, &mean, err)) goto fail;
    if (t.nw > 1)
        fprintf(stderr, "traced %d tokens in %d windows of up to %d, mean loss %.4f nats, wrote %s/w0..w%d/\n", T,
                t.nw, t.ctx, mean, o.out, t.nw - 1);
    else
        fprintf(stderr, "traced %d tokens, mean loss %.4f nats, wrote %s/\n", T, mean, o.out);
    rc = PROBE_EXIT_OK;
    goto done;
fail:
    print_error(err);
    rc = PROBE_EXIT_RUNTIME;
done:
    free(ids);
    trace_free(&t);
    model_free(m);
    return rc;
}
