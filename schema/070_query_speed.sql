-- 070_query_speed.sql — schema version 7: what keeps the README's queries
-- fast on large runs. A summary table, written when a run stops (complete
-- or interrupted), in the same transaction as its statistics:
-- after the bulk load, so that the per-token inserts of a recording stay as
-- fast as before (SPEC §14); and token_top_neurons redefined so that a
-- query for one token reads that token's rows only.
--
-- Migration: a database of schema version 6 or older gets the table and the
-- view below, and store.c (migrate_summaries) fills the table
-- for every run that has stopped, in the same transaction.

-- Per (run, layer, neuron): how often the neuron is among the top-k of a
-- recorded token (token_topk). Counting the view token_top_neurons over a
-- layer unpacks every BLOB in SQL (seconds to minutes); this answers the same
-- question at once. Only neurons that occur are listed.
--
--   SELECT neuron, n_top, n_first FROM neuron_topk_counts
--   WHERE run_id = 1 AND layer = 5 ORDER BY n_top DESC LIMIT 10;
CREATE TABLE IF NOT EXISTS neuron_topk_counts (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer      INTEGER NOT NULL,
    neuron     INTEGER NOT NULL,
    n_top      INTEGER NOT NULL,  -- tokens with the neuron among their top-k
    n_first    INTEGER NOT NULL,  -- tokens with the neuron as their rank 1
    mean_value REAL    NOT NULL,  -- mean of its values in those top-k entries
    max_value  REAL    NOT NULL,  -- the largest of them
    PRIMARY KEY (run_id, layer, neuron)
) WITHOUT ROWID;

-- token_top_neurons unpacks token_topk in plain SQL: one row per (token,
-- layer, rank). Schema versions 4 to 6 defined it with token_topk JOIN ranks;
-- with no statistics SQLite then looped over the 256 ranks outside the
-- tokens, and "the top neurons of one token" unpacked every token of the run
-- 256 times over (2.5 s on the demo database). token_topk CROSS JOIN ranks
-- keeps the tokens outside (0.01 s); the columns are the same.
DROP VIEW IF EXISTS token_top_neurons;
CREATE VIEW IF NOT EXISTS token_top_neurons AS
WITH RECURSIVE ranks(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM ranks WHERE i < 255),
digits AS (
    SELECT k.token_row, k.layer, r.i + 1 AS rank, hex(substr(k.top, 6 * r.i + 1, 6)) AS h
    FROM token_topk k CROSS JOIN ranks r ON r.i < length(k.top) / 6),
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
