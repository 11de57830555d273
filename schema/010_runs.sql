-- 010_runs.sql — one row per `probe record` run: what was recorded, with what.
--
-- A database holds any number of runs (models, corpora, options). A run is
-- 'running' while it records (or after a crash: continue it with --resume),
-- 'interrupted' after Ctrl-C / SIGTERM (also resumable), 'complete' at the end.
-- Statistics and top examples (030) are final when the run is complete.
--
--   SELECT id, status, n_tokens, round(tokens_per_sec) FROM runs;

CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY,
    status          TEXT    NOT NULL CHECK (status IN ('running', 'interrupted', 'complete')),
    model_dir       TEXT    NOT NULL,
    model_checksum  TEXT    NOT NULL,           -- 16 hex digits, as `probe info`
    model_config    TEXT    NOT NULL,           -- JSON: n_layer, n_embd, n_head, n_inner, ...
    n_layer         INTEGER NOT NULL,           -- layers of the model
    n_inner         INTEGER NOT NULL,           -- FFN neurons per layer
    corpus_path     TEXT    NOT NULL,           -- as given ('-' = stdin)
    corpus_checksum TEXT    NOT NULL,           -- FNV-1a 64 of the corpus bytes, 16 hex digits
    corpus_bytes    INTEGER NOT NULL,
    options         TEXT    NOT NULL,           -- JSON: split, ctx, top_k, examples, full, layers, bos
    layers          TEXT    NOT NULL,           -- recorded layers, JSON array
    full_layers     TEXT    NOT NULL,           -- layers with full fp16 vectors (token_full), JSON array
    ctx             INTEGER NOT NULL,           -- context window in tokens
    top_k           INTEGER NOT NULL,           -- neurons kept per token and layer (token_topk)
    n_examples      INTEGER NOT NULL,           -- top examples kept per neuron (neuron_examples)
    bos             INTEGER NOT NULL,           -- 1: each document is preceded by <|endoftext|>
    n_docs          INTEGER NOT NULL,           -- documents in the corpus
    docs_done       INTEGER NOT NULL DEFAULT 0, -- documents recorded and committed (0..n_docs)
    n_tokens        INTEGER NOT NULL DEFAULT 0, -- tokens recorded and committed
    pid             INTEGER,                    -- process recording it (while 'running')
    started_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at      TEXT,
    finished_at     TEXT,
    seconds         REAL    NOT NULL DEFAULT 0, -- wall time spent recording, over all sessions
    tokens_per_sec  REAL
);

CREATE INDEX IF NOT EXISTS runs_identity ON runs (model_checksum, corpus_checksum);
