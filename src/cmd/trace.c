/* cmd_trace.c — `probe trace`: run one text through the model, with optional
 * interventions, and write what it computed as NumPy files.
 *
 *   probe trace --text "The cat sat" --out run/ --zero 3:100
 *   python3 -c "import numpy; a = numpy.load('run/ffn_3.npy')"
 *
 * Writes DIR/ffn_L.npy (float32 [T, n_inner], the post-activation of layer
 * L after edits: TransformerLens blocks.L.mlp.hook_post), DIR/logits.npy
 * (float32 [T, vocab]), DIR/loss.npy (float32 [T-1], next-token
 * cross-entropy in nats) and DIR/ids.json. */
#include <errno.h>
#include <getopt.h>
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
    "Runs one window through the model and writes DIR/ffn_L.npy for every layer L\n"
    "(float32 [T, n_inner], FFN post-activation = blocks.L.mlp.hook_post),\n"
    "DIR/logits.npy (float32 [T, vocab]), DIR/loss.npy (float32 [T-1]) and DIR/ids.json.\n"
    "\n"
    "  --ids FILE.json       a JSON array of token ids (used as is, no BOS added)\n"
    "  --text STRING         text to tokenize (<|endoftext|> is prepended)\n"
    "  --file FILE           text file to tokenize (<|endoftext|> is prepended)\n"
    "  --no-bos              do not prepend <|endoftext|> to --text/--file\n"
    "  --out DIR             output directory (created if missing)\n"
    "  --no-ffn              remove every layer's FFN (output not added to the residual)\n"
    "  --no-ffn-layers LIST  remove the FFN of these layers, e.g. 3,5-7\n"
    "  --zero LIST           zero these neurons' post-activation, e.g. 3:100,5:2000\n"
    "  --set LIST            set neurons to values, e.g. 5:7=1.5\n"
    "  --model DIR           model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --help                this text\n";

typedef struct {
    float *acts; /* [L x T x F] */
    int T, F;
} TraceCapture;

static void trace_observe(void *user, int layer, const float *act, int T, int F) {
    TraceCapture *c = user;
    memcpy(c->acts + (size_t)layer * T * F, act, sizeof(float) * (size_t)T * F);
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
    int bos, noffn;
} TraceOptions;

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int trace_options(int argc, char **argv, TraceOptions *o) {
    enum { O_IDS = 1, O_TEXT, O_FILE, O_NOBOS, O_OUT, O_NOFFN, O_NOFFNL, O_ZERO, O_SET, O_MODEL, O_HELP };
    static const struct option opts[] = {
        {"ids", required_argument, 0, O_IDS},         {"text", required_argument, 0, O_TEXT},
        {"file", required_argument, 0, O_FILE},       {"no-bos", no_argument, 0, O_NOBOS},
        {"out", required_argument, 0, O_OUT},         {"no-ffn", no_argument, 0, O_NOFFN},
        {"no-ffn-layers", required_argument, 0, O_NOFFNL}, {"zero", required_argument, 0, O_ZERO},
        {"set", required_argument, 0, O_SET},         {"model", required_argument, 0, O_MODEL},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    *o = (TraceOptions){.bos = 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_IDS: o->ids_path = optarg; break;
        case O_TEXT: o->text = optarg; break;
        case O_FILE: o->file = optarg; break;
        case O_NOBOS: o->bos = 0; break;
        case O_OUT: o->out = optarg; break;
        case O_NOFFN: o->noffn = 1; break;
        case O_NOFFNL: o->noffn_layers = optarg; break;
        case O_ZERO: o->zero = optarg; break;
        case O_SET: o->set = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind < argc) return cli_extra_argument(argv[optind]);
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

/* Writes OUT/ffn_L.npy for every layer, logits.npy, loss.npy, ids.json. */
static int trace_write(const char *out, const TraceCapture *cap, int L, const float *logits, int V,
                       const float *loss, const int32_t *ids, char *err) {
    const int T = cap->T, F = cap->F;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return err_set(err, "cannot create '%s': %s", out, strerror(errno));
    char path[4300];
    for (int l = 0; l < L; l++) {
        snprintf(path, sizeof path, "%s/ffn_%d.npy", out, l);
        int64_t shape[2] = {T, F};
        if (npy_write_f32(path, cap->acts + (size_t)l * T * F, 2, shape, err)) return -1;
    }
    int64_t lshape[2] = {T, V}, sshape[1] = {T - 1};
    snprintf(path, sizeof path, "%s/logits.npy", out);
    if (npy_write_f32(path, logits, 2, lshape, err)) return -1;
    snprintf(path, sizeof path, "%s/loss.npy", out);
    if (npy_write_f32(path, loss, 1, sshape, err)) return -1;
    snprintf(path, sizeof path, "%s/ids.json", out);
    return write_ids_json(path, ids, T, err);
}

int cmd_trace(int argc, char **argv) {
    TraceOptions o;
    int rc = trace_options(argc, argv, &o);
    if (rc >= 0) return rc;

    char err[PROBE_ERR_LEN];
    rc = PROBE_EXIT_RUNTIME;
    const char *dir = model_dir_resolve(o.model);
    Model *m = o.ids_path ? model_load_weights(dir, err) : model_load(dir, err);
    int32_t *ids = NULL;
    int T = 0;
    uint8_t *remove = NULL, *capture = NULL;
    NeuronEdit *edits = NULL;
    int n_edits = 0;
    float *logits = NULL, *loss = NULL;
    TraceCapture cap = {0};
    if (!m) goto fail;
    const ModelConfig *cfg = &m->cfg;
    int L = cfg->n_layer, F = cfg->n_inner, V = cfg->vocab_size;

    /* interventions: usage errors before any work */
    remove = calloc((size_t)L, 1);
    capture = malloc((size_t)L);
    if (!remove || !capture) goto oom;
    memset(capture, 1, (size_t)L);
    if (o.noffn) memset(remove, 1, (size_t)L);
    if ((o.noffn_layers && parse_layer_list(o.noffn_layers, L, remove, err)) ||
        (o.zero && parse_neuron_list(o.zero, cfg, 0.0f, &edits, &n_edits, err)) ||
        (o.set && parse_neuron_sets(o.set, cfg, &edits, &n_edits, err))) {
        rc = cli_usage_error("%s", err);
        goto done;
    }
    if (trace_input(&o, m, &ids, &T, err)) goto fail;
    if (T < 1 || T > cfg->n_positions) {
        err_set(err, "%s has %d tokens; a trace needs 1..%d (n_positions)",
                o.ids_path ? o.ids_path : o.file ? o.file : "--text", T, cfg->n_positions);
        goto fail;
    }

    cap.acts = malloc(sizeof(float) * (size_t)L * T * F);
    logits = malloc(sizeof(float) * (size_t)T * V);
    loss = malloc(sizeof(float) * (size_t)(T > 1 ? T - 1 : 1));
    if (!cap.acts || !logits || !loss) goto oom;
    cap.T = T;
    cap.F = F;
    ForwardHooks hooks = {.capture = capture, .observe = trace_observe, .user = &cap,
                          .remove_ffn = remove, .edits = edits, .n_edits = n_edits};
    if (model_forward(m, ids, T, &hooks, logits, err)) goto fail;
    double mean = 0;
    for (int t = 0; t + 1 < T; t++) {
        loss[t] = (float)logits_nll(logits + (size_t)t * V, V, ids[t + 1]);
        mean += loss[t];
    }
    if (trace_write(o.out, &cap, L, logits, V, loss, ids, err)) goto fail;
    fprintf(stderr, "traced %d tokens, mean loss %.4f nats, wrote %s/\n", T, T > 1 ? mean / (T - 1) : 0.0, o.out);
    rc = PROBE_EXIT_OK;
    goto done;
oom:
    err_set(err, "out of memory");
fail:
    print_error(err);
    rc = PROBE_EXIT_RUNTIME;
done:
    free(ids);
    free(remove);
    free(capture);
    free(edits);
    free(cap.acts);
    free(logits);
    free(loss);
    model_free(m);
    return rc;
}
