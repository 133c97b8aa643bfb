#!/usr/bin/env bash
# Opt-in end-to-end test of `featlab sweep` on a real (single-node) Slurm cluster.
#
# Needs root on Debian/Ubuntu (installs slurm-wlm and munge, starts munged, slurmctld and
# slurmd on localhost). Submits the sweep's sbatch array (examples/sweep-staircase.toml by
# default, 4 tasks), waits, merges, and checks that results.csv is byte-identical to a local
# `featlab sweep --jobs 2` run. Not part of CI (takes minutes and needs daemons).
#
#   scripts/slurm-smoke.sh [SWEEP_FILE] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-examples/sweep-staircase.toml}
WORK=${2:-/tmp/featlab-slurm-smoke}
TASKS=4

if [ "$(id -u)" != 0 ]; then
  echo "run as root (installs packages and starts Slurm daemons)" >&2
  exit 2
fi
command -v sbatch >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; }

cargo build --release -p featlab-cli
FEATLAB=${CARGO_TARGET_DIR:-$PWD/target}/release/featlab

# munge: the authentication daemon Slurm requires.
if [ ! -s /etc/munge/munge.key ]; then
  (command -v mungekey >/dev/null && mungekey --create --force) || create-munge-key -f
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged || /usr/sbin/munged --force

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=featlab-smoke
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed' && break; sleep 1; done
sinfo

rm -rf "$WORK"
mkdir -p "$WORK"
"$FEATLAB" sweep slurm "$SPEC" --out "$WORK/slurm-run" --tasks $TASKS --cpus 1 --mem 500M --time 00:10:00 --partition debug
JOB=$(sbatch --parsable "$WORK/slurm-run/slurm/sweep.sbatch")
echo "submitted array job $JOB"
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break
  sleep 1
done
sacct -j "$JOB" --format=JobID,State,ExitCode 2>/dev/null || true
"$FEATLAB" sweep merge "$WORK/slurm-run" --no-png

"$FEATLAB" sweep "$SPEC" --out "$WORK/local" --jobs 2 --quiet --no-png
if cmp "$WORK/slurm-run/results.csv" "$WORK/local/results.csv"; then
  echo "OK: results.csv from the Slurm array ($TASKS tasks) is identical to the local run"
else
  echo "FAIL: results.csv differs between the Slurm array and the local run" >&2
  exit 1
fi
