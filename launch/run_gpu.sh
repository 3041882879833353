#!/usr/bin/env bash
# Trains on one host with one or more NVIDIA GPUs: creates a venv with
# microcoder_jax and jax[cuda12] (only if missing), checks that JAX sees the
# GPUs, then runs the trainer with the mesh over all visible local GPUs (the
# configs' default mesh is fsdp = every device). Safe to re-run: a run
# resumes from the latest checkpoint in its --workdir.
#
#   launch/run_gpu.sh [--venv ~/venv-microcoder-gpu] [--gpus 0,1,2,3] [--log FILE] [--dry-run] -- \
#       --config=configs/microcoder_grpo.py:model=qwen3_1p7b,train=data/train.jsonl \
#       --workdir=runs/mc_1p7b
#
# --gpus sets CUDA_VISIBLE_DEVICES. Trainer flags go after --; relative paths
# in them are relative to the directory you run the script from.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$HOME/venv-microcoder-gpu" GPUS="" LOG="" TRAIN_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) need_value "$1" "${2:-}"; VENV="$2"; shift 2 ;;
    --gpus) need_value "$1" "${2:-}"; GPUS="$2"; shift 2 ;;
    --log) need_value "$1" "${2:-}"; LOG="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    *) die "unknown option $1 (trainer flags go after --; see --help)" ;;
  esac
done
printf '%s\n' ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} | grep -q '^--config=' \
  || die "pass the trainer's --config=... after --"
printf '%s\n' ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} | grep -q '^--workdir=' \
  || die "pass the trainer's --workdir=... after --"

PY="$VENV/bin/python"
probe nvidia-smi -L || [[ "$DRY_RUN" == 1 ]] || die "nvidia-smi found no GPU on this host"
if [[ "$DRY_RUN" == 1 || ! -x "$PY" ]]; then
  run python3 -m venv "$VENV"
fi
if ! probe "$PY" -c "import jax, microcoder_jax; assert jax.default_backend() == 'gpu'"; then
  run "$PY" -m pip install --quiet --upgrade pip
  run "$PY" -m pip install --quiet -e "$ROOT" "jax[cuda12]"
fi
export CUDA_VISIBLE_DEVICES="${GPUS:-${CUDA_VISIBLE_DEVICES:-}}"
[[ -n "$CUDA_VISIBLE_DEVICES" ]] || unset CUDA_VISIBLE_DEVICES
[[ -n "$GPUS" && "$DRY_RUN" == 1 ]] && echo "+ export CUDA_VISIBLE_DEVICES=$GPUS"
run "$PY" -c "import jax; d = jax.devices(); print(len(d), 'devices:', d); assert d[0].platform == 'gpu'"
if [[ -n "$LOG" ]]; then
  [[ "$DRY_RUN" == 1 ]] && { print_cmd "+ " "$PY" -m microcoder_jax.train "${TRAIN_ARGS[@]}"; echo "  (output appended to $LOG)"; exit 0; }
  "$PY" -m microcoder_jax.train "${TRAIN_ARGS[@]}" 2>&1 | tee -a "$LOG"
else
  run "$PY" -m microcoder_jax.train "${TRAIN_ARGS[@]}"
fi
