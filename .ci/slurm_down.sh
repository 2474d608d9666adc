#!/usr/bin/env bash
# Stop the single-node SLURM cluster that .ci/slurm_up.sh started, by its pid files.
set -uo pipefail

STATE_DIR=${IMPOOLA_SLURM_DIR:-/tmp/impoola-slurm}

# Running: the process exists and is not a zombie (no init reaps them in containers).
running() { [ -r "/proc/$1/status" ] && ! grep -q zombie "/proc/$1/status"; }

for daemon in slurmd slurmctld munged; do
  pidfile=$STATE_DIR/$daemon.pid
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if running "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  echo "slurm_down: stopped $daemon ($pid)"
done
