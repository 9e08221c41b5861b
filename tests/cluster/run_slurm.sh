#!/usr/bin/env bash
# The tiny workflow through a real SLURM scheduler, started on this machine (issue #9).
#
#   sudo tests/cluster/run_slurm.sh            # from the repository root, as root
#
# CI-optional, never run by pytest. What it does:
#   1. installs Debian's SLURM and MUNGE (apt-get install slurm-wlm munge) when slurmctld is
#      missing, and the [slurm] extra (snakemake-executor-plugin-slurm) into the virtualenv;
#   2. writes a one-node cluster under $WORK: slurm.conf with
#      this machine's real CPUs and memory (`slurmd -C`), a `cpu` partition (the default)
#      and a `gpu` partition on the same node. The node declares one GPU (generic resource
#      gpu:1) whose device file is /dev/null: SLURM 22.05 drops a gpu GRES without a File,
#      and without one the `--gpus=1` the plugin asks for the gpu=1 rules is refused. So
#      the GPU request is scheduled for real even on a machine without a GPU; those jobs
#      then run on the CPU (torch finds no CUDA device). No accounting (no slurmdbd);
#      The config is found through SLURM_CONF, except by the `srun` that the plugin's job
#      step runs inside each job: snakemake-executor-plugin-slurm-jobstep removes every
#      SLURM_* variable but the job's identity from its environment, SLURM_CONF included.
#      So /etc/slurm/slurm.conf and gres.conf are linked to the files in $WORK for the
#      length of the run (the script refuses to run where a slurm.conf already exists);
#   3. starts munged (its own key and socket), slurmctld and slurmd;
#   4. runs `snakemake --workflow-profile profiles/slurm --configfile config/tiny.yaml`
#      to the end (the default target `all`) through the slurm executor. Without
#      accounting `sacct` cannot answer, so jobs are polled with `squeue`
#      (--slurm-status-command squeue; MinJobAge=7200 keeps a finished job visible to it,
#      and to the checks, for two hours), and with no accounts --slurm-no-account (plugin
#      2.8.0 still tries to guess one with sacct, fails, and goes on without one);
#   5. checks the final outputs, and (`scontrol show job`) that every job of a gpu=1 rule
#      ran on the gpu partition with one GPU requested, and every other job on cpu;
#   6. stops what it started, by process id (also on failure, Ctrl-C or SIGTERM):
#      snakemake (which cancels its jobs), then slurmd, slurmctld and munged; removes
#      the links in /etc/slurm, and $WORK unless KEEP=1 or the run failed.
#
# Needs: Debian/Ubuntu, root (apt-get, and slurmd runs jobs as their user), ports 6817 and
# 6818 free (SLURMCTLD_PORT, SLURMD_PORT to change), python3 >= 3.11. Took 17.5 minutes
# (TARGET=gpp_eval: 6.5) on a 2-core VM shared with other work (README, "Run on a cluster").
# Environment: WORK (default: a new folder under /tmp), VENV (default: .venv of the
# repository), KEEP=1 keeps $WORK, TARGET (default: all).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/ecoembed-slurm.XXXXXX)}
VENV=${VENV:-$REPO/.venv}
TARGET=${TARGET:-all}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
PIDS=()   # daemons, in start order
LINKED=() # links made in /etc/slurm
SNAKEMAKE_PID=

log() { printf '[run_slurm %(%H:%M:%S)T] %s\n' -1 "$*"; }

# SIGTERM, then SIGKILL after $2 half-seconds, to one process this script started
stop() {
    local pid=$1 tries=${2:-20}
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq "$tries"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - INT TERM
    # snakemake first, while slurmctld still answers its scancel of the running jobs
    [[ -n "$SNAKEMAKE_PID" ]] && stop "$SNAKEMAKE_PID" 60
    if [[ ${#PIDS[@]} -gt 0 && -n "${SLURM_CONF:-}" ]]; then
        timeout 10 scancel --user "$(id -un)" 2>/dev/null || true
    fi
    # then the daemons, newest first
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop "${PIDS[i]}" 20; done
    for f in "${LINKED[@]}"; do rm -f "$f"; done
    if [[ $rc -ne 0 ]]; then
        log "FAILED (exit $rc); daemon logs:"
        tail -n 30 "$WORK"/log/*.log 2>/dev/null || true
    fi
    if [[ "${KEEP:-0}" != 1 && $rc -eq 0 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || { echo "run as root (apt-get, slurmd)" >&2; exit 2; }
START=$SECONDS

# --- 1. software --------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge from the distribution"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating the virtualenv ($VENV)"
    make -C "$REPO" setup VENV="$VENV"
fi
PY=$VENV/bin/python
if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    log "installing the [slurm] extra"
    "$PY" -m pip install -q -e "$REPO[slurm]"
fi
log "$(slurmctld -V), snakemake $("$PY" -m snakemake --version)," \
    "executor plugin $("$PY" -m pip show snakemake-executor-plugin-slurm | sed -n 's/^Version: //p')"

# --- 2. a one-node cluster under $WORK -------------------------------------------------
mkdir -p "$WORK"/{etc,log,state/ctld,state/d,munge,run}
chmod 700 "$WORK/munge"
HOST=$(hostname -s)
# this machine's real CPUs, boards, sockets, cores, threads and memory
NODE=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$HOST/")
cat >"$WORK/etc/slurm.conf" <<EOF
# written by tests/cluster/run_slurm.sh: one node, two partitions, no accounting
ClusterName=ecoembed-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state/ctld
SlurmdSpoolDir=$WORK/state/d
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# one line per finished job, kept in \$WORK/log for the record
JobCompType=jobcomp/filetxt
JobCompLoc=$WORK/log/jobcomp.txt
MpiDefault=none
ReturnToService=2
MinJobAge=7200
$NODE Gres=gpu:1 NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
# one schedulable GPU, bound to no device (see the header)
echo "NodeName=$HOST Name=gpu Count=1 File=/dev/null" >"$WORK/etc/gres.conf"
export SLURM_CONF=$WORK/etc/slurm.conf
# the default path too (see the header: the job step's srun does not see SLURM_CONF)
for f in slurm.conf gres.conf; do
    if [[ -e /etc/slurm/$f && ! -L /etc/slurm/$f ]]; then
        log "/etc/slurm/$f exists: this machine has a SLURM of its own; not touching it"
        exit 2
    fi
done
mkdir -p /etc/slurm
for f in slurm.conf gres.conf; do
    ln -sfn "$WORK/etc/$f" "/etc/slurm/$f"
    LINKED+=("/etc/slurm/$f")
done
log "node: $NODE Gres=gpu:1"

# --- 3. daemons -------------------------------------------------------------------------
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then
        log "port $port is in use (another slurmctld/slurmd?); set SLURMCTLD_PORT/SLURMD_PORT"
        exit 2
    fi
done
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --foreground --force \
    --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
    --pid-file="$WORK/run/munged.pid" --seed-file="$WORK/munge/munged.seed" \
    --log-file="$WORK/log/munged.log" &
PIDS+=($!)
for _ in $(seq 20); do [[ -S "$WORK/munge/munge.socket" ]] && break; sleep 0.5; done
munge --socket="$WORK/munge/munge.socket" -n | unmunge --socket="$WORK/munge/munge.socket" >/dev/null
slurmctld -D -i &
PIDS+=($!)
sleep 2
slurmd -D &
PIDS+=($!)
for i in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n 1 || true)
    [[ "$state" == idle ]] && break
    [[ $i -eq 60 ]] && { log "node not idle after 60 s (state: '$state')"; exit 1; }
    sleep 1
done
log "cluster up:"
sinfo

# --- 4. the workflow -------------------------------------------------------------------
RUN=$WORK/workflow
mkdir -p "$RUN"
log "snakemake $TARGET on config/tiny.yaml through SLURM (working directory $RUN)"
T0=$SECONDS
"$PY" -m snakemake -s "$REPO/Snakefile" --directory "$RUN" \
    --configfile "$REPO/config/tiny.yaml" \
    --workflow-profile "$REPO/profiles/slurm" \
    --slurm-status-command squeue --slurm-no-account \
    --slurm-init-seconds-before-status-checks 10 \
    --jobs 4 --local-cores 1 \
    "$TARGET" &
SNAKEMAKE_PID=$!
wait "$SNAKEMAKE_PID" # in the background, so that a signal reaches the trap at once
SNAKEMAKE_PID=
WORKFLOW_S=$((SECONDS - T0))

# --- 5. checks ---------------------------------------------------------------------------
cd "$RUN"
missing=0
for f in results/gpp/metrics.csv results/gpp/summary.csv results/gpp/predictions.parquet \
    results/models/fusion.pt results/models/encoder_s2.pt results/models/encoder_s1.pt \
    results/sites/site_embeddings.parquet; do
    [[ -s "$f" ]] || { log "missing output: $f"; missing=1; }
done
if [[ "$TARGET" == all ]]; then
    for f in results/eval/reconstruction.csv results/embeddings/tile00.zarr \
        results/embeddings_daily/tile00.zarr; do
        [[ -e "$f" ]] || { log "missing output: $f"; missing=1; }
    done
    n_png=$(find results/figures -name '*.png' | wc -l)
    [[ $n_png -ge 7 ]] || { log "only $n_png figures"; missing=1; }
fi
[[ $missing -eq 0 ]] || exit 1
"$PY" - <<'EOF'
import pandas as pd
m = pd.read_csv("results/gpp/summary.csv")
print(m.to_string(max_rows=20))
assert len(m) > 0 and m.notna().any().all(), "empty GPP summary"
EOF
# every job of a gpu=1 rule went to the gpu partition with one GPU, the others to cpu
# (the jobs' --comment is rule_<name>[_wildcards_...]; MinJobAge keeps them all listed)
scontrol show job -o >"$WORK/log/jobs.txt"
# tiny, one tile: pretrain x2, train_fusion, embed, embed_daily, site_embeddings for
# `all`; gpp_eval needs no embed or embed_daily
MIN_GPU_JOBS=$([[ "$TARGET" == all ]] && echo 6 || echo 1)
"$PY" - "$WORK/log/jobs.txt" "$MIN_GPU_JOBS" <<'EOF'
import re
import sys

GPU_RULES = {"pretrain", "train_fusion", "embed", "embed_daily", "site_embeddings"}
rows = []
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\w+)=(\S*)", line))
    m = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", f.get("Comment", ""))
    if m:
        rows.append((int(f["JobId"]), m[1], f["Partition"], f.get("TresPerJob", ""), f["JobState"]))
for r in sorted(rows):
    print("    job %-3d %-26s %-4s %-14s %s" % r)
gpu = [r for r in rows if r[1] in GPU_RULES]
wrong = [r for r in rows if (r[1] in GPU_RULES) != (r[2] == "gpu" and "gpu:1" in r[3])]
assert not wrong, f"jobs on the wrong partition or with the wrong GPU request: {wrong}"
assert len(gpu) >= int(sys.argv[2]), f"only {len(gpu)} jobs of gpu=1 rules"
print(f"{len(rows)} SLURM jobs, {len(gpu)} of gpu=1 rules on the gpu partition, one GPU each")
EOF
log "PASSED: workflow ${WORKFLOW_S} s, all in $((SECONDS - START)) s"
