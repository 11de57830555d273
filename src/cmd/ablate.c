/* cmd_ablate.c — `probe ablate`: remove FFNs or neurons and measure what
 * the model loses on a corpus.
 *
 *   probe ablate examples/heldout_mobydick.txt --sweep layers
 *   probe ablate corpus.txt --neurons 5:123,5:456 --mode mean --db probe.db
 *   sqlite3 probe.db 'SELECT * FROM ablation_summary'
 *
 * The corpus is cut into the same documents and windows as `probe record`
 * (src/corpus.h); every token of a document is predicted once (the first one
 * from the <|endoftext|> before it; with --no-bos the first is not predicted),
 * in the window that owns it. Per window the baseline forward runs once and is
 * shared by every condition (ablate.h). Results go to the database (one
 * ablation row, one row per condition, one row per condition and token) in
 * one transaction at the end, so an interrupted run leaves nothing behind. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablate.h"
#include "commands.h"
#include "corpus.h"
#include "intervention.h"
#include "model.h"
#include "progress.h"
#include "store.h"
#include "utf8.h"
#include "util.h"

static const char *usage_text =
    "usage: probe ablate [CORPUS | --run ID] CONDITION [options]\n"
    "\n"
    "Runs the corpus with and without an intervention and reports, per condition,\n"
    "the baseline and ablated next-token cross-entropy (nats/token), perplexity,\n"
    "delta loss, KL(baseline || ablated) averaged over tokens and the fraction of\n"
    "tokens whose top-1 prediction is unchanged.\n"
    "\n"
    "CONDITION (exactly one):\n"
    "  --no-ffn              remove the FFN of every layer\n"
    "  --layers LIST         remove the FFN of these layers, e.g. 3,5-7 (0-based)\n"
    "  --neurons LIST        ablate these neurons, e.g. 5:123,5:456 (layer:neuron)\n"
    "  --sweep layers        remove each layer's FFN in turn, one row per layer\n"
    "\n"
    "  --mode zero|mean      zero (default): --neurons sets the post-activation to 0,\n"
    "                        --no-ffn/--layers/--sweep drop the FFN output (c_proj and\n"
    "                        its bias) from the residual stream. mean: every ablated\n"
    "                        neuron (all neurons of an ablated layer) is set to its mean\n"
    "                        recorded in the database for this model, so the FFN\n"
    "                        outputs its mean instead of its input-dependent value\n"
    "  --stats-run ID        mean mode: take the means from this recorded run (default:\n"
    "                        the latest complete run of the same model)\n"
    "  CORPUS                text file (documents separated by blank lines), .jsonl with\n"
    "                        a \"text\" field, or - for stdin\n"
    "  --split MODE          paragraph (default), line or file\n"
    "  --run ID              the documents and tokens of recorded run ID in the database\n"
    "                        instead of a corpus file (with its <|endoftext|> setting)\n"
    "  --db FILE             database for the results (default probe.db)\n"
    "  --no-db               do not store the results\n"
    "  --ctx N               context window (default n_positions); longer documents are\n"
    "                        cut into windows as in `probe record`\n"
    "  --no-bos              do not start documents with <|endoftext|>\n"
    "  --model DIR           model directory (default $PROBE_MODEL, else models/demo)\n"
    "  --json                print the results as JSON\n"
    "  --quiet               no progress output\n"
    "  --help                this text\n"
    "\n"
    "Stored in tables ablations, ablation_conditions, ablation_tokens; the view\n"
    "ablation_summary ranks conditions by delta loss.\n";

/* ---- conditions -------------------------------------------------------- */

typedef struct {
    char label[96];
    int layer;         /* the single ablated layer, or -1 */
    uint8_t *layers;   /* [L] layers whose FFN is ablated (removed or mean) */
    uint8_t *remove;   /* [L] */
    NeuronEdit *edits; /* owned */
    int n_edits;
    ForwardHooks hooks;
    AblateTotals tot;
    /* per-token effects, kept only when storing */
    TokenEffect *eff;
    int32_t *eff_doc; /* document of each effect */
    size_t n_eff, cap_eff;
} Condition;

typedef struct {
    Condition *c;
    int n;
} Conditions;

static void conditions_free(Conditions *cs) {
    for (int i = 0; i < cs->n; i++) {
        free(cs->c[i].layers);
        free(cs->c[i].remove);
        free(cs->c[i].edits);
        free(cs->c[i].eff);
        free(cs->c[i].eff_doc);
    }
    free(cs->c);
    cs->c = NULL;
    cs->n = 0;
}

static Condition *condition_add(Conditions *cs, int L, const char *label, int layer) {
    Condition *grown = realloc(cs->c, sizeof *cs->c * (size_t)(cs->n + 1));
    if (!grown) return NULL;
    cs->c = grown;
    Condition *c = &cs->c[cs->n];
    memset(c, 0, sizeof *c);
    cs->n++;
    c->layers = calloc((size_t)L, 1);
    c->remove = calloc((size_t)L, 1);
    if (!c->layers || !c->remove) return NULL;
    snprintf(c->label, sizeof c->label, "%s", label);
    c->layer = layer;
    return c;
}

/* Ablates the layers in mask: removal (zero mode) or every neuron set to its
 * mean (mean mode; means is [L x F]). */
static int condition_layers(Condition *c, const ModelConfig *cfg, const uint8_t *mask, const float *means,
                            char *err) {
    int L = cfg->n_layer, F = cfg->n_inner;
    for (int l = 0; l < L; l++) {
        if (!mask[l]) continue;
        c->layers[l] = 1;
        if (!means) {
            c->remove[l] = 1;
            continue;
        }
        NeuronEdit *grown = realloc(c->edits, sizeof *grown * (size_t)(c->n_edits + F));
        if (!grown) return err_set(err, "out of memory");
        c->edits = grown;
        for (int n = 0; n < F; n++) c->edits[c->n_edits++] = (NeuronEdit){l, n, means[(size_t)l * F + n]};
    }
    return 0;
}

static void condition_finish(Condition *c) {
    c->hooks = (ForwardHooks){.remove_ffn = c->remove, .edits = c->edits, .n_edits = c->n_edits};
}

static int condition_keep(Condition *c, const TokenEffect *eff, int n, int doc, int offset) {
    if (c->n_eff + (size_t)n > c->cap_eff) {
        size_t cap = c->cap_eff ? c->cap_eff * 2 : 4096;
        while (cap < c->n_eff + (size_t)n) cap *= 2;
        TokenEffect *e = realloc(c->eff, sizeof *e * cap);
        if (!e) return -1;
        c->eff = e;
        int32_t *d = realloc(c->eff_doc, sizeof *d * cap);
        if (!d) return -1;
        c->eff_doc = d;
        c->cap_eff = cap;
    }
    for (int i = 0; i < n; i++) {
        c->eff[c->n_eff] = eff[i];
        c->eff[c->n_eff].pos += offset; /* window index -> document position */
        c->eff_doc[c->n_eff++] = doc;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------ */

typedef struct {
    const char *model_dir, *source;
    const char *kind, *spec; /* ablations.kind / .spec */
    uint64_t model_checksum, source_checksum;
    int64_t source_run_id;   /* 0 for a corpus file */
    int64_t stats_run_id;    /* run whose neuron means were used (mean mode) */
    int documents, ctx, mean_mode, bos, n_layer;
    int64_t tokens;
    double seconds;
    int64_t ablation_id; /* 0 when not stored */
    const char *db_path;
} RunInfo;

static void print_table(const RunInfo *ri, const Conditions *cs) {
    printf("ablation of %s on %s: %" PRId64 " predicted tokens in %d documents, context %d, %s\n",
           ri->model_dir, ri->source, ri->tokens, ri->documents, ri->ctx,
           ri->mean_mode ? "mean ablation" : "zero ablation");
    if (ri->stats_run_id) printf("neuron means from recorded run %" PRId64 "\n", ri->stats_run_id);
    int w = 9;
    for (int i = 0; i < cs->n; i++) {
        int n = (int)strlen(cs->c[i].label);
        if (n > w) w = n;
    }
    printf("\n%-*s  %8s  %8s  %8s  %7s  %9s  %10s  %8s  %7s\n", w, "condition", "base CE", "abl CE",
           "dloss", "+/- se", "base ppl", "abl ppl", "KL", "top-1");
    int worst = -1;
    double worst_d = -INFINITY;
    for (int i = 0; i < cs->n; i++) {
        AblateFigures f;
        ablate_figures(&cs->c[i].tot, &f);
        printf("%-*s  %8.4f  %8.4f  %+8.4f  %7.4f  %9.2f  %10.2f  %8.4f  %6.2f%%\n", w, cs->c[i].label,
               f.base_ce, f.abl_ce, f.dloss, f.dloss_se, f.base_ppl, f.abl_ppl, f.kl, 100.0 * f.agreement);
        if (f.dloss > worst_d) {
            worst_d = f.dloss;
            worst = i;
        }
    }
    printf("\nCE: mean next-token cross-entropy, nats/token; dloss = abl CE - base CE; se: its standard\n"
           "error over tokens; KL: mean KL(baseline || ablated), nats/token; top-1: tokens whose most\n"
           "likely next token is unchanged.\n");
    if (cs->n > 1 && worst >= 0) printf("largest loss increase: %s (%+.4f nats/token)\n", cs->c[worst].label, worst_d);
    if (ri->ablation_id)
        printf("stored as ablation %" PRId64 " in '%s' (SELECT * FROM ablation_summary)\n", ri->ablation_id,
               ri->db_path);
}

static int print_json(const RunInfo *ri, const Conditions *cs, const ModelConfig *cfg) {
    cJSON *root = cJSON_CreateObject();
    char hex[32];
    snprintf(hex, sizeof hex, "%016" PRIx64, ri->model_checksum);
    json_add_text(root, "model", ri->model_dir);
    cJSON_AddStringToObject(root, "model_checksum", hex);
    json_add_text(root, "source", ri->source);
    cJSON_AddNumberToObject(root, "documents", ri->documents);
    cJSON_AddNumberToObject(root, "tokens", (double)ri->tokens);
    cJSON_AddNumberToObject(root, "ctx", ri->ctx);
    cJSON_AddStringToObject(root, "mode", ri->mean_mode ? "mean" : "zero");
    if (ri->stats_run_id)
        cJSON_AddNumberToObject(root, "stats_run", (double)ri->stats_run_id);
    else
        cJSON_AddNullToObject(root, "stats_run");
    cJSON_AddNumberToObject(root, "seconds", ri->seconds);
    if (ri->ablation_id) {
        cJSON_AddNumberToObject(root, "ablation_id", (double)ri->ablation_id);
        json_add_text(root, "database", ri->db_path);
    } else {
        cJSON_AddNullToObject(root, "ablation_id");
        cJSON_AddNullToObject(root, "database");
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "conditions");
    for (int i = 0; i < cs->n; i++) {
        const Condition *c = &cs->c[i];
        AblateFigures f;
        ablate_figures(&c->tot, &f);
        cJSON *o = cJSON_CreateObject();
        json_add_text(o, "spec", c->label);
        cJSON *layers = cJSON_AddArrayToObject(o, "layers");
        for (int l = 0; l < cfg->n_layer; l++)
            if (c->layers[l]) cJSON_AddItemToArray(layers, cJSON_CreateNumber(l));
        cJSON_AddNumberToObject(o, "neurons_edited", c->n_edits);
        cJSON_AddNumberToObject(o, "tokens", (double)f.n);
        cJSON_AddNumberToObject(o, "baseline_ce", f.base_ce);
        cJSON_AddNumberToObject(o, "ablated_ce", f.abl_ce);
        cJSON_AddNumberToObject(o, "baseline_ppl", f.base_ppl);
        cJSON_AddNumberToObject(o, "ablated_ppl", f.abl_ppl);
        cJSON_AddNumberToObject(o, "delta_loss", f.dloss);
        cJSON_AddNumberToObject(o, "delta_loss_se", f.dloss_se);
        cJSON_AddNumberToObject(o, "kl", f.kl);
        cJSON_AddNumberToObject(o, "top1_agreement", f.agreement);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) return -1;
    puts(s);
    cJSON_free(s);
    return 0;
}


/* ---- database ---------------------------------------------------------- */

/* The neuron means for mean ablation: from run `want` (when > 0) or from the
 * latest complete run of this model. Fills means [L x F] for the layers in
 * need [L] (others stay 0) and *run. Missing statistics are an error. */
static int load_means(Store *s, uint64_t checksum, int64_t want, const ModelConfig *cfg, const uint8_t *need,
                      float *means, int64_t *run, char *err) {
    char hex[24];
    snprintf(hex, sizeof hex, "%016" PRIx64, checksum);
    sqlite3_stmt *q = store_prepare(s,
                                    want ? "SELECT id, model_checksum FROM runs WHERE id = ?2"
                                         : "SELECT id, model_checksum FROM runs WHERE model_checksum = ?1"
                                           " AND status = 'complete' ORDER BY id DESC LIMIT 1",
                                    err);
    if (!q) return -1;
    sqlite3_bind_text(q, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, want);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE) return store_fail(s, rc, err);
        if (want) return err_set(err, "no run %" PRId64 " in '%s'", want, s->path);
        return err_set(err,
                       "--mode mean: no neuron statistics for this model (checksum %s) in '%s'; "
                       "record a corpus first: probe record CORPUS --db %s",
                       hex, s->path, s->path);
    }
    *run = sqlite3_column_int64(q, 0);
    int same = !strcmp((const char *)sqlite3_column_text(q, 1), hex);
    sqlite3_finalize(q);
    if (!same)
        return err_set(err, "--mode mean: run %" PRId64 " in '%s' was recorded with another model", *run, s->path);
    q = store_prepare(s, "SELECT neuron, mean FROM neuron_stats WHERE run_id = ?1 AND layer = ?2", err);
    if (!q) return -1;
    int F = cfg->n_inner;
    for (int l = 0; l < cfg->n_layer; l++) {
        if (!need[l]) continue;
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, *run);
        sqlite3_bind_int(q, 2, l);
        int got = 0;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            int n = sqlite3_column_int(q, 0);
            if (n >= 0 && n < F) means[(size_t)l * F + n] = (float)sqlite3_column_double(q, 1), got++;
        }
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(q);
            return store_fail(s, rc, err);
        }
        if (got != F) {
            sqlite3_finalize(q);
            return err_set(err,
                           "--mode mean: run %" PRId64 " in '%s' has statistics for %d of the %d neurons of "
                           "layer %d (record it with that layer)",
                           *run, s->path, got, F, l);
        }
    }
    sqlite3_finalize(q);
    return 0;
}

/* Binds the text form (utf8.h) of a NUL-terminated string: paths and specs
 * come from the command line and may be any bytes. */
static int bind_text_form(sqlite3_stmt *st, int i, const char *s) {
    char *text = utf8_text_dup(s, strlen(s), NULL);
    if (!text) return -1;
    sqlite3_bind_text(st, i, text, -1, free);
    return 0;
}

/* Writes the ablation, its conditions and their per-token effects in one
 * transaction; sets *id. Every TEXT value is valid UTF-8 (schema 060). */
static int db_store(Store *s, const RunInfo *ri, const Conditions *cs, const Tokenizer *tk, int64_t *id,
                    char *err) {
    sqlite3_stmt *run = NULL, *cond = NULL, *tok = NULL;
    char hex[2][24], layers[4096];
    Utf8Buf tok_text = {0};
    int rc = -1, st;
    snprintf(hex[0], sizeof hex[0], "%016" PRIx64, ri->model_checksum);
    snprintf(hex[1], sizeof hex[1], "%016" PRIx64, ri->source_checksum);
    if (store_exec(s, "BEGIN IMMEDIATE", err)) return -1;
    if (!(run = store_prepare(s,
                              "INSERT INTO ablations (model_dir, model_checksum, source, source_checksum,"
                              " source_run_id, stats_run_id, kind, spec, mode, ctx, bos, documents, tokens,"
                              " seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                              err)) ||
        !(cond = store_prepare(s,
                               "INSERT INTO ablation_conditions (ablation_id, idx, label, layer, layers,"
                               " neurons_edited, tokens, baseline_ce, ablated_ce, baseline_ppl, ablated_ppl,"
                               " delta_loss, kl, top1_agreement, delta_loss_se)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                               err)) ||
        !(tok = store_prepare(s,
                              "INSERT INTO ablation_tokens (condition_id, doc, pos, token_id, token,"
                              " baseline_loss, ablated_loss, kl, top1_agree)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                              err)))
        goto done;
    if (bind_text_form(run, 1, ri->model_dir) || bind_text_form(run, 3, ri->source) ||
        (ri->spec && bind_text_form(run, 8, ri->spec)))
        goto oom;
    sqlite3_bind_text(run, 2, hex[0], -1, SQLITE_STATIC);
    if (ri->source_run_id)
        sqlite3_bind_int64(run, 5, ri->source_run_id);
    else
        sqlite3_bind_text(run, 4, hex[1], -1, SQLITE_STATIC);
    if (ri->stats_run_id) sqlite3_bind_int64(run, 6, ri->stats_run_id);
    sqlite3_bind_text(run, 7, ri->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(run, 9, ri->mean_mode ? "mean" : "zero", -1, SQLITE_STATIC);
    sqlite3_bind_int(run, 10, ri->ctx);
    sqlite3_bind_int(run, 11, ri->bos);
    sqlite3_bind_int(run, 12, ri->documents);
    sqlite3_bind_int64(run, 13, ri->tokens);
    sqlite3_bind_double(run, 14, ri->seconds);
    if (store_step_done(s, run, err)) goto done;
    int64_t aid = sqlite3_last_insert_rowid(s->db);
    for (int i = 0; i < cs->n; i++) {
        const Condition *c = &cs->c[i];
        AblateFigures f;
        ablate_figures(&c->tot, &f);
        size_t k = 0;
        layers[k++] = '[';
        for (int l = 0; l < ri->n_layer; l++)
            if (c->layers[l] && k < sizeof layers - 16) k += (size_t)snprintf(layers + k, 16, k > 1 ? ",%d" : "%d", l);
        layers[k++] = ']';
        layers[k] = '\0';
        sqlite3_bind_int64(cond, 1, aid);
        sqlite3_bind_int(cond, 2, i);
        if (bind_text_form(cond, 3, c->label)) goto oom;
        if (c->layer >= 0) sqlite3_bind_int(cond, 4, c->layer);
        sqlite3_bind_text(cond, 5, layers, -1, SQLITE_STATIC);
        sqlite3_bind_int(cond, 6, c->n_edits);
        sqlite3_bind_int64(cond, 7, f.n);
        double v[] = {f.base_ce, f.abl_ce, f.base_ppl, f.abl_ppl, f.dloss, f.kl, f.agreement, f.dloss_se};
        for (int j = 0; j < 8; j++) sqlite3_bind_double(cond, 8 + j, v[j]);
        if (store_step_done(s, cond, err)) goto done;
        int64_t cid = sqlite3_last_insert_rowid(s->db);
        for (size_t t = 0; t < c->n_eff; t++) {
            const TokenEffect *e = &c->eff[t];
            sqlite3_bind_int64(tok, 1, cid);
            sqlite3_bind_int(tok, 2, c->eff_doc[t]);
            sqlite3_bind_int(tok, 3, e->pos);
            sqlite3_bind_int(tok, 4, e->token);
            size_t len = 0;
            const char *bytes = tok_token_bytes(tk, e->token, &len);
            const char *text = utf8_text_in(&tok_text, bytes ? bytes : "", bytes ? len : 0, &len);
            if (!text) goto oom;
            sqlite3_bind_text(tok, 5, text, (int)len, SQLITE_STATIC);
            sqlite3_bind_double(tok, 6, e->base_loss);
            sqlite3_bind_double(tok, 7, e->abl_loss);
            sqlite3_bind_double(tok, 8, e->kl);
            sqlite3_bind_int(tok, 9, e->base_top == e->abl_top);
            if (store_step_done(s, tok, err)) goto done;
        }
    }
    if ((st = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        store_fail(s, st, err);
        goto done;
    }
    *id = aid;
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory storing the results in '%s'", s->path);
done:
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    utf8_buf_free(&tok_text);
    sqlite3_finalize(run);
    sqlite3_finalize(cond);
    sqlite3_finalize(tok);
    return rc;
}

/* ---- documents: a corpus file, or the tokens of a recorded run -------- */

typedef struct {
    /* corpus file */
    Corpus *corpus;
    const Tokenizer *tok;
    TokBuf buf;
    /* recorded run: one query over all its tokens in document order */
    Store *store;
    sqlite3_stmt *q;
    int q_row; /* q holds an unread row */
    int q_eof; /* q returned SQLITE_DONE (stepping again would restart it) */
    int bos, next, count, doc_index;
    int32_t *ids; /* [cap] the current document */
    size_t cap;
} DocSource;

static int source_open_corpus(DocSource *s, const char *path, SplitMode split, const Tokenizer *tok, int bos,
                              char *err) {
    s->corpus = corpus_open(path, split, err);
    if (!s->corpus) return -1;
    s->tok = tok;
    s->bos = bos;
    s->count = corpus_count(s->corpus);
    if (s->count == 0) return err_set(err, "empty corpus '%s': no documents", path);
    return 0;
}

/* Sets *bos and the document count from the run's row. */
static int source_open_run(DocSource *s, Store *st, int64_t run, int *bos, char *err) {
    sqlite3_stmt *q = store_prepare(st, "SELECT bos, (SELECT count(*) FROM documents WHERE run_id = ?1)"
                                        " FROM runs WHERE id = ?1", err);
    if (!q) return -1;
    sqlite3_bind_int64(q, 1, run);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *bos = sqlite3_column_int(q, 0);
        s->count = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return err_set(err, "no run %" PRId64 " in '%s'", run, st->path);
    if (rc != SQLITE_ROW) return store_fail(st, rc, err);
    if (s->count == 0) return err_set(err, "run %" PRId64 " in '%s' has no recorded documents", run, st->path);
    s->store = st;
    s->bos = *bos;
    s->q = store_prepare(st, "SELECT d.doc_index, t.token_id FROM documents d JOIN tokens t ON t.doc_id = d.id"
                             " WHERE d.run_id = ?1 ORDER BY d.doc_index, t.pos", err);
    if (!s->q) return -1;
    sqlite3_bind_int64(s->q, 1, run);
    return 0;
}

static void source_close(DocSource *s) {
    corpus_free(s->corpus);
    tok_buf_free(&s->buf);
    sqlite3_finalize(s->q);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

static int source_push(DocSource *s, size_t k, int32_t id, char *err) {
    if (k >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        while (cap <= k) cap *= 2;
        int32_t *g = realloc(s->ids, sizeof *g * cap);
        if (!g) return err_set(err, "out of memory");
        s->ids = g;
        s->cap = cap;
    }
    s->ids[k] = id;
    return 0;
}

/* Sets *ids / *n to the next document's tokens (with <|endoftext|> first
 * when bos) and *doc to its index; returns 1, 0 at the end, -1 on error. */
static int source_next(DocSource *s, int32_t **ids, int *n, int *doc, char *err) {
    size_t k = 0;
    if (s->q) { /* recorded run */
        if (s->q_eof) return 0;
        if (!s->q_row) {
            int rc = sqlite3_step(s->q);
            if (rc == SQLITE_DONE) return 0;
            if (rc != SQLITE_ROW) return store_fail(s->store, rc, err);
        }
        *doc = sqlite3_column_int(s->q, 0);
        if (s->bos && source_push(s, k++, TOK_EOT, err)) return -1;
        int rc;
        do {
            if (source_push(s, k++, sqlite3_column_int(s->q, 1), err)) return -1;
        } while ((rc = sqlite3_step(s->q)) == SQLITE_ROW && sqlite3_column_int(s->q, 0) == *doc);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(s->store, rc, err);
        s->q_row = rc == SQLITE_ROW;
        s->q_eof = rc == SQLITE_DONE;
        s->next++;
    } else {
        if (s->next >= s->count) return 0;
        *doc = s->next;
        const Doc *d = corpus_doc(s->corpus, s->next++);
        s->buf.n = 0;
        if (tok_encode(s->tok, d->text, d->len, &s->buf)) return err_set(err, "out of memory tokenizing");
        if (s->bos && source_push(s, k++, TOK_EOT, err)) return -1;
        if (s->buf.n && source_push(s, k + s->buf.n - 1, 0, err)) return -1;
        memcpy(s->ids + k, s->buf.ids, sizeof *s->ids * s->buf.n);
        k += s->buf.n;
    }
    *ids = s->ids;
    *n = (int)k;
    return 1;
}

/* ---- the command ------------------------------------------------------- */

static int usage_error(const char *msg) {
    fprintf(stderr, "probe ablate: %s\n", msg);
    return PROBE_EXIT_USAGE;
}

/* Runs every condition on every window of every document. Token positions
 * are stored as in `probe record`: the index in the document, not counting
 * the <|endoftext|> placed before it. */
static int ablate_source(Ablator *a, DocSource *src, int ctx, Conditions *cs, int keep, int quiet,
                         RunInfo *ri, char *err) {
    TokenEffect *eff = malloc(sizeof *eff * (size_t)ctx);
    Window *win = NULL;
    Progress *bar = progress_new(!quiet, 0.0);
    int nwin_cap = 0, rc = -1, docs_done = 0;
    if (!eff) goto oom;
    int32_t *ids = NULL;
    int n = 0, got, doc = 0;
    double t0 = now_sec();
    while ((got = source_next(src, &ids, &n, &doc, err)) == 1) {
        int nw = windows_count(n, ctx);
        if (nw > nwin_cap) {
            Window *g = realloc(win, sizeof *g * (size_t)nw);
            if (!g) goto oom;
            win = g;
            nwin_cap = nw;
        }
        windows_plan(n, ctx, win);
        for (int w = 0; w < nw; w++) {
            int from = win[w].first_new - win[w].start;
            if (from < 1) from = 1;
            if (from >= win[w].len) continue;
            if (ablator_baseline(a, ids + win[w].start, win[w].len, from, err)) goto done;
            for (int c = 0; c < cs->n; c++) {
                if (ablator_measure(a, &cs->c[c].hooks, eff, &cs->c[c].tot, err)) goto done;
                if (keep && condition_keep(&cs->c[c], eff, ablator_count(a), doc, win[w].start - src->bos))
                    goto oom;
            }
            ri->tokens += ablator_count(a);
            if (progress_due(bar)) {
                char detail[160], b1[32], b2[32];
                double t = now_sec() - t0;
                snprintf(detail, sizeof detail, "%d/%d docs  %s tokens  %s tok/s  %d condition%s", docs_done + 1,
                         src->count, progress_count(b1, ri->tokens),
                         progress_count(b2, (long long)(ri->tokens / (t > 0 ? t : 1))), cs->n, cs->n > 1 ? "s" : "");
                progress_draw(bar, (docs_done + (w + 1.0) / nw) / src->count, detail);
            }
        }
        docs_done++;
    }
    if (got < 0) goto done;
    ri->documents = docs_done;
    ri->seconds = now_sec() - t0;
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory");
done:
    progress_end(bar);
    free(eff);
    free(win);
    return rc;
}
/* Parses the condition options into cs (values of mean edits are filled in
 * later). Returns 0, or -1 with err set (a usage error). */
static int build_conditions(const ModelConfig *cfg, int no_ffn, const char *layers, const char *neurons,
                            int sweep, const float *means, Conditions *cs, char *err) {
    int L = cfg->n_layer;
    uint8_t *mask = calloc((size_t)L, 1);
    int rc = -1;
    Condition *c;
    if (!mask) return err_set(err, "out of memory");
    if (no_ffn || layers) {
        if (no_ffn)
            memset(mask, 1, (size_t)L);
        else if (parse_layer_list(layers, L, mask, err))
            goto done;
        int single = -1, count = 0;
        for (int l = 0; l < L; l++)
            if (mask[l]) single = l, count++;
        char label[96] = "no-ffn";
        if (!no_ffn) snprintf(label, sizeof label, "%s %.80s", count == 1 ? "layer" : "layers", layers);
        if (!(c = condition_add(cs, L, label, count == 1 ? single : -1))) goto oom;
        if (condition_layers(c, cfg, mask, means, err)) goto done;
    } else if (neurons) {
        if (!(c = condition_add(cs, L, "", -1))) goto oom;
        snprintf(c->label, sizeof c->label, "neurons %.80s", neurons);
        if (parse_neuron_list(neurons, cfg, 0.0f, &c->edits, &c->n_edits, err)) goto done;
        if (means)
            for (int e = 0; e < c->n_edits; e++)
                c->edits[e].value = means[(size_t)c->edits[e].layer * cfg->n_inner + c->edits[e].neuron];
    } else if (sweep) {
        for (int l = 0; l < L; l++) {
            char label[32];
            snprintf(label, sizeof label, "layer %d", l);
            if (!(c = condition_add(cs, L, label, l))) goto oom;
            memset(mask, 0, (size_t)L);
            mask[l] = 1;
            if (condition_layers(c, cfg, mask, means, err)) goto done;
        }
    }
    for (int i = 0; i < cs->n; i++) condition_finish(&cs->c[i]);
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory");
done:
    free(mask);
    return rc;
}

int cmd_ablate(int argc, char **argv) {
    enum { O_NOFFN = 1, O_LAYERS, O_NEURONS, O_SWEEP, O_MODE, O_STATS, O_RUN, O_DB, O_NODB, O_CTX, O_SPLIT,
           O_NOBOS, O_MODEL, O_JSON, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"no-ffn", no_argument, 0, O_NOFFN},         {"layers", required_argument, 0, O_LAYERS},
        {"neurons", required_argument, 0, O_NEURONS}, {"sweep", required_argument, 0, O_SWEEP},
        {"mode", required_argument, 0, O_MODE},       {"stats-run", required_argument, 0, O_STATS},
        {"run", required_argument, 0, O_RUN},         {"db", required_argument, 0, O_DB},
        {"no-db", no_argument, 0, O_NODB},            {"ctx", required_argument, 0, O_CTX},
        {"split", required_argument, 0, O_SPLIT},     {"no-bos", no_argument, 0, O_NOBOS},
        {"model", required_argument, 0, O_MODEL},     {"json", no_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    const char *layers = NULL, *neurons = NULL, *mode = "zero", *run_opt = NULL, *stats_opt = NULL;
    const char *db_path = "probe.db", *ctx_opt = NULL, *split_opt = NULL, *model_opt = NULL, *corpus = NULL;
    int no_ffn = 0, sweep = 0, no_db = 0, bos = 1, no_bos = 0, json = 0, quiet = 0, o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_NOFFN: no_ffn = 1; break;
        case O_LAYERS: layers = optarg; break;
        case O_NEURONS: neurons = optarg; break;
        case O_SWEEP:
            if (strcmp(optarg, "layers")) {
                fprintf(stderr, "probe ablate: bad --sweep '%s': only 'layers' is supported\n", optarg);
                return PROBE_EXIT_USAGE;
            }
            sweep = 1;
            break;
        case O_MODE: mode = optarg; break;
        case O_STATS: stats_opt = optarg; break;
        case O_RUN: run_opt = optarg; break;
        case O_DB: db_path = optarg; break;
        case O_NODB: no_db = 1; break;
        case O_CTX: ctx_opt = optarg; break;
        case O_SPLIT: split_opt = optarg; break;
        case O_NOBOS: no_bos = 1; break;
        case O_MODEL: model_opt = optarg; break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: fputs(usage_text, stdout); return PROBE_EXIT_OK;
        default:
            fprintf(stderr, "probe ablate: unknown or incomplete option '%s' (see probe ablate --help)\n",
                    argv[optind - 1]);
            return PROBE_EXIT_USAGE;
        }
    }
    if (optind < argc) corpus = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "probe ablate: unexpected argument '%s'\n", argv[optind]);
        return PROBE_EXIT_USAGE;
    }
    if (no_ffn + !!layers + !!neurons + sweep != 1)
        return usage_error("give exactly one of --no-ffn, --layers LIST, --neurons LIST, --sweep layers");
    if (!!corpus + !!run_opt != 1) return usage_error("give a CORPUS file or --run ID (not both)");
    if (run_opt && (split_opt || no_bos))
        return usage_error("--split and --no-bos apply to a corpus file; --run uses the run's documents");
    int mean_mode = !strcmp(mode, "mean");
    if (!mean_mode && strcmp(mode, "zero")) {
        fprintf(stderr, "probe ablate: bad --mode '%s': expected zero or mean\n", mode);
        return PROBE_EXIT_USAGE;
    }
    if (stats_opt && !mean_mode) return usage_error("--stats-run applies to --mode mean");
    if (no_db && (mean_mode || run_opt))
        return usage_error("--mode mean and --run read the database; drop --no-db");
    SplitMode split = SPLIT_PARAGRAPH;
    if (!split_opt || !strcmp(split_opt, "paragraph"))
        split = SPLIT_PARAGRAPH;
    else if (!strcmp(split_opt, "line"))
        split = SPLIT_LINE;
    else if (!strcmp(split_opt, "file"))
        split = SPLIT_FILE;
    else {
        fprintf(stderr, "probe ablate: bad --split '%s': expected paragraph, line or file\n", split_opt);
        return PROBE_EXIT_USAGE;
    }
    long run_id = 0, stats_id = 0, ctx_l = 0;
    if (run_opt && parse_long(run_opt, 1, INT32_MAX, &run_id)) {
        fprintf(stderr, "probe ablate: bad --run '%s': expected a run id\n", run_opt);
        return PROBE_EXIT_USAGE;
    }
    if (stats_opt && parse_long(stats_opt, 1, INT32_MAX, &stats_id)) {
        fprintf(stderr, "probe ablate: bad --stats-run '%s': expected a run id\n", stats_opt);
        return PROBE_EXIT_USAGE;
    }
    if (ctx_opt && parse_long(ctx_opt, 2, 1 << 20, &ctx_l)) {
        fprintf(stderr, "probe ablate: bad --ctx '%s': expected an integer >= 2\n", ctx_opt);
        return PROBE_EXIT_USAGE;
    }
    bos = !no_bos;

    char err[PROBE_ERR_LEN], source[64];
    int rc = PROBE_EXIT_RUNTIME;
    const char *dir = model_dir_resolve(model_opt);
    Conditions cs = {0};
    DocSource src = {0};
    Ablator *a = NULL;
    float *means = NULL;
    uint8_t *need = NULL;
    Store *store = NULL;
    Model *m = model_load(dir, err); /* the tokenizer also names stored tokens */
    if (!m) goto fail;
    const ModelConfig *cfg = &m->cfg;
    int ctx = ctx_opt ? (int)ctx_l : cfg->n_positions;
    if (ctx > cfg->n_positions) {
        fprintf(stderr, "probe ablate: bad --ctx %d: the model's context is %d (n_positions)\n", ctx,
                cfg->n_positions);
        rc = PROBE_EXIT_USAGE;
        goto done;
    }
    /* specs are checked before any database or corpus work */
    if (build_conditions(cfg, no_ffn, layers, neurons, sweep, NULL, &cs, err)) {
        fprintf(stderr, "probe ablate: %s\n", err);
        rc = PROBE_EXIT_USAGE;
        goto done;
    }
    if (!no_db && !(store = store_open(db_path, STORE_WRITE, err))) goto fail;
    int64_t stats_run = 0;
    if (mean_mode) { /* the same conditions with every ablated neuron at its mean */
        int L = cfg->n_layer, F = cfg->n_inner;
        means = calloc((size_t)L * F, sizeof *means);
        need = calloc((size_t)L, 1);
        if (!means || !need) goto oom;
        for (int i = 0; i < cs.n; i++) {
            for (int l = 0; l < L; l++) need[l] |= cs.c[i].layers[l];
            for (int e = 0; e < cs.c[i].n_edits; e++) need[cs.c[i].edits[e].layer] = 1;
        }
        if (load_means(store, m->checksum, stats_id ? stats_id : 0, cfg, need, means, &stats_run, err)) goto fail;
        conditions_free(&cs);
        if (build_conditions(cfg, no_ffn, layers, neurons, sweep, means, &cs, err)) goto fail;
    }
    if (run_opt) {
        if (source_open_run(&src, store, run_id, &bos, err)) goto fail;
        snprintf(source, sizeof source, "run:%ld", run_id);
    } else if (source_open_corpus(&src, corpus, split, m->tok, bos, err)) {
        goto fail;
    }
    if (!(a = ablator_new(m, ctx, err))) goto fail;
    RunInfo ri = {.model_dir = dir, .source = run_opt ? source : corpus, .model_checksum = m->checksum,
                  .source_run_id = run_id, .stats_run_id = stats_run, .ctx = ctx, .mean_mode = mean_mode,
                  .bos = bos, .n_layer = cfg->n_layer,
                  .kind = no_ffn ? "no-ffn" : layers ? "layers" : neurons ? "neurons" : "sweep-layers",
                  .spec = layers ? layers : neurons, .db_path = db_path};
    if (src.corpus) ri.source_checksum = corpus_checksum(src.corpus);
    if (ablate_source(a, &src, ctx, &cs, store != NULL, quiet, &ri, err)) goto fail;
    if (ri.tokens == 0) {
        err_set(err, "no predicted tokens in '%s' (every document has at most one token)", ri.source);
        goto fail;
    }
    if (store && db_store(store, &ri, &cs, m->tok, &ri.ablation_id, err)) goto fail;
    if (json ? print_json(&ri, &cs, cfg) : (print_table(&ri, &cs), 0)) goto oom;
    rc = PROBE_EXIT_OK;
    goto done;
oom:
    err_set(err, "out of memory");
fail:
    print_error(err);
    rc = PROBE_EXIT_RUNTIME;
done:
    ablator_free(a);
    source_close(&src);
    conditions_free(&cs);
    free(means);
    free(need);
    store_close(store);
    model_free(m);
    return rc;
}
