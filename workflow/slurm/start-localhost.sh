#!/usr/bin/env bash
# A single-node Slurm on localhost from Debian's packages, for `make test-slurm` and CI.
#
# Facts this relies on (Debian 12, Slurm 22.05): there is no systemd, so munged, slurmctld and
# slurmd are started by hand (munged as user munge); no accounting database, so `sacct` fails and
# the Snakemake plugin must use `--slurm-status-command squeue` (MinJobAge 300 keeps finished
# jobs visible to squeue well past the plugin's status interval); a fake GPU (gres File=/dev/null)
# lets rules that ask for `gpu: 1` be scheduled. Needs root. Idempotent: a running Slurm is kept.
set -euo pipefail

if sinfo -h -o '%T' 2>/dev/null | grep -Eq 'idle|mixed|alloc'; then
    echo "slurm: already running"; exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
conf=/etc/slurm
mkdir -p "$conf" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$conf/slurm.conf" <<CONF
ClusterName=phasezoo
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
GresTypes=gpu
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=${host} Name=gpu File=/dev/null" > "$conf/gres.conf"

if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge && chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
    state=$(sinfo -h -o '%T' 2>/dev/null || true)
    if echo "$state" | grep -Eq 'idle|mixed'; then
        sinfo; exit 0
    fi
    if echo "$state" | grep -Eq 'down|drain'; then  # e.g. left down by an earlier run
        scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
    fi
    sleep 1
done
echo "slurm: node did not come up; logs:" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
