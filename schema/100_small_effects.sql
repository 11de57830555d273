-- 100_small_effects.sql — schema version 10: the ablation views keep small
-- effects visible. ablation_summary and ablation_layer_ranking rounded
-- delta_loss, its standard error and KL to 4 decimals, so an effect of
-- -4.9e-5 +- 4.4e-5 (one neuron) read as -0.0 +- 0.0; they now give those
-- columns unrounded (REAL: format them as you read them). The cross-entropies,
-- perplexities and agreement stay rounded.

DROP VIEW IF EXISTS ablation_summary;
CREATE VIEW ablation_summary AS
SELECT a.id AS ablation_id, c.idx, c.label, c.layer, a.mode, a.source, a.model_dir,
       c.tokens, round(c.baseline_ce, 4) AS baseline_ce, round(c.ablated_ce, 4) AS ablated_ce,
       c.delta_loss, c.delta_loss_se, c.kl, round(c.top1_agreement, 4) AS top1_agreement,
       round(c.baseline_ppl, 2) AS baseline_ppl, round(c.ablated_ppl, 2) AS ablated_ppl,
       rank() OVER (PARTITION BY a.id ORDER BY c.delta_loss DESC) AS rank_in_ablation,
       a.created_at
FROM ablation_conditions c JOIN ablations a ON a.id = c.ablation_id
ORDER BY c.delta_loss DESC, a.id, c.idx;

DROP VIEW IF EXISTS ablation_layer_ranking;
CREATE VIEW ablation_layer_ranking AS
SELECT a.model_dir, a.source, a.id AS ablation_id, c.layer,
       rank() OVER (PARTITION BY a.id ORDER BY c.delta_loss DESC) AS rank,
       c.delta_loss, c.kl, round(c.top1_agreement, 4) AS top1_agreement
FROM ablation_conditions c JOIN ablations a ON a.id = c.ablation_id
WHERE a.kind = 'sweep-layers' AND a.mode = 'zero'
  AND a.id = (SELECT max(b.id) FROM ablations b
              WHERE b.kind = 'sweep-layers' AND b.mode = 'zero'
                AND b.model_checksum = a.model_checksum AND b.source = a.source)
ORDER BY a.id, rank;
