#!/usr/bin/env bash
# Streams the training log of a TPU VM / pod slice (started by run_tpu.sh).
#
#   launch/logs_tpu.sh --name mc-v5e-16 --zone us-west4-a [--project P] \
#       [--worker 0|all] [--dry-run]
#
# Worker 0 holds the metrics and progress bar; --worker=all shows every host.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


NAME="" ZONE="" WORKER=0 PROJECT_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); shift 2 ;;
    --worker) need_value "$1" "${2:-}"; WORKER="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ -n "$NAME" && -n "$ZONE" ]] || { echo "--name and --zone are required" >&2; usage; }
tpu_ssh "$NAME" "$ZONE" "$WORKER" "tail -n 200 -F \$HOME/logs/$(shquote "$NAME").log" \
  ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
