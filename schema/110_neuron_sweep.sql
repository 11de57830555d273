-- 110_neuron_sweep.sql — schema version 11: `probe ablate --sweep neurons
-- --layer L`. Every neuron of a layer ablated alone, estimated at once by
-- attribution patching (src/analysis/neuron_sweep.h): per neuron, the
-- first-order estimate of the delta loss its ablation (zero or mean, as the
-- ablation's mode) causes. The neurons with the largest estimates are then
-- ablated for real: each is a condition of the same ablation (label
-- 'neuron L:N', in ablation_conditions; per-token rows in ablation_tokens
-- for the first 10 of them, the largest estimates), and idx points to it.
--
--   SELECT layer, neuron, estimate, delta_loss FROM neuron_ablation_effects
--   WHERE ablation_id = (SELECT max(ablation_id) FROM ablation_neuron_estimates)
--   ORDER BY rank LIMIT 20;

CREATE TABLE IF NOT EXISTS ablation_neuron_estimates (
    ablation_id INTEGER NOT NULL REFERENCES ablations(id) ON DELETE CASCADE,
    layer       INTEGER NOT NULL,
    neuron      INTEGER NOT NULL,
    rank        INTEGER NOT NULL,   -- 1 = the largest estimate of the layer
    estimate    REAL    NOT NULL,   -- estimated delta loss, nats/token (first order)
    act_mean    REAL    NOT NULL,   -- mean post-activation over the window positions run
    idx         INTEGER,            -- ablation_conditions.idx of its exact measurement, else NULL
    PRIMARY KEY (ablation_id, layer, neuron)
) WITHOUT ROWID;

-- Each estimate next to the exact figures where the neuron was measured.
CREATE VIEW IF NOT EXISTS neuron_ablation_effects AS
SELECT e.ablation_id, a.model_dir, a.model_checksum, a.source, a.mode, e.layer, e.neuron, e.rank, e.estimate,
       c.delta_loss, c.delta_loss_se, c.kl, c.top1_agreement, e.act_mean, a.tokens, a.created_at
FROM ablation_neuron_estimates e JOIN ablations a ON a.id = e.ablation_id
LEFT JOIN ablation_conditions c ON c.ablation_id = e.ablation_id AND c.idx = e.idx;
