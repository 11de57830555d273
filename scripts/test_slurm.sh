#!/bin/sh
# test_slurm.sh — `make test-slurm`: scripts/record_slurm.sh for real, on a
# single-node Slurm started by scripts/slurm_local.sh (as root; Debian's
# slurm-wlm and munge), against one recording of the same corpus.
#
# Records tests/fixtures/concept_scores/corpus.txt (or $CORPUS) in 3 shards
# as a Slurm job array plus the dependent merge job (WAIT=1), then checks
# that the merged database holds the same documents, tokens, per-token top-k,
# examples, histograms and counts as one `probe record`, and prints both
# top-neurons listings' difference (none). Not part of `make test`: starting
# the daemons needs root and takes a few seconds that CI need not spend.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROBE=${PROBE:-$ROOT/probe}
CORPUS=${CORPUS:-$ROOT/tests/fixtures/concept_scores/corpus.txt}
MODEL=${MODEL:-$ROOT/models/demo}
export SLURM_CONF=${SLURM_CONF:-/tmp/probe-slurm/slurm.conf}
if ! sinfo -h >/dev/null 2>&1; then
    sh "$ROOT/scripts/slurm_local.sh" start
fi
W=$(mktemp -d /tmp/probe-test-slurm.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$PROBE" record "$CORPUS" --model "$MODEL" --db "$W/single.db" --quiet
( cd "$W" && WAIT=1 CPUS_PER_TASK=1 PROBE="$PROBE" sh "$ROOT/scripts/record_slurm.sh" "$CORPUS" 3 merged.db \
      --model "$MODEL" )
echo "== slurm logs"
cat "$W"/merged.db.shard*of3.log "$W/merged.db.merge.log"
fail=0
for t in "documents:id, doc_index, byte_offset, n_tokens, text, text_bytes" \
         "tokens:id, doc_id, pos, token_id, token, byte_start, byte_end" \
         "token_topk:token_row, layer, top" "neuron_examples:layer, neuron, rank, token_row, value" \
         "neuron_histograms:layer, neuron, counts" "neuron_stats:layer, neuron, count, min, max, frac_pos"; do
    table=${t%%:*}
    cols=${t#*:}
    n=$(sqlite3 "$W/merged.db" "ATTACH '$W/single.db' AS s;
        SELECT (SELECT count(*) FROM (SELECT $cols FROM main.$table EXCEPT SELECT $cols FROM s.$table))
             + (SELECT count(*) FROM (SELECT $cols FROM s.$table EXCEPT SELECT $cols FROM main.$table));")
    echo "$table: $n rows differ"
    [ "$n" = 0 ] || fail=1
done
sqlite3 "$W/merged.db" "ATTACH '$W/single.db' AS s; SELECT 'mean, variance: largest relative difference',
    max(abs(a.mean - b.mean) / max(abs(b.mean), sqrt(b.variance))), max(abs(a.variance - b.variance) / b.variance)
    FROM main.neuron_stats a JOIN s.neuron_stats b USING (layer, neuron) WHERE b.variance > 0;"
"$PROBE" top-neurons --db "$W/merged.db" --by mean --limit 30 | tail -n +2 > "$W/a.txt"
"$PROBE" top-neurons --db "$W/single.db" --by mean --limit 30 | tail -n +2 > "$W/b.txt"
if diff "$W/a.txt" "$W/b.txt" >/dev/null; then echo "top-neurons: the same"; else echo "top-neurons: DIFFER"; fail=1; fi
[ $fail = 0 ] && echo "test-slurm: passed" || { echo "test-slurm: FAILED"; exit 1; }
