#!/usr/bin/env bash
# Creates a TPU VM or pod slice (if it does not exist yet) and installs
# microcoder_jax on every worker (install_tpu.sh). Safe to re-run.
#
#   launch/create_tpu.sh --name mc-v5e-16 --zone us-west4-a --type v5litepod-16 \
#       [--version v2-alpha-tpuv5-lite] [--project P] [--spot] [--dry-run] \
#       [install_tpu.sh options: --repo URL --ref REF | --from-local, --mount-bucket B]
#
# --type is the accelerator type: v4-8, v5litepod-8, v5p-32, v6e-64, ...
# Without --version the runtime is picked from the type's generation.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


NAME="" ZONE="" TYPE="" VERSION="" SPOT=0 REPO="" FROM_LOCAL=0
PROJECT_ARGS=() INSTALL_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --type) need_value "$1" "${2:-}"; TYPE="$2"; shift 2 ;;
    --version) need_value "$1" "${2:-}"; VERSION="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); shift 2 ;;
    --spot) SPOT=1; shift ;;
    --dry-run) DRY_RUN=1; INSTALL_ARGS+=(--dry-run); shift ;;
    --repo|--ref|--mount-bucket)
      need_value "$1" "${2:-}"; INSTALL_ARGS+=("$1" "$2")
      [[ "$1" == --repo ]] && REPO="$2"
      shift 2 ;;
    --from-local) INSTALL_ARGS+=("$1"); FROM_LOCAL=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ -n "$NAME" && -n "$ZONE" && -n "$TYPE" ]] || { echo "--name, --zone and --type are required" >&2; usage; }

if [[ -z "$VERSION" ]]; then
  case "$TYPE" in
    v4-*) VERSION="tpu-ubuntu2204-base" ;;
    v5litepod-*|v5e-*) VERSION="v2-alpha-tpuv5-lite" ;;
    v5p-*) VERSION="v2-alpha-tpuv5" ;;
    v6e-*) VERSION="v2-alpha-tpuv6e" ;;
    *) die "no default runtime for --type $TYPE; pass --version" ;;
  esac
fi

# A source the workers cannot clone: say so before creating anything.
if [[ "$FROM_LOCAL" == 0 ]]; then
  WHAT="--repo"
  [[ -n "$REPO" ]] || { WHAT="origin"
    REPO="$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." remote get-url origin 2>/dev/null || true)"; }
  if [[ -n "$REPO" ]]; then
    warn_local_repo "$REPO" "$WHAT"
    export MICROCODER_REPO_CHECKED=1
  fi
fi

if tpu_exists "$NAME" "$ZONE" ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}; then
  echo "TPU $NAME already exists in $ZONE; not creating it" >&2
else
  EXTRA=()
  [[ "$SPOT" == 1 ]] && EXTRA+=(--spot)
  run "$GCLOUD" compute tpus tpu-vm create "$NAME" --zone="$ZONE" \
    --accelerator-type="$TYPE" --version="$VERSION" \
    ${EXTRA[@]+"${EXTRA[@]}"} ${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"}
fi

P=()
[[ ${#PROJECT_ARGS[@]} -gt 0 ]] && P=(--project "${PROJECT_ARGS[0]#--project=}")
exec "$(dirname "${BASH_SOURCE[0]}")/install_tpu.sh" --name "$NAME" --zone "$ZONE" \
  ${P[@]+"${P[@]}"} ${INSTALL_ARGS[@]+"${INSTALL_ARGS[@]}"}
