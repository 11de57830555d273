-- 060_text_utf8.sql — schema version 6: every TEXT value is valid UTF-8.
--
-- Why: a corpus may hold any bytes (invalid UTF-8 is tokenized as bytes, never
-- rejected), and GPT-2's byte-level BPE cuts multi-byte characters between
-- tokens (’ = E2 80 99 is the two tokens E2 80 and 99). Stored as TEXT as they
-- were, such bytes made Python's sqlite3 fail ("Could not decode to UTF-8")
-- and contexts cut at byte offsets showed broken characters. Now:
--
--   * every TEXT column holds the *text form* of its bytes (src/utf8.h): well-
--     formed characters as they are, each maximal invalid subsequence and each
--     NUL as one U+FFFD. This is Python's bytes.decode('utf-8', 'replace')
--     except for NUL (SQLite's substr/length and its shell stop at a NUL);
--   * the exact bytes are kept where they are data: documents.text_bytes. A
--     token's exact bytes are its byte span in text_bytes (below, and the view
--     token_context's token_bytes) and are also fixed by its token_id, so
--     tokens stores no copy of them (per-token rows stay small);
--   * tokens.char_start / char_end locate a token in documents.text by
--     characters (what substr() counts on TEXT): char_start is the character
--     holding the token's first byte, char_end one past the character holding
--     its last byte. A token holding part of a character covers the whole
--     character, so both halves of ’ show as Abram[[’]]s in token_context,
--     and a context never splits a character;
--   * paths and other strings (runs.model_dir, runs.corpus_path,
--     ablations.model_dir, ablations.source, ...) are stored as their text form
--     too: a file name that is not UTF-8 is shown with U+FFFD.
--
-- What each text column holds:
--   documents.text        the document's text form (valid UTF-8)
--   documents.text_bytes  the document's bytes exactly as in the corpus
--   tokens.token          the text form of the token's own bytes: U+FFFD for
--                         each incomplete or invalid piece (the E2 80 half of
--                         ’ is one U+FFFD, the 99 half another)
--   tokens.byte_start/_end  span in documents.text_bytes:
--                         substr(d.text_bytes, byte_start + 1, byte_end - byte_start)
--                         = the token's exact bytes
--   tokens.char_start/_end  span in documents.text:
--                         substr(d.text, char_start + 1, char_end - char_start)
--                         = the whole characters the token touches
--   ablation_tokens.token as tokens.token
--
-- Migration: a database of schema version 5 or older gets the columns below,
-- and store.c (migrate_text_utf8) converts its rows in the same transaction,
-- exactly: an older probe stored each document's and token's bytes as they
-- were, so text_bytes = those bytes, the character spans are computed from
-- them, and every TEXT value is replaced by its text form. (The defaults
-- below only serve ALTER TABLE; probe always writes these columns.)
--
--   SELECT context FROM token_context WHERE token LIKE '%' || char(65533) || '%';

DROP VIEW IF EXISTS token_context;

ALTER TABLE documents ADD COLUMN text_bytes BLOB NOT NULL DEFAULT x'';
ALTER TABLE tokens ADD COLUMN char_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN char_end INTEGER NOT NULL DEFAULT 0;

-- A token with its surrounding text: up to 60 characters before and 30 after,
-- from documents.text, and the whole characters it touches (token_text) marked
-- [[like this]] inside `context` (newlines shown as spaces there). token is the
-- token's own text (U+FFFD for part of a character), token_bytes its exact
-- bytes.
CREATE VIEW IF NOT EXISTS token_context AS
SELECT token_row, run_id, doc_index, pos, token_id, token, token_bytes, left_context, token_text,
       right_context,
       replace(replace(left_context || '[[' || token_text || ']]' || right_context,
                       char(10), ' '), char(13), ' ') AS context
FROM (SELECT t.id AS token_row, t.run_id, d.doc_index, t.pos, t.token_id, t.token,
             substr(d.text_bytes, t.byte_start + 1, t.byte_end - t.byte_start) AS token_bytes,
             substr(d.text, max(t.char_start - 60, 0) + 1,
                    t.char_start - max(t.char_start - 60, 0)) AS left_context,
             substr(d.text, t.char_start + 1, t.char_end - t.char_start) AS token_text,
             substr(d.text, t.char_end + 1, 30) AS right_context
      FROM tokens t JOIN documents d ON d.id = t.doc_id);
