#!/bin/sh
# record_slurm.sh — record a corpus as N shards on a Slurm cluster (a job
# array, one task per shard), then merge them in a job that depends on the
# array (afterok): the result is what one `probe record` of the whole corpus
# gives.
#
#   scripts/record_slurm.sh CORPUS N OUT.db [probe record options...]
#   SBATCH_OPTS="--partition=cpu --time=04:00:00" CPUS_PER_TASK=8 \
#       scripts/record_slurm.sh corpus.txt 64 corpus.db --layers 0-11
#
# Task I runs `probe record CORPUS --shard I/N --db OUT.db.shardIofN.db` with
# PROBE_THREADS = CPUS_PER_TASK (default 2), its log in OUT.db.shardIofN.log;
# the merge job runs `probe merge --db OUT.db` over the N shard databases, its
# log in OUT.db.merge.log. Paths must be visible from every node (a shared
# filesystem), and probe and the model directory too. A failed task can be
# resubmitted alone with --resume (sbatch --array=I ...), then the merge.
#
# Environment: PROBE (default: ./probe of this repository, as an absolute
# path), CPUS_PER_TASK, SBATCH_OPTS (extra sbatch options for both jobs),
# WAIT=1 (block until the merge job ends, exit with its status).
set -e
SCRIPT=record_slurm.sh
. "$(dirname "$0")/shard_args.sh"
shard_args "$@"
shift "$SHIFT"
command -v sbatch >/dev/null 2>&1 || { echo "record_slurm.sh: sbatch not found (is this a Slurm login node?)" >&2; exit 1; }
CPUS=${CPUS_PER_TASK:-2}
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$(pwd)" "$1" ;; esac; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }   # shell-quote one word
CORPUS=$(abs "$CORPUS")
OUT=$(abs "$OUT")
EXTRA=""
for a in "$@"; do EXTRA="$EXTRA $(q "$a")"; done
SHARDS=""
i=1
while [ "$i" -le "$N" ]; do
    SHARDS="$SHARDS $(q "$(shard_db "$i")")"
    i=$((i + 1))
done
# shellcheck disable=SC2086
ARRAY=$(sbatch --parsable $SBATCH_OPTS --array="1-$N" --cpus-per-task="$CPUS" --job-name=probe-record \
    --output="$OUT.shard%aof$N.log" \
    --wrap="PROBE_THREADS=$CPUS $(q "$PROBE") record $(q "$CORPUS") --shard \$SLURM_ARRAY_TASK_ID/$N --db $(q "$OUT").shard\${SLURM_ARRAY_TASK_ID}of$N.db --quiet$EXTRA")
ARRAY=${ARRAY%%;*}
WAITOPT=""
[ "${WAIT:-0}" = 1 ] && WAITOPT="--wait"
echo "record_slurm.sh: submitted job array $ARRAY ($N shards of $CORPUS)" >&2
# shellcheck disable=SC2086
MERGE=$(sbatch --parsable $SBATCH_OPTS $WAITOPT --dependency="afterok:$ARRAY" --job-name=probe-merge \
    --output="$OUT.merge.log" --wrap="$(q "$PROBE") merge --db $(q "$OUT") --quiet$SHARDS")
echo "record_slurm.sh: merge job ${MERGE%%;*} -> $OUT (log $OUT.merge.log)" >&2
