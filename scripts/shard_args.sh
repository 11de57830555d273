# shard_args.sh — sourced by record_parallel.sh and record_slurm.sh: their
# common arguments. Call `shard_args "$@"` with SCRIPT set to the caller's
# name; it sets CORPUS, N, OUT, ROOT (this repository), PROBE (default
# ./probe of this repository) and SHIFT (how many arguments it took: the
# caller shifts them off; the rest are `probe record` options), or exits 2
# with a usage line. shard_db I prints the database path of shard I.
shard_args() {
    if [ $# -lt 3 ]; then
        echo "usage: scripts/$SCRIPT CORPUS N OUT.db [probe record options...]" >&2
        exit 2
    fi
    CORPUS=$1
    N=$2
    OUT=$3
    SHIFT=3
    case "$N" in
        ''|*[!0-9]*) echo "$SCRIPT: N must be a positive integer, not '$N'" >&2; exit 2 ;;
    esac
    if [ "$N" -lt 1 ]; then
        echo "$SCRIPT: N must be at least 1" >&2
        exit 2
    fi
    ROOT=$(cd "$(dirname "$0")/.." && pwd)
    PROBE=${PROBE:-$ROOT/probe}
}

shard_db() { printf '%s' "$OUT.shard${1}of$N.db"; }
