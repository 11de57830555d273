-- 020_tokens.sql — the recorded text: documents and their tokens.
--
-- Every token of every document is recorded exactly once (from the context
-- window that owns it). The <|endoftext|> placed before each document (runs.bos)
-- is context only: it is not a token of the document and is not recorded (its
-- activations are the same in every document and would fill every neuron's
-- top examples with copies).
-- Byte spans are into documents.text: token text = substr(text, byte_start + 1,
-- byte_end - byte_start) taken as bytes (CAST(text AS BLOB)).

CREATE TABLE IF NOT EXISTS documents (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    doc_index   INTEGER NOT NULL,           -- 0-based index of the document in the corpus
    byte_offset INTEGER NOT NULL,           -- where the document starts in the corpus file
    n_tokens    INTEGER NOT NULL,
    text        TEXT    NOT NULL,           -- the document (bytes as in the corpus)
    UNIQUE (run_id, doc_index)
);

CREATE TABLE IF NOT EXISTS tokens (
    id         INTEGER PRIMARY KEY,         -- referenced by token_topk, token_full, neuron_examples
    run_id     INTEGER NOT NULL,
    doc_id     INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    pos        INTEGER NOT NULL,            -- 0-based index of the token in its document
    token_id   INTEGER NOT NULL,            -- GPT-2 vocabulary id
    token      TEXT    NOT NULL,            -- its bytes (may be part of a UTF-8 character)
    byte_start INTEGER NOT NULL,            -- span in documents.text, [byte_start, byte_end)
    byte_end   INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS tokens_doc ON tokens (doc_id, pos);
CREATE INDEX IF NOT EXISTS tokens_vocab ON tokens (run_id, token_id);

-- A token with its surrounding text: up to 60 bytes before and 30 after, from
-- its document, and the token marked [[like this]] inside `context`
-- (newlines shown as spaces there). (Cut at
-- byte boundaries; a context edge can split a multi-byte character.)
CREATE VIEW IF NOT EXISTS token_context AS
SELECT token_row, run_id, doc_index, pos, token_id, token, left_context, right_context,
       replace(replace(left_context || '[[' || token || ']]' || right_context,
                       char(10), ' '), char(13), ' ') AS context
FROM (SELECT t.id AS token_row, t.run_id, d.doc_index, t.pos, t.token_id, t.token,
             CAST(substr(CAST(d.text AS BLOB), max(t.byte_start - 60, 0) + 1,
                         t.byte_start - max(t.byte_start - 60, 0)) AS TEXT) AS left_context,
             CAST(substr(CAST(d.text AS BLOB), t.byte_end + 1, 30) AS TEXT) AS right_context
      FROM tokens t JOIN documents d ON d.id = t.doc_id);
