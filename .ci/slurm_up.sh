#!/usr/bin/env bash
# Start a single-node SLURM cluster (munged, slurmctld, slurmd) for the SLURM tests; idempotent.
#
# Installs Debian's slurm-wlm and munge when missing (needs root), keeps configs, state, logs and
# pid files in $IMPOOLA_SLURM_DIR (default /tmp/impoola-slurm) and links /etc/slurm/slurm.conf to
# the generated config so that sbatch/srun/submitit find it without SLURM_CONF. Stop: .ci/slurm_down.sh.
set -euo pipefail

STATE_DIR=${IMPOOLA_SLURM_DIR:-/tmp/impoola-slurm}
CONF=$STATE_DIR/slurm.conf
SYS_CONF=/etc/slurm/slurm.conf

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_up: slurm-wlm/munge missing and not root; install them: apt-get install -y slurm-wlm munge" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$STATE_DIR"/{state,spool,log}

# munge: a key, a socket directory, one daemon (run as this user, who owns them) answering `munge -n | unmunge`.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /etc/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown "$(id -u):$(id -g)" /etc/munge /etc/munge/munge.key /run/munge
  chmod 400 /etc/munge/munge.key
  munged --force --pid-file="$STATE_DIR/munged.pid" --log-file="$STATE_DIR/log/munged.log" \
    --seed-file="$STATE_DIR/munged.seed"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge | grep -q "STATUS: *Success" || { echo "slurm_up: munge is not working" >&2; exit 1; }

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
cat > "$CONF.new" <<EOF
ClusterName=impoola
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
JobRequeue=1
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
KillWait=30
InactiveLimit=0
MinJobAge=300
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
changed=1
cmp -s "$CONF.new" "$CONF" && changed=0
mv "$CONF.new" "$CONF"

mkdir -p /etc/slurm
if [ -e "$SYS_CONF" ] && [ "$(readlink -f "$SYS_CONF")" != "$(readlink -f "$CONF")" ]; then
  echo "slurm_up: $SYS_CONF exists and is not this script's; refusing to replace it" >&2
  exit 1
fi
ln -sfn "$CONF" "$SYS_CONF"

# A daemon is alive if its pid file names a process that is not a zombie (no init reaps them in containers).
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q zombie "/proc/$pid/status"
}
if [ "$changed" = 1 ] && alive "$STATE_DIR/slurmctld.pid"; then scontrol reconfigure; fi
alive "$STATE_DIR/slurmctld.pid" || slurmctld -f "$CONF"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
alive "$STATE_DIR/slurmd.pid" || slurmd -f "$CONF"
for _ in $(seq 100); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  echo "$state" | grep -qE "^(idle|mix|alloc)" && break
  # A node left down/drained by an unclean stop of an earlier cluster: return it to service.
  echo "$state" | grep -qE "^(down|drain)" && scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
  sleep 0.2
done
sinfo
sinfo -h -o %t | grep -qE "^(idle|mix|alloc)" || { echo "slurm_up: node not ready; logs in $STATE_DIR/log" >&2; exit 1; }
