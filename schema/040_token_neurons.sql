-- 040_token_neurons.sql — per token and layer: its top-k neurons, and with
-- `--full LAYERS` its whole activation vector.
--
-- token_topk.top packs the top-k neurons of one (token, layer), highest first,
-- as k records of 6 bytes, little-endian: uint16 neuron, float32 activation.
-- The view token_top_neurons unpacks them in plain SQL (slow on a whole table;
-- filter by token_row or layer; counts per neuron are in neuron_topk_counts).
-- 070_query_speed.sql redefines the view (same columns, a faster plan).
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

CREATE VIEW IF NOT EXISTS token_top_neurons AS
WITH RECURSIVE ranks(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM ranks WHERE i < 255),
digits AS (
    SELECT k.token_row, k.layer, r.i + 1 AS rank, hex(substr(k.top, 6 * r.i + 1, 6)) AS h
    FROM token_topk k JOIN ranks r ON r.i < length(k.top) / 6),
bytes AS (
    SELECT token_row, layer, rank,
           (instr('0123456789ABCDEF', substr(h, 1, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2, 1)) - 1 AS b0,
           (instr('0123456789ABCDEF', substr(h, 3, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 4, 1)) - 1 AS b1,
           (instr('0123456789ABCDEF', substr(h, 5, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 6, 1)) - 1 AS b2,
           (instr('0123456789ABCDEF', substr(h, 7, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 8, 1)) - 1 AS b3,
           (instr('0123456789ABCDEF', substr(h, 9, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 10, 1)) - 1 AS b4,
           (instr('0123456789ABCDEF', substr(h, 11, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 12, 1)) - 1 AS b5
    FROM digits),
fields AS (
    SELECT token_row, layer, rank, b0 + 256 * b1 AS neuron,
           b5 >> 7 AS sign, ((b5 & 127) << 1) | (b4 >> 7) AS expo,
           ((b4 & 127) << 16) | (b3 << 8) | b2 AS mant
    FROM bytes)
SELECT f.token_row, t.run_id, f.layer, f.rank, f.neuron, f.layer || ':' || f.neuron AS name,
       (1 - 2 * f.sign) * CASE WHEN f.expo = 0 THEN f.mant * pow(2, -149)
                               ELSE (8388608 + f.mant) * pow(2, f.expo - 150) END AS value,
       t.token
FROM fields f JOIN tokens t ON t.id = f.token_row;
