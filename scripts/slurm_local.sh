#!/bin/sh
# slurm_local.sh — a single-node Slurm on this machine (controller and node
# daemon on localhost, munge for authentication), to run
# scripts/record_slurm.sh for real: `make test-slurm` uses it.
#
#   sh scripts/slurm_local.sh start    # as root; Debian: apt-get install slurm-wlm munge
#   sh scripts/slurm_local.sh stop
#
# Everything lives under $SLURM_LOCAL (default /tmp/probe-slurm): the
# configuration (slurm.conf: one node `localhost` with this machine's CPUs and
# memory, one partition `debug`, no accounting), state, logs and pid files.
# `start` waits until the node is idle; `stop` kills the daemons.
set -e
DIR=${SLURM_LOCAL:-/tmp/probe-slurm}
CONF=$DIR/slurm.conf
case "${1:-}" in
start)
    [ "$(id -u)" -eq 0 ] || { echo "slurm_local.sh: start needs root (the daemons run as root here)" >&2; exit 1; }
    for b in munged slurmctld slurmd sbatch; do
        command -v "$b" >/dev/null 2>&1 || { echo "slurm_local.sh: $b missing: apt-get install slurm-wlm munge" >&2; exit 1; }
    done
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
    CPUS=$(nproc)
    MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    cat > "$CONF" <<CONF
ClusterName=probe
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmUser=root
SlurmdUser=root
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    # munge: its key exists after the Debian package's install; its daemon
    if ! pgrep -x munged >/dev/null 2>&1; then
        mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
        munged --force 2>/dev/null || su -s /bin/sh munge -c "munged --force" || munged -f
    fi
    SLURM_CONF=$CONF slurmctld -f "$CONF"
    SLURM_CONF=$CONF slurmd -f "$CONF"
    i=0
    until SLURM_CONF=$CONF sinfo -h -o %t 2>/dev/null | grep -q idle; do
        i=$((i + 1))
        if [ $i -gt 60 ]; then
            echo "slurm_local.sh: the node did not come up in 60 s; logs in $DIR/log" >&2
            exit 1
        fi
        sleep 1
    done
    echo "slurm_local.sh: Slurm up (SLURM_CONF=$CONF)" >&2
    ;;
stop)
    for p in slurmd slurmctld; do
        [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: sh scripts/slurm_local.sh start|stop" >&2
    exit 2
    ;;
esac
