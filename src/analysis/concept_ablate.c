/* concept_ablate.c — see concept_ablate.h. */
#include "concept_ablate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "concept_store.h"
#include "run_docs.h"
#include "util.h"

void concept_tokens_free(ConceptTokens *ct) {
    if (!ct) return;
    free(ct->off);
    free(ct->flag);
    memset(ct, 0, sizeof *ct);
}

int concept_tokens_load(Store *s, int64_t run, const Concept *c, ConceptTokens *out, char *err) {
    ConceptRunInfo info;
    if (concept_run_info(s, run, &info, err)) return -1;
    ConceptTokens ct = {.n_docs = info.n_docs};
    ct.off = calloc((size_t)info.n_docs + 1, sizeof *ct.off);
    ct.flag = malloc((size_t)(info.n_tokens > 0 ? info.n_tokens : 1));
    RunDocs *d = ct.off && ct.flag ? run_docs_open(s, run, RUN_DOCS_IDS, err) : NULL;
    if (!d) {
        if (!ct.off || !ct.flag) err_set(err, "out of memory");
        concept_tokens_free(&ct);
        return -1;
    }
    RunDoc doc;
    int got, next = 0;
    int64_t at = 0;
    while ((got = run_docs_next(d, &doc, err)) == 1) {
        /* documents come in doc_index order, 0..n_docs-1 in a complete run */
        if (doc.doc_index != next || at + doc.n > info.n_tokens) {
            err_set(err, "database '%s': run %lld's documents are not numbered 0..%d with %lld tokens", s->path,
                    (long long)run, info.n_docs - 1, (long long)info.n_tokens);
            got = -1;
            break;
        }
        ConceptCursor k;
        concept_cursor_init(&k, doc.bytes, doc.n_bytes);
        ct.off[next] = at;
        for (int i = 0; i < doc.n; i++) {
            uint8_t in = doc.byte_end[i] >= 0 && (size_t)doc.byte_end[i] <= doc.n_bytes &&
                         concept_cursor_match(c, &k, (size_t)doc.byte_end[i]);
            ct.flag[at + i] = in;
            ct.n_in += in;
        }
        at += doc.n;
        next++;
    }
    run_docs_close(d);
    if (got < 0) {
        concept_tokens_free(&ct);
        return -1;
    }
    for (int i = next; i <= ct.n_docs; i++) ct.off[i] = at;
    *out = ct;
    return 0;
}

int concept_tokens_has(const ConceptTokens *ct, int doc, int pos) {
    if (doc < 0 || doc >= ct->n_docs || pos < 0) return 0;
    int64_t i = ct->off[doc] + pos;
    return i < ct->off[doc + 1] && ct->flag[i];
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int concept_random_neurons(const int *layer, const int *neuron, int k, int n_inner, uint64_t seed, int *out) {
    uint64_t st = seed;
    for (int i = 0; i < k; i++) {
        int taken = 0; /* neurons of this layer unavailable */
        for (int j = 0; j < k; j++) taken += layer[j] == layer[i];
        for (int j = 0; j < i; j++) taken += layer[j] == layer[i];
        if (taken >= n_inner) return -1;
        for (;;) {
            int cand = (int)(splitmix64(&st) % (uint64_t)n_inner), ok = 1;
            for (int j = 0; j < k && ok; j++) ok = !(layer[j] == layer[i] && neuron[j] == cand);
            for (int j = 0; j < i && ok; j++) ok = !(layer[j] == layer[i] && out[j] == cand);
            if (ok) {
                out[i] = cand;
                break;
            }
        }
    }
    return 0;
}

void concept_split(const Condition *c, const ConceptTokens *ct, ConceptSplit *out) {
    double d[3] = {0, 0, 0}, kl[3] = {0, 0, 0}; /* 0 out, 1 in, 2 after */
    int64_t n[3] = {0, 0, 0};
    for (size_t t = 0; t < c->n_eff; t++) {
        const TokenEffect *e = &c->eff[t];
        int g = concept_tokens_has(ct, c->eff_doc[t], e->pos) ? 1 : concept_tokens_has(ct, c->eff_doc[t], e->pos - 1) ? 2 : 0;
        d[g] += e->abl_loss - e->base_loss;
        kl[g] += e->kl;
        n[g]++;
    }
    out->n_out = n[0];
    out->n_in = n[1];
    out->n_after = n[2];
    out->dloss_out = n[0] ? d[0] / (double)n[0] : NAN;
    out->dloss_in = n[1] ? d[1] / (double)n[1] : NAN;
    out->dloss_after = n[2] ? d[2] / (double)n[2] : NAN;
    out->kl_out = n[0] ? kl[0] / (double)n[0] : NAN;
    out->kl_in = n[1] ? kl[1] / (double)n[1] : NAN;
    out->kl_after = n[2] ? kl[2] / (double)n[2] : NAN;
}
