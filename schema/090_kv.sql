-- 090_kv.sql — schema version 9: key-value memories (Geva et al. 2021/2022):
-- what each neuron writes, read through the unembedding (value_tokens, shared
-- by every run of a model), and `probe kv`'s agreement between a neuron's
-- triggers and its value (kv_runs, kv_layers, kv_neurons).
--
--   SELECT * FROM kv_layers WHERE kv_run_id = (SELECT max(id) FROM kv_runs);
--
-- Values: a neuron's value vector is its row of mlp.c_proj.weight; variant
-- 'raw' projects it as W_U · v, 'ln_f' as W_U · (γ ⊙ v) with ln_f's gain γ.
-- Vocabulary ids whose unembedding rows are identical (a model trained with a
-- trimmed softmax gives every id it never saw one shared row) are one entry:
-- token_id is the smallest of them, ids_sharing how many there are. Ranks
-- count every id: rank 1 + the ids with a strictly larger logit.

CREATE TABLE IF NOT EXISTS value_tokens (
    model_checksum TEXT    NOT NULL,  -- runs.model_checksum
    layer          INTEGER NOT NULL,
    neuron         INTEGER NOT NULL,
    variant        TEXT    NOT NULL CHECK (variant IN ('raw', 'ln_f')),
    direction      TEXT    NOT NULL CHECK (direction IN ('promoted', 'suppressed')),
    rank           INTEGER NOT NULL,  -- 1 = the largest (promoted) / smallest (suppressed) logit
    token_id       INTEGER NOT NULL,
    ids_sharing    INTEGER NOT NULL,
    token          TEXT    NOT NULL,  -- the token's text form (valid UTF-8, as tokens.token)
    logit          REAL    NOT NULL,  -- v · W_U[token] (times γ for 'ln_f')
    PRIMARY KEY (model_checksum, layer, neuron, variant, direction, rank)
) WITHOUT ROWID;

-- One row per `probe kv` over a recorded run. triggers = top examples used
-- per neuron (their rank <= triggers); seed = the shuffled baseline's.
CREATE TABLE IF NOT EXISTS kv_runs (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model_checksum TEXT    NOT NULL,
    layers         TEXT    NOT NULL,  -- JSON array
    triggers       INTEGER NOT NULL,
    seed           INTEGER NOT NULL,
    distinct_rows  INTEGER NOT NULL,  -- distinct unembedding rows (vocabulary entries after collapsing)
    seconds        REAL    NOT NULL,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- Per (kv run, layer, variant): agreement = the fraction of neurons whose
-- value's top token is the token that follows its top-1 trigger (Geva 2021);
-- mean_rank / median_rank = the rank of each trigger's next token in its
-- neuron's value distribution, over every (neuron, trigger) pair; the same
-- with each neuron's value paired with another neuron's triggers (a random
-- cycle over the layer's neurons, seeded): what chance looks like for this
-- layer. chance_agreement = 1 / distinct rows.
CREATE TABLE IF NOT EXISTS kv_layers (
    kv_run_id             INTEGER NOT NULL REFERENCES kv_runs(id) ON DELETE CASCADE,
    layer                 INTEGER NOT NULL,
    variant               TEXT    NOT NULL CHECK (variant IN ('raw', 'ln_f')),
    neurons               INTEGER NOT NULL,  -- neurons with a top-1 trigger that has a next token
    agreement             REAL,
    mean_rank             REAL,
    median_rank           REAL,
    shuffled_agreement    REAL,
    shuffled_mean_rank    REAL,
    shuffled_median_rank  REAL,
    chance_agreement      REAL    NOT NULL,
    PRIMARY KEY (kv_run_id, layer, variant)
) WITHOUT ROWID;

-- Per (kv run, layer, neuron, variant): its top-1 trigger's next token, its
-- value's top token, whether they agree, and the ranks of its triggers' next
-- tokens (mean, median, best).
CREATE TABLE IF NOT EXISTS kv_neurons (
    kv_run_id     INTEGER NOT NULL REFERENCES kv_runs(id) ON DELETE CASCADE,
    layer         INTEGER NOT NULL,
    neuron        INTEGER NOT NULL,
    variant       TEXT    NOT NULL CHECK (variant IN ('raw', 'ln_f')),
    next_token_id INTEGER,           -- after the top-1 trigger (NULL: it ends its document)
    value_top_id  INTEGER NOT NULL,
    agree         INTEGER,           -- NULL when there is no next token
    triggers      INTEGER NOT NULL,  -- triggers with a next token
    mean_rank     REAL,
    median_rank   REAL,
    best_rank     INTEGER,
    PRIMARY KEY (kv_run_id, layer, neuron, variant)
) WITHOUT ROWID;

-- Neurons whose value predicts what follows their trigger, best first.
CREATE VIEW IF NOT EXISTS kv_agreeing_neurons AS
SELECT k.kv_run_id, k.layer, k.neuron, k.layer || ':' || k.neuron AS name, k.variant,
       k.next_token_id, k.value_top_id, k.triggers, k.mean_rank, k.best_rank
FROM kv_neurons k WHERE k.agree = 1;
