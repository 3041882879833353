#!/usr/bin/env bash
# Copies a run's workdir (orbax checkpoints, metrics, plots, HF export) from
# every worker of a TPU slice to a bucket, or downloads it from the bucket.
# `gcloud storage rsync` only transfers what changed, so re-running is cheap.
#
#   launch/copy_checkpoints.sh --name mc-v5e-16 --zone us-west4-a \
#       --bucket gs://my-bucket/microcoder [--workdir runs/mc-v5e-16] [--project P] [--dry-run]
#   launch/copy_checkpoints.sh --bucket gs://my-bucket/microcoder --run mc-v5e-16 \
#       --download runs/mc-v5e-16 [--dry-run]
#
# Upload: each worker syncs its --workdir (relative to ~/microcoder_jax; the
# default is run_tpu.sh's) to BUCKET/RUN/, RUN defaulting to --name, so the
# per-host pieces of a multi-host orbax checkpoint end up side by side.
# Download: BUCKET/RUN/ into a local directory, ready for
# `python -m microcoder_jax.benchmark --model DIR`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


NAME="" ZONE="" BUCKET="" WORKDIR="" RUN="" DOWNLOAD="" PROJECT_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); shift 2 ;;
    --bucket) need_value "$1" "${2:-}"; BUCKET="${2%/}"; shift 2 ;;
    --workdir) need_value "$1" "${2:-}"; WORKDIR="$2"; shift 2 ;;
    --run) need_value "$1" "${2:-}"; RUN="$2"; shift 2 ;;
    --download) need_value "$1" "${2:-}"; DOWNLOAD="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$BUCKET" == gs://* ]] || { echo "--bucket gs://BUCKET[/PREFIX] is required" >&2; usage; }
RUN="${RUN:-$NAME}"
[[ -n "$RUN" ]] || die "--name (or --run) is required"

if [[ -n "$DOWNLOAD" ]]; then
  run mkdir -p "$DOWNLOAD"
  run "$GCLOUD" storage rsync --recursive "$BUCKET/$RUN" "$DOWNLOAD" \
    ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
  exit 0
fi
[[ -n "$NAME" && -n "$ZONE" ]] || die "--name and --zone are required to upload"
WORKDIR="${WORKDIR:-runs/$NAME}"
REMOTE="set -e; cd \$HOME/microcoder_jax; if [ -d $(shquote "$WORKDIR") ]; then"
REMOTE+=" gcloud storage rsync --recursive $(shquote "$WORKDIR") $(shquote "$BUCKET/$RUN");"
REMOTE+=" else echo \"\$(hostname): no $(shquote "$WORKDIR") here, nothing to copy\"; fi"
tpu_ssh "$NAME" "$ZONE" all "$REMOTE" ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
