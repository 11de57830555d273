-- 080_concepts.sql — schema version 8: concept rankings (`probe top-neurons
-- --concept / --probe / --words`) and the activation histograms that make
-- their AUROC possible without re-recording the corpus.
--
-- Migration: a database of schema version 7 or older gets these tables; its
-- runs have no histograms, so their concept rankings have exact means,
-- Cohen's d and precision but no AUROC (NULL) until the corpus is recorded
-- again.
--
--   SELECT name, layer, neuron, auroc, cohen_d, precision
--   FROM concept_top_neurons WHERE name = 'past_tense_verbs' AND rank <= 10;

-- Per (run, layer, neuron): how many recorded tokens fall in each bin of a
-- fixed activation grid (src/analysis/act_hist.c lists the 1,024 bins,
-- monotone in the activation; fine around GELU's minimum, just below zero
-- and on the positive side). Written with the statistics when a run stops.
-- counts = 1,024 little-endian uint32 (numpy.frombuffer(counts, '<u4')).
-- (A rowid table: a 4 KiB row fits in its 16 KiB pages, where a WITHOUT
-- ROWID table would spill every row into overflow pages, four times the size.)
CREATE TABLE IF NOT EXISTS neuron_histograms (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer  INTEGER NOT NULL,
    neuron INTEGER NOT NULL,
    counts BLOB    NOT NULL,
    UNIQUE (run_id, layer, neuron)
);

-- One row per concept ranking: which concept (the probe file's checksum pins
-- its exact words), over which recorded run, and what it cost.
CREATE TABLE IF NOT EXISTS concept_runs (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,  -- the probe's "name" ('words' for --words)
    probe_path       TEXT,              -- the probe file (NULL for --words)
    probe_checksum   TEXT    NOT NULL,  -- FNV-1a 64 of the file's bytes (of the --words list as typed), 16 hex digits
    words            INTEGER NOT NULL,  -- words listed in the concept after --drop (regexes not counted)
    dropped_flags    TEXT,              -- --drop FLAGS as given, NULL when none
    layers           TEXT    NOT NULL,  -- JSON array of the scored layers
    concept_tokens   INTEGER NOT NULL,  -- recorded tokens that end a concept word
    tokens           INTEGER NOT NULL,  -- recorded tokens of the run
    windows_replayed INTEGER NOT NULL,  -- context windows run again (those owning a concept token)
    windows          INTEGER NOT NULL,  -- context windows of the run
    seconds          REAL    NOT NULL,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- Per (concept ranking, layer, neuron), over a complete run. "in" = the
-- concept's tokens (n1), "out" = every other recorded token of the run (n0).
-- Means and standard deviations are exact (to double rounding); sd is the
-- sample standard deviation (n - 1; NULL for a single token); cohen_d =
-- (mean_in - mean_out) / sqrt(((n1-1) sd_in^2 + (n0-1) sd_out^2) / (n1+n0-2)),
-- NULL when that pooled sd is 0 (a neuron constant over the run).
-- auroc = P(a concept token's activation > a non-concept token's) + P(equal)/2,
-- from the run's histograms: |auroc - exact| <= auroc_error (a proven bound,
-- not an estimate; the estimate itself is usually far closer); both NULL
-- without histograms. precision = examples_in / examples: of the neuron's
-- recorded top examples (neuron_examples), the fraction that are concept
-- tokens (NULL with no examples). A concept with no token in the run, or
-- with every token, is refused rather than stored.
CREATE TABLE IF NOT EXISTS concept_scores (
    concept_run_id INTEGER NOT NULL REFERENCES concept_runs(id) ON DELETE CASCADE,
    layer          INTEGER NOT NULL,
    neuron         INTEGER NOT NULL,
    mean_in        REAL,
    mean_out       REAL,
    sd_in          REAL,
    sd_out         REAL,
    cohen_d        REAL,
    auroc          REAL,
    auroc_error    REAL,
    examples_in    INTEGER NOT NULL,
    examples       INTEGER NOT NULL,
    precision      REAL,
    PRIMARY KEY (concept_run_id, layer, neuron)
) WITHOUT ROWID;

-- Every concept ranking with names, ranked by AUROC within the ranking over
-- all its layers (rank 1 = most selective; NULL AUROCs share the last rank),
-- also by Cohen's d (rank_d).
CREATE VIEW IF NOT EXISTS concept_top_neurons AS
SELECT c.id AS concept_run_id, c.run_id, c.name, c.probe_checksum,
       s.layer, s.neuron, s.layer || ':' || s.neuron AS neuron_name,
       s.auroc, s.auroc_error, s.cohen_d, s.mean_in, s.mean_out, s.sd_in, s.sd_out, s.precision,
       s.examples_in, s.examples, c.concept_tokens,
       rank() OVER (PARTITION BY s.concept_run_id ORDER BY s.auroc DESC) AS rank,
       rank() OVER (PARTITION BY s.concept_run_id ORDER BY s.cohen_d DESC) AS rank_d
FROM concept_scores s JOIN concept_runs c ON c.id = s.concept_run_id;

-- The causal check of a concept ranking (`probe ablate --concept NAME --top
-- K`): per condition of the ablation (ablation_conditions.idx), the concept's
-- top-K neurons (role 'concept') or K random neurons of the same layers
-- (role 'random', one row per seed), and the mean delta loss and KL where
-- the predicted token is a concept token ("in"), where the token before it
-- is one ("after": the prediction that the concept token's own activations
-- write to), and elsewhere ("out").
CREATE TABLE IF NOT EXISTS ablation_concept (
    ablation_id    INTEGER NOT NULL REFERENCES ablations(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    concept_run_id INTEGER NOT NULL REFERENCES concept_runs(id),
    role           TEXT    NOT NULL CHECK (role IN ('concept', 'random')),
    seed           INTEGER,             -- random sets: the seed that drew them
    neurons        TEXT    NOT NULL,    -- the ablated neurons, 'L:N,...'
    tokens_in      INTEGER NOT NULL,
    dloss_in       REAL,
    kl_in          REAL,
    tokens_after   INTEGER NOT NULL,
    dloss_after    REAL,
    kl_after       REAL,
    tokens_out     INTEGER NOT NULL,
    dloss_out      REAL,
    kl_out         REAL,
    PRIMARY KEY (ablation_id, idx)
) WITHOUT ROWID;
