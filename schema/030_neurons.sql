-- 030_neurons.sql — per neuron: statistics and max-activating examples.
--
-- The activation is the FFN post-activation (after GELU, before c_proj):
-- TransformerLens `blocks.L.mlp.hook_post`. Statistics are exact over every
-- recorded token of the run (accumulated in double); variance is the
-- population variance (divided by count). Written when a run completes or is
-- interrupted (then over the tokens recorded so far).
--
--   SELECT * FROM neuron_top_examples WHERE layer = 5 AND neuron = 1234;

CREATE TABLE IF NOT EXISTS neuron_stats (
    run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer    INTEGER NOT NULL,
    neuron   INTEGER NOT NULL,
    count    INTEGER NOT NULL,   -- tokens
    mean     REAL    NOT NULL,
    variance REAL    NOT NULL,   -- population variance
    min      REAL    NOT NULL,
    max      REAL    NOT NULL,
    frac_pos REAL    NOT NULL,   -- fraction of tokens with activation > 0
    PRIMARY KEY (run_id, layer, neuron)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS neuron_stats_by_max ON neuron_stats (run_id, max);
CREATE INDEX IF NOT EXISTS neuron_stats_by_mean ON neuron_stats (run_id, mean);
CREATE INDEX IF NOT EXISTS neuron_stats_by_frac ON neuron_stats (run_id, frac_pos);

-- The top-N activating tokens of every neuron (N = runs.n_examples), rank 1 =
-- highest activation; ties go to the earlier token.
CREATE TABLE IF NOT EXISTS neuron_examples (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer     INTEGER NOT NULL,
    neuron    INTEGER NOT NULL,
    rank      INTEGER NOT NULL,  -- 1..N
    token_row INTEGER NOT NULL REFERENCES tokens(id),
    value     REAL    NOT NULL,  -- activation (float32)
    PRIMARY KEY (run_id, layer, neuron, rank)
) WITHOUT ROWID;

-- (no index on token_row: it would cost a random insert per example; a query by
-- token scans the table, about a million rows for GPT-2 small: 0.04 s)

-- Internal: the recorder's in-memory aggregates of one (run, layer) at the last
-- committed batch, so that --resume continues exactly. Format in src/analysis/recorder.c.
CREATE TABLE IF NOT EXISTS run_state (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer  INTEGER NOT NULL,
    state  BLOB    NOT NULL,
    PRIMARY KEY (run_id, layer)
);

-- Statistics with names: `5:1234` and the TransformerLens hook it belongs to.
CREATE VIEW IF NOT EXISTS neurons AS
SELECT s.run_id, s.layer, s.neuron, s.layer || ':' || s.neuron AS name,
       'blocks.' || s.layer || '.mlp.hook_post' AS hook,
       s.count, s.mean, s.variance, sqrt(s.variance) AS std, s.min, s.max, s.frac_pos
FROM neuron_stats s;

-- "What makes neuron 5:1234 fire": every neuron's top examples with their text
-- (token_context: 060_text_utf8.sql).
CREATE VIEW IF NOT EXISTS neuron_top_examples AS
SELECT e.run_id, e.layer, e.neuron, e.layer || ':' || e.neuron AS name, e.rank,
       e.value, c.token_row, c.token_id, c.token, c.doc_index, c.pos,
       c.left_context, c.right_context, c.context
FROM neuron_examples e JOIN token_context c ON c.token_row = e.token_row;
