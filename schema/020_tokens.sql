-- 020_tokens.sql — the recorded text: documents and their tokens.
--
-- Every token of every document is recorded exactly once (from the context
-- window that owns it). The <|endoftext|> placed before each document (runs.bos)
-- is context only: it is not a token of the document and is not recorded (its
-- activations are the same in every document and would fill every neuron's
-- top examples with copies).
--
-- Schema version 6 (060_text_utf8.sql) makes every TEXT column valid UTF-8
-- and adds documents.text_bytes (the exact bytes that byte spans index) and
-- tokens.char_start / char_end (the token's characters in documents.text).
-- Read that file for what each text column holds; in short:
--   exact token bytes  = substr(d.text_bytes, t.byte_start + 1, t.byte_end - t.byte_start)
--   its characters     = substr(d.text, t.char_start + 1, t.char_end - t.char_start)

CREATE TABLE IF NOT EXISTS documents (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    doc_index   INTEGER NOT NULL,           -- 0-based index of the document in the corpus
    byte_offset INTEGER NOT NULL,           -- where the document starts in the corpus file
    n_tokens    INTEGER NOT NULL,
    text        TEXT    NOT NULL,           -- the document as valid UTF-8 (060: its text form)
    UNIQUE (run_id, doc_index)
);

CREATE TABLE IF NOT EXISTS tokens (
    id         INTEGER PRIMARY KEY,         -- referenced by token_topk, token_full, neuron_examples
    run_id     INTEGER NOT NULL,
    doc_id     INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    pos        INTEGER NOT NULL,            -- 0-based index of the token in its document
    token_id   INTEGER NOT NULL,            -- GPT-2 vocabulary id
    token      TEXT    NOT NULL,            -- its bytes as valid UTF-8 (060: U+FFFD for part of a character)
    byte_start INTEGER NOT NULL,            -- span in documents.text_bytes, [byte_start, byte_end)
    byte_end   INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS tokens_doc ON tokens (doc_id, pos);
CREATE INDEX IF NOT EXISTS tokens_vocab ON tokens (run_id, token_id);

-- The view token_context (a token in its text) is defined in 060_text_utf8.sql,
-- over the columns that file adds.
