#!/usr/bin/env bash
# Deletes a TPU VM / pod slice if it exists, optionally after copying a run's
# workdir to a bucket (copy_checkpoints.sh). Safe to re-run.
#
#   launch/delete_tpu.sh --name mc-v5e-16 --zone us-west4-a [--project P] \
#       [--copy-to gs://my-bucket/microcoder [--workdir runs/mc-v5e-16]] [--dry-run]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


NAME="" ZONE="" COPY_TO="" WORKDIR="" PROJECT_ARGS=() COPY_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); COPY_ARGS+=(--project "$2"); shift 2 ;;
    --copy-to) need_value "$1" "${2:-}"; COPY_TO="$2"; shift 2 ;;
    --workdir) need_value "$1" "${2:-}"; COPY_ARGS+=(--workdir "$2"); shift 2 ;;
    --dry-run) DRY_RUN=1; COPY_ARGS+=(--dry-run); shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ -n "$NAME" && -n "$ZONE" ]] || { echo "--name and --zone are required" >&2; usage; }

if tpu_exists "$NAME" "$ZONE" ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"} || [[ "$DRY_RUN" == 1 ]]; then
  if [[ -n "$COPY_TO" ]]; then
    "$(dirname "${BASH_SOURCE[0]}")/copy_checkpoints.sh" --name "$NAME" --zone "$ZONE" \
      --bucket "$COPY_TO" ${COPY_ARGS[@]+"${COPY_ARGS[@]}"}
  fi
  run "$GCLOUD" compute tpus tpu-vm delete "$NAME" --zone="$ZONE" --quiet \
    ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
else
  echo "TPU $NAME does not exist in $ZONE; nothing to delete" >&2
fi
