#!/usr/bin/env bash
# Runs `python -m microcoder_jax.train` on every worker of a TPU VM / pod slice,
# with multi-host initialisation (`--config.multihost=True`: each worker calls
# jax.distributed.initialize(), which finds its peers on TPU VMs by itself).
# Logs stream here (all workers, interleaved) and are appended to
# ~/logs/NAME.log on each worker. Re-running resumes from the latest checkpoint
# in --workdir; it refuses to start while a run is still alive on the slice.
#
#   launch/run_tpu.sh --name mc-v5e-16 --zone us-west4-a [--project P] \
#       [--workdir runs/mc] [--detach] [--dry-run] -- \
#       --config=configs/microcoder_grpo.py:model=qwen3_1p7b,train=data/train.jsonl
#
# --workdir is relative to the checkout on the worker (~/microcoder_jax);
# default runs/NAME. On multi-host slices use a directory every worker shares,
# e.g. ../gcs/runs/NAME after install_tpu.sh --mount-bucket.
# --detach starts the run in the background and returns; follow it with
# launch/logs_tpu.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


NAME="" ZONE="" WORKDIR="" DETACH=0
PROJECT_ARGS=() TRAIN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); shift 2 ;;
    --workdir) need_value "$1" "${2:-}"; WORKDIR="$2"; shift 2 ;;
    --detach) DETACH=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    *) die "unknown option $1 (trainer flags go after --; see --help)" ;;
  esac
done
[[ -n "$NAME" && -n "$ZONE" ]] || { echo "--name and --zone are required" >&2; usage; }
printf '%s\n' ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} | grep -q '^--config=' \
  || die "pass the trainer's --config=... after --"
printf '%s\n' ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} | grep -q '^--workdir' \
  && die "use this script's --workdir, not the trainer's"
WORKDIR="${WORKDIR:-runs/$NAME}"

ARGS=""
for a in ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"}; do ARGS+=" $(shquote "$a")"; done
LOG="\$HOME/logs/$(shquote "$NAME").log"
TRAIN="\$HOME/venv-microcoder/bin/python -m microcoder_jax.train$ARGS"
TRAIN+=" --workdir=$(shquote "$WORKDIR") --config.multihost=True"

PIDF="\$HOME/logs/$(shquote "$NAME").pid"
REMOTE="set -eo pipefail; cd \$HOME/microcoder_jax; mkdir -p \$HOME/logs"
REMOTE+="; if [ -f $PIDF ] && grep -qs microcoder_jax.train /proc/\$(cat $PIDF)/cmdline; then"
REMOTE+=" echo \"\$(hostname): run \$(cat $PIDF) is still alive; not starting another\" >&2; exit 3; fi"
if [[ "$DETACH" == 1 ]]; then
  REMOTE+="; nohup setsid $TRAIN >>$LOG 2>&1 </dev/null & echo \$! >$PIDF"
  REMOTE+="; echo \"\$(hostname): started \$(cat $PIDF), log $LOG\""
else
  REMOTE+="; ( echo \$BASHPID >$PIDF; exec $TRAIN ) 2>&1 | tee -a $LOG"
fi
tpu_ssh "$NAME" "$ZONE" all "$REMOTE" ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
