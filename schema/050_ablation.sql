-- 050_ablation.sql — results of `probe ablate` (written by src/db/ablations.c).
--
-- One row in ablations per invocation, one row in ablation_conditions per
-- condition it measured (one for --no-ffn / --layers / --neurons, one per
-- layer for --sweep layers), and one row in ablation_tokens per condition
-- and predicted token. All rows of an invocation are written in one
-- transaction when it finishes, so an interrupted run leaves nothing.
--
--   SELECT * FROM ablation_summary;          -- which condition hurts most
--   SELECT * FROM ablation_layer_ranking;    -- layers by the latest sweep's damage

CREATE TABLE IF NOT EXISTS ablations (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    model_dir       TEXT    NOT NULL,
    model_checksum  TEXT    NOT NULL,            -- 16 hex digits, as `probe info`
    source          TEXT    NOT NULL,            -- corpus path, or 'run:ID'
    source_checksum TEXT,                        -- corpus checksum (16 hex digits)
    source_run_id   INTEGER,                     -- the recorded run with --run
    stats_run_id    INTEGER,                     -- mean mode: the run whose neuron means were used
    kind            TEXT    NOT NULL CHECK (kind IN ('no-ffn', 'layers', 'neurons', 'sweep-layers')),
    spec            TEXT,                        -- the --layers / --neurons list as given
    mode            TEXT    NOT NULL CHECK (mode IN ('zero', 'mean')),
    ctx             INTEGER NOT NULL,
    bos             INTEGER NOT NULL,            -- 1: documents start with <|endoftext|>
    documents       INTEGER NOT NULL,
    tokens          INTEGER NOT NULL,            -- predicted tokens per condition
    seconds         REAL    NOT NULL
);

CREATE TABLE IF NOT EXISTS ablation_conditions (
    id             INTEGER PRIMARY KEY,
    ablation_id    INTEGER NOT NULL REFERENCES ablations(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,             -- order within the ablation
    label          TEXT    NOT NULL,             -- 'no-ffn', 'layer 3', 'layers 3,5-7', 'neurons 5:123'
    layer          INTEGER,                      -- the one ablated layer, else NULL
    layers         TEXT    NOT NULL,             -- JSON array of layers whose whole FFN is ablated
    neurons_edited INTEGER NOT NULL,             -- neurons set to 0 or their mean
    tokens         INTEGER NOT NULL,
    baseline_ce    REAL    NOT NULL,             -- mean next-token cross-entropy, nats/token
    ablated_ce     REAL    NOT NULL,
    baseline_ppl   REAL    NOT NULL,             -- exp(baseline_ce)
    ablated_ppl    REAL    NOT NULL,
    delta_loss     REAL    NOT NULL,             -- ablated_ce - baseline_ce
    delta_loss_se  REAL    NOT NULL,             -- its standard error over tokens (sd / sqrt(tokens))
    kl             REAL    NOT NULL,             -- mean KL(baseline || ablated), nats/token
    top1_agreement REAL    NOT NULL,             -- fraction of tokens with the baseline's argmax
    UNIQUE (ablation_id, idx)
);

-- Per condition and predicted token: token `pos` of document `doc`, both
-- 0-based and numbered as in `probe record` (documents.doc_index, tokens.pos:
-- the <|endoftext|> placed before a document is not counted), predicted from
-- the tokens before it (and the <|endoftext|>).
CREATE TABLE IF NOT EXISTS ablation_tokens (
    condition_id  INTEGER NOT NULL REFERENCES ablation_conditions(id) ON DELETE CASCADE,
    doc           INTEGER NOT NULL,
    pos           INTEGER NOT NULL,
    token_id      INTEGER NOT NULL,              -- GPT-2 vocabulary id
    token         TEXT    NOT NULL,              -- its bytes as valid UTF-8, as tokens.token (060)
    baseline_loss REAL    NOT NULL,              -- nats
    ablated_loss  REAL    NOT NULL,
    kl            REAL    NOT NULL,              -- KL(baseline || ablated) at this position
    top1_agree    INTEGER NOT NULL,              -- 1 when both argmaxes are equal
    PRIMARY KEY (condition_id, doc, pos)
) WITHOUT ROWID;

-- Every measured condition, most harmful first.
CREATE VIEW IF NOT EXISTS ablation_summary AS
SELECT a.id AS ablation_id, c.idx, c.label, c.layer, a.mode, a.source, a.model_dir,
       c.tokens, round(c.baseline_ce, 4) AS baseline_ce, round(c.ablated_ce, 4) AS ablated_ce,
       round(c.delta_loss, 4) AS delta_loss, round(c.delta_loss_se, 4) AS delta_loss_se,
       round(c.kl, 4) AS kl, round(c.top1_agreement, 4) AS top1_agreement,
       round(c.baseline_ppl, 2) AS baseline_ppl, round(c.ablated_ppl, 2) AS ablated_ppl,
       rank() OVER (PARTITION BY a.id ORDER BY c.delta_loss DESC) AS rank_in_ablation,
       a.created_at
FROM ablation_conditions c JOIN ablations a ON a.id = c.ablation_id
ORDER BY c.delta_loss DESC, a.id, c.idx;

-- Per-token effects with their condition: the tokens an ablation hurts most.
--   SELECT label, doc, pos, token, delta_loss, kl FROM ablation_token_effects
--   WHERE ablation_id = 1 ORDER BY delta_loss DESC LIMIT 20;
CREATE VIEW IF NOT EXISTS ablation_token_effects AS
SELECT c.ablation_id, c.idx, c.label, c.layer, t.doc, t.pos, t.token_id, t.token,
       t.baseline_loss, t.ablated_loss, t.ablated_loss - t.baseline_loss AS delta_loss, t.kl, t.top1_agree
FROM ablation_tokens t JOIN ablation_conditions c ON c.id = t.condition_id;

-- Layers ranked by the loss their FFN's removal causes, from each model's
-- latest layer sweep (zero mode) on each source.
CREATE VIEW IF NOT EXISTS ablation_layer_ranking AS
SELECT a.model_dir, a.source, a.id AS ablation_id, c.layer,
       rank() OVER (PARTITION BY a.id ORDER BY c.delta_loss DESC) AS rank,
       round(c.delta_loss, 4) AS delta_loss, round(c.kl, 4) AS kl,
       round(c.top1_agreement, 4) AS top1_agreement
FROM ablation_conditions c JOIN ablations a ON a.id = c.ablation_id
WHERE a.kind = 'sweep-layers' AND a.mode = 'zero'
  AND a.id = (SELECT max(b.id) FROM ablations b
              WHERE b.kind = 'sweep-layers' AND b.mode = 'zero'
                AND b.model_checksum = a.model_checksum AND b.source = a.source)
ORDER BY a.id, rank;
