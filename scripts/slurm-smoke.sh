#!/usr/bin/env bash
# Opt-in end-to-end test of `featlab sweep` on a real (single-node) Slurm cluster.
#
# Needs root on Debian/Ubuntu (installs slurm-wlm and munge, starts munged, slurmctld and
# slurmd on localhost). Submits the sweep's sbatch array (examples/sweep-staircase.toml by
# default, 4 tasks), waits, merges, and checks that results.csv is byte-identical to a local
# `featlab sweep --jobs 2` run. Not part of CI (takes minutes and needs daemons).
#
#   scripts/slurm-smoke.sh [SWEEP_FILE] [WORKDIR]
#
# Environment: TASKS (array size, default 4); KILL (default 0): cancel that many array tasks
# with `scancel` once a quarter of the points are recorded, check the merge reports the
# missing points, resubmit the same script and check every point is recorded exactly once
# (no id twice in the shard files) and results.csv / results.parquet are byte-identical to
# the local run. The issue-26 run: TASKS=8 KILL=3 scripts/slurm-smoke.sh examples/sweep-smoke-10k.toml
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-examples/sweep-staircase.toml}
WORK=${2:-/tmp/featlab-slurm-smoke}
TASKS=${TASKS:-4}
KILL=${KILL:-0}

if [ "$(id -u)" != 0 ]; then
  echo "run as root (installs packages and starts Slurm daemons)" >&2
  exit 2
fi
command -v sbatch >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; }

# FEATLAB=/path/to/featlab uses that binary instead of building one.
if [ -z "${FEATLAB:-}" ]; then
  cargo build --release -p featlab-cli
  FEATLAB=${CARGO_TARGET_DIR:-$PWD/target}/release/featlab
fi

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
wait_job() {
  for _ in $(seq 1800); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 1
  done
  echo "array job $1 did not finish in 30 min" >&2
  return 1
}
# Complete records in the shard files (a torn last line is not counted).
records() { cat "$WORK"/slurm-run/shards/*.jsonl 2>/dev/null | grep -c '}$' || true; }
TOTAL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["total"])' "$WORK/slurm-run/sweep.json" 2>/dev/null || echo 0)

JOB=$(sbatch --parsable "$WORK/slurm-run/slurm/sweep.sbatch")
echo "submitted array job $JOB ($TASKS tasks)"
if [ "$KILL" -gt 0 ]; then
  # sweep.json is written by the first task; wait for it and a quarter of the points.
  for _ in $(seq 600); do
    [ -s "$WORK/slurm-run/sweep.json" ] && break
    sleep 0.5
  done
  TOTAL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["total"])' "$WORK/slurm-run/sweep.json")
  # Cancel running tasks part-way through their shard (≥ 50 records, not finished), then
  # pending ones, KILL in all.
  victims=""
  for _ in $(seq 3000); do
    victims=""
    for k in $(squeue -h -r -j "$JOB" -t RUNNING -o %K 2>/dev/null); do
      n=$(grep -c '}$' "$WORK/slurm-run/shards/shard-$k-of-$TASKS.jsonl" 2>/dev/null || true)
      [ "${n:-0}" -ge 50 ] && [ "${n:-0}" -lt $((TOTAL / TASKS - 50)) ] && victims="$victims $k"
    done
    [ -n "$victims" ] && break
    sleep 0.2
  done
  for k in $(squeue -h -r -j "$JOB" -t PENDING -o %K 2>/dev/null | tr ',' '\n' | grep -E '^[0-9]+$' | sort -n); do
    victims="$victims $k"
  done
  victims=$(echo $victims | tr ' ' '\n' | head -n "$KILL" | tr '\n' ' ')
  # The first victim gets SIGKILL (scancel -b -s KILL: the batch step is featlab itself,
  # `exec`ed), the others a plain scancel (SIGTERM, then SIGKILL after KillWait).
  how="-b -s KILL"
  for k in $victims; do
    n=$(grep -c '}$' "$WORK/slurm-run/shards/shard-$k-of-$TASKS.jsonl" 2>/dev/null || true)
    # shellcheck disable=SC2086
    scancel $how "${JOB}_$k" && echo "scancel ${how:+$how }${JOB}_$k (task $k had ${n:-0} records)"
    how=""
  done
fi
wait_job "$JOB"
sacct -j "$JOB" --format=JobID,State,ExitCode 2>/dev/null || true
if [ "$KILL" -gt 0 ]; then
  echo "records after the first array: $(records) of $TOTAL; per shard:"
  for f in "$WORK"/slurm-run/shards/*.jsonl; do echo "  $(basename "$f"): $(grep -c '}$' "$f" || true) records, last byte $(tail -c1 "$f" | od -An -c | tr -d ' ')"; done
  if "$FEATLAB" sweep merge "$WORK/slurm-run" --no-png --quiet 2>"$WORK/merge1.err"; then
    echo "FAIL: the merge after scancel reports no missing points (were the tasks cancelled too late?)" >&2
    exit 1
  fi
  grep -E "incomplete|missing" "$WORK/merge1.err" | head -3
  JOB2=$(sbatch --parsable "$WORK/slurm-run/slurm/sweep.sbatch")
  echo "resubmitted: array job $JOB2"
  wait_job "$JOB2"
  sacct -j "$JOB2" --format=JobID,State,ExitCode 2>/dev/null || true
fi
"$FEATLAB" sweep merge "$WORK/slurm-run" --no-png

# Every point exactly once: as many complete records as points, no id twice.
python3 - "$WORK/slurm-run" <<'PY'
import glob, json, sys
ids = []
for f in sorted(glob.glob(sys.argv[1] + "/shards/*.jsonl")):
    for line in open(f, "rb"):
        if line.endswith(b"\n"):
            ids.append(json.loads(line)["id"])
total = json.load(open(sys.argv[1] + "/sweep.json"))["counts"]["total"]
dups = len(ids) - len(set(ids))
print(f"shard records: {len(ids)}, distinct points: {len(set(ids))}, sweep points: {total}, recorded twice: {dups}")
sys.exit(0 if dups == 0 and len(set(ids)) == total else 1)
PY

"$FEATLAB" sweep "$SPEC" --out "$WORK/local" --jobs 2 --quiet --no-png
for f in results.csv results.parquet; do
  if cmp "$WORK/slurm-run/$f" "$WORK/local/$f"; then
    echo "OK: $f from the Slurm array ($TASKS tasks, $KILL cancelled and resubmitted) is identical to the local run"
  else
    echo "FAIL: $f differs between the Slurm array and the local run" >&2
    exit 1
  fi
done
