-- 040_token_neurons.sql — per token and layer: its top-k neurons, and with
-- `--full LAYERS` its whole activation vector.
--
-- token_topk.top packs the top-k neurons of one (token, layer), highest first,
-- as k records of 6 bytes, little-endian: uint16 neuron, float32 activation.
-- The view token_top_neurons unpacks them in plain SQL (slow on a whole table;
-- filter by token_row or layer; counts per neuron are in neuron_topk_counts).
--
--   SELECT * FROM token_top_neurons WHERE token_row = 42 AND layer = 5;

CREATE TABLE IF NOT EXISTS token_topk (
    token_row INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    layer     INTEGER NOT NULL,
    top       BLOB    NOT NULL,  -- k x (uint16 neuron, float32 value), little-endian
    PRIMARY KEY (token_row, layer)
) WITHOUT ROWID;

-- Full post-activation vectors: n_inner float16 values, little-endian (IEEE
-- half; numpy.frombuffer(vec, '<f2')).
CREATE TABLE IF NOT EXISTS token_full (
    token_row INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    layer     INTEGER NOT NULL,
    vec       BLOB    NOT NULL,
    PRIMARY KEY (token_row, layer)
);

-- The view token_top_neurons (the packed top-k as rows: token_row, run_id, layer,
-- rank, neuron, name, value, token) is defined in 070_query_speed.sql.
