#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm executor's tests and for trying
# `awsnet run --backend slurm` without a cluster.
#
#   scripts/slurm-dev-cluster.sh install   apt packages (slurmctld slurmd slurm-client munge)
#   scripts/slurm-dev-cluster.sh start     write the config, start munged, slurmctld, slurmd
#   scripts/slurm-dev-cluster.sh stop      stop them, by the pids in their pid files
#   scripts/slurm-dev-cluster.sh status    sinfo
#
# Needs root (the daemons run as root, SlurmUser=root). The node offers the machine's cores and
# most of its memory, and two fake GPUs (gres on character devices, which is enough for Slurm
# to grant `--gres=gpu:1` and set CUDA_VISIBLE_DEVICES; nothing computes on them).
# State, logs and pid files live in $AWSNET_SLURM_DIR (default /tmp/awsnet-slurm). The config
# goes to /etc/slurm/slurm.conf, which this script refuses to overwrite unless it wrote it.
set -euo pipefail

state=${AWSNET_SLURM_DIR:-/tmp/awsnet-slurm}
conf=/etc/slurm/slurm.conf
gres=/etc/slurm/gres.conf
marker="# written by awsnet scripts/slurm-dev-cluster.sh"
host=$(hostname -s)

die() { echo "slurm-dev-cluster: $*" >&2; exit 1; }

install_packages() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge
}

write_config() {
    if [ -e "$conf" ] && ! grep -qxF "$marker" "$conf"; then
        die "$conf exists and was not written by this script; move it aside first"
    fi
    mkdir -p "$state"/{ctld,spool,log} /etc/slurm
    # Two fake GPUs: character devices with /dev/null's numbers.
    for i in 0 1; do
        [ -c "$state/gpu$i" ] || mknod "$state/gpu$i" c 1 3
    done
    # The node line from what slurmd sees, with memory a little under it (slurmd refuses a node
    # that reports less than its configured RealMemory).
    local node mem
    node=$(slurmd -C | head -1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/" <<<"$node")
    cat >"$conf" <<EOF
$marker
ClusterName=awsnet-dev
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
EnforcePartLimits=ALL
MinJobAge=3600
MailProg=/bin/true
DefMemPerCPU=1024
ReturnToService=2
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
GresTypes=gpu
$node Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$gres" <<EOF
$marker
NodeName=$host Name=gpu File=$state/gpu0
NodeName=$host Name=gpu File=$state/gpu1
EOF
}

pid_of() { [ -s "$1" ] && cat "$1"; }

start() {
    command -v slurmctld >/dev/null || die "Slurm is not installed: run '$0 install' first"
    write_config
    install -d -o munge -g munge -m 0755 /run/munge
    if ! { pid=$(pid_of /run/munge/munged.pid) && kill -0 "$pid" 2>/dev/null; }; then
        runuser -u munge -- munged
    fi
    if ! { pid=$(pid_of "$state/slurmctld.pid") && kill -0 "$pid" 2>/dev/null; }; then
        slurmctld
    fi
    if ! { pid=$(pid_of "$state/slurmd.pid") && kill -0 "$pid" 2>/dev/null; }; then
        slurmd -N "$host"
    fi
    # Ready when the node takes jobs.
    for _ in $(seq 1 100); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            sinfo
            return 0
        fi
        sleep 0.2
    done
    sinfo || true
    die "the node did not come up; see $state/log/"
}

stop_pidfile() {
    local file=$1 pid
    pid=$(pid_of "$file") || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$file"
}

stop() {
    stop_pidfile "$state/slurmd.pid"
    stop_pidfile "$state/slurmctld.pid"
    stop_pidfile /run/munge/munged.pid
}

case "${1:-}" in
install) install_packages ;;
start) start ;;
stop) stop ;;
status) sinfo ;;
*) die "usage: $0 install|start|stop|status" ;;
esac
