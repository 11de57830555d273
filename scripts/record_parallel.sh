#!/bin/sh
# record_parallel.sh — record a corpus as N shards with GNU parallel, then merge
# them into one run (what one `probe record` of the whole corpus gives).
#
#   scripts/record_parallel.sh CORPUS N OUT.db [probe record options...]
#   scripts/record_parallel.sh examples/demo_corpus.txt 3 demo-sharded.db
#
# Each shard I of N is `probe record CORPUS --shard I/N --db OUT.db.shardIofN.db`
# (documents whose index is I-1 modulo N); GNU parallel runs JOBS of them at
# once (default N) and stops at the first failure; then `probe merge` writes
# OUT.db. The shard databases are kept (delete them once OUT.db is checked);
# after a failure, run the same command again with --resume: finished shards
# are skipped, interrupted ones continue. Each shard uses PROBE_THREADS compute
# threads (default: the CPUs divided among the jobs running at once). On a
# cluster, run the shards with scripts/record_slurm.sh instead, or point
# GNU parallel at several hosts (--sshlogin) with probe installed on each.
#
# Environment: PROBE (default: ./probe next to this script's repository),
# JOBS, PROBE_THREADS. Needs Debian's `parallel`.
set -e
SCRIPT=record_parallel.sh
. "$(dirname "$0")/shard_args.sh"
shard_args "$@"
shift "$SHIFT"
if [ ! -x "$PROBE" ]; then
    echo "record_parallel.sh: no probe binary at $PROBE (run make, or set PROBE)" >&2
    exit 1
fi
if ! command -v parallel >/dev/null 2>&1; then
    echo "record_parallel.sh: GNU parallel is missing (apt-get install parallel, or sh scripts/install_deps.sh)" >&2
    exit 1
fi
JOBS=${JOBS:-$N}
CPUS=$(nproc 2>/dev/null || echo 1)
THREADS=${PROBE_THREADS:-$(( CPUS / JOBS > 0 ? CPUS / JOBS : 1 ))}
SHARDS=""
i=1
while [ "$i" -le "$N" ]; do
    SHARDS="$SHARDS $(shard_db "$i")"
    i=$((i + 1))
done
echo "record_parallel.sh: $N shards of '$CORPUS', $JOBS at a time, $THREADS threads each" >&2
# shellcheck disable=SC2016
PROBE_THREADS=$THREADS parallel --will-cite --halt now,fail=1 -j "$JOBS" \
    "$PROBE" record "$CORPUS" --shard "{}/$N" --db "$OUT.shard{}of$N.db" --quiet "$@" ::: $(seq 1 "$N")
# shellcheck disable=SC2086
"$PROBE" merge --db "$OUT" $SHARDS
