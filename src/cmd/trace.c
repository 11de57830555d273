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

int cmd_trace(int argc, char **argv) {
    enum { O_IDS = 1, O_TEXT, O_FILE, O_NOBOS, O_OUT, O_NOFFN, O_NOFFNL, O_ZERO, O_SET, O_MODEL, O_HELP };
    static const struct option opts[] = {
        {"ids", required_argument, 0, O_IDS},         {"text", required_argument, 0, O_TEXT},
        {"file", required_argument, 0, O_FILE},       {"no-bos", no_argument, 0, O_NOBOS},
        {"out", required_argument, 0, O_OUT},         {"no-ffn", no_argument, 0, O_NOFFN},
        {"no-ffn-layers", required_argument, 0, O_NOFFNL}, {"zero", required_argument, 0, O_ZERO},
        {"set", required_argument, 0, O_SET},         {"model", required_argument, 0, O_MODEL},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
    const char *ids_path = NULL, *text = NULL, *file = NULL, *out = NULL, *model_opt = NULL;
    const char *noffn_layers = NULL, *zero = NULL, *set = NULL;
    int bos = 1, noffn = 0, o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_IDS: ids_path = optarg; break;
        case O_TEXT: text = optarg; break;
        case O_FILE: file = optarg; break;
        case O_NOBOS: bos = 0; break;
        case O_OUT: out = optarg; break;
        case O_NOFFN: noffn = 1; break;
        case O_NOFFNL: noffn_layers = optarg; break;
        case O_ZERO: zero = optarg; break;
        case O_SET: set = optarg; break;
        case O_MODEL: model_opt = optarg; break;
        case O_HELP: return cli_help(usage_text);
        default: return cli_bad_option(argv);
        }
    }
    if (optind < argc) return cli_extra_argument(argv[optind]);
    if (!!ids_path + !!text + !!file != 1) return cli_usage_error("give exactly one of --ids, --text, --file");
    if (!out) return cli_usage_error("--out DIR is required");

    char err[PROBE_ERR_LEN];
    int rc = PROBE_EXIT_RUNTIME;
    const char *dir = model_dir_resolve(model_opt);
    Model *m = ids_path ? model_load_weights(dir, err) : model_load(dir, err);
    int32_t *ids = NULL;
    int T = 0;
    uint8_t *remove = NULL;
    NeuronEdit *edits = NULL;
    int n_edits = 0;
    float *logits = NULL, *loss = NULL;
    TraceCapture cap = {0};
    uint8_t *capture = NULL;
    if (!m) goto fail;
    const ModelConfig *cfg = &m->cfg;
    int L = cfg->n_layer, F = cfg->n_inner, V = cfg->vocab_size;

    /* interventions: usage errors before any work */
    remove = calloc((size_t)L, 1);
    capture = malloc((size_t)L);
    if (!remove || !capture) goto oom;
    memset(capture, 1, (size_t)L);
    if (noffn) memset(remove, 1, (size_t)L);
    if ((noffn_layers && parse_layer_list(noffn_layers, L, remove, err)) ||
        (zero && parse_neuron_list(zero, cfg, 0.0f, &edits, &n_edits, err)) ||
        (set && parse_neuron_sets(set, cfg, &edits, &n_edits, err))) {
        rc = cli_usage_error("%s", err);
        goto done;
    }

    if (ids_path) {
        if (ids_read_json(ids_path, &ids, &T, err)) goto fail;
    } else {
        char *data = NULL;
        size_t len = 0;
        if (file) {
            if (file_read_all(file, &data, &len, err)) goto fail;
        }
        TokBuf b = {0};
        int bad = tok_encode(m->tok, file ? data : text, file ? len : strlen(text), &b);
        free(data);
        T = (int)b.n + bos;
        ids = bad ? NULL : malloc(sizeof *ids * (size_t)(T > 0 ? T : 1));
        if (ids) {
            if (bos) ids[0] = TOK_EOT;
            memcpy(ids + bos, b.ids, sizeof *ids * b.n);
        }
        tok_buf_free(&b);
        if (!ids) goto oom;
    }
    if (T < 1 || T > cfg->n_positions) {
        err_set(err, "%s has %d tokens; a trace needs 1..%d (n_positions)",
                ids_path ? ids_path : file ? file : "--text", T, cfg->n_positions);
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
    for (int t = 0; t + 1 < T; t++) {
        const float *row = logits + (size_t)t * V;
        loss[t] = (float)logits_nll(row, V, ids[t + 1]);
    }

    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        err_set(err, "cannot create '%s': %s", out, strerror(errno));
        goto fail;
    }
    char path[4300];
    for (int l = 0; l < L; l++) {
        snprintf(path, sizeof path, "%s/ffn_%d.npy", out, l);
        int64_t shape[2] = {T, F};
        if (npy_write_f32(path, cap.acts + (size_t)l * T * F, 2, shape, err)) goto fail;
    }
    int64_t lshape[2] = {T, V}, sshape[1] = {T - 1};
    snprintf(path, sizeof path, "%s/logits.npy", out);
    if (npy_write_f32(path, logits, 2, lshape, err)) goto fail;
    snprintf(path, sizeof path, "%s/loss.npy", out);
    if (npy_write_f32(path, loss, 1, sshape, err)) goto fail;
    snprintf(path, sizeof path, "%s/ids.json", out);
    if (write_ids_json(path, ids, T, err)) goto fail;
    double mean = 0;
    for (int t = 0; t + 1 < T; t++) mean += loss[t];
    fprintf(stderr, "traced %d tokens, mean loss %.4f nats, wrote %s/\n", T, T > 1 ? mean / (T - 1) : 0.0, out);
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
