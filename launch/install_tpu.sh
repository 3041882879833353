#!/usr/bin/env bash
# Installs microcoder_jax into a venv on every worker of a TPU VM / pod slice.
# Safe to re-run: clones only if missing, creates the venv only if missing,
# and `pip install -e` is a no-op when nothing changed.
#
#   launch/install_tpu.sh --name mc-v5e-16 --zone us-west4-a [--project P] \
#       [--repo URL] [--ref REF] [--from-local] [--mount-bucket BUCKET] \
#       [--dry-run]
#
# Source: --repo/--ref (default: this checkout's `origin` URL at its HEAD
# commit, so every worker runs exactly the code you have committed; an
# origin that is a local path draws a warning, as workers cannot clone it), or
# --from-local to copy this checkout's tracked files (uncommitted edits
# included) with `tpu-vm scp`. --mount-bucket mounts gs://BUCKET with gcsfuse
# at ~/gcs on every worker: use it as --workdir on multi-host slices.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="" ZONE="" REPO="" REF="" FROM_LOCAL=0 BUCKET="" VENV='$HOME/venv-microcoder'
PROJECT_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$1" "${2:-}"; NAME="$2"; shift 2 ;;
    --zone) need_value "$1" "${2:-}"; ZONE="$2"; shift 2 ;;
    --project) need_value "$1" "${2:-}"; PROJECT_ARGS=(--project="$2"); shift 2 ;;
    --repo) need_value "$1" "${2:-}"; REPO="$2"; shift 2 ;;
    --ref) need_value "$1" "${2:-}"; REF="$2"; shift 2 ;;
    --from-local) FROM_LOCAL=1; shift ;;
    --mount-bucket) need_value "$1" "${2:-}"; BUCKET="${2#gs://}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ -n "$NAME" && -n "$ZONE" ]] || { echo "--name and --zone are required" >&2; usage; }
P=(${PROJECT_ARGS[@]+"${PROJECT_ARGS[@]}"})

SRC='$HOME/microcoder_jax'
if [[ "$FROM_LOCAL" == 1 ]]; then
  TARBALL="${TMPDIR:-/tmp}/microcoder_jax-src.tgz"
  if [[ "$DRY_RUN" == 1 ]]; then
    echo "+ git -C $(printf '%q' "$ROOT") ls-files -z | tar --null -czf $(printf '%q' "$TARBALL") -C $(printf '%q' "$ROOT") -T -"
  else
    git -C "$ROOT" ls-files -z | tar --null -czf "$TARBALL" -C "$ROOT" -T -
  fi
  run "$GCLOUD" compute tpus tpu-vm scp "$TARBALL" "$NAME":microcoder_jax-src.tgz \
    --zone="$ZONE" --worker=all ${P[@]+"${P[@]}"}
  FETCH="mkdir -p $SRC && tar -xzf \$HOME/microcoder_jax-src.tgz -C $SRC"
else
  WHAT="--repo"
  [[ -n "$REPO" ]] || { WHAT="origin"; REPO="$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)"; }
  [[ -n "$REPO" ]] || die "no --repo given and this checkout has no 'origin'; pass --repo URL or --from-local"
  warn_local_repo "$REPO" "$WHAT"
  [[ -n "$REF" ]] || REF="$(git -C "$ROOT" rev-parse --verify -q HEAD 2>/dev/null || echo main)"
  QREPO="$(printf '%q' "$REPO")" QREF="$(printf '%q' "$REF")"
  FETCH="{ [ -d $SRC/.git ] || git clone --quiet $QREPO $SRC; }"
  # A branch name follows origin (re-running updates it); a tag or commit is pinned.
  FETCH+=" && git -C $SRC fetch --quiet --tags origin"
  FETCH+=" && { git -C $SRC checkout --quiet --detach origin/$QREF 2>/dev/null"
  FETCH+=" || git -C $SRC checkout --quiet --detach $QREF; }"
fi

INSTALL="set -e; $FETCH"
INSTALL+="; { [ -x $VENV/bin/python ] || python3 -m venv $VENV"
INSTALL+=" || { sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv && python3 -m venv $VENV; }; }"
INSTALL+="; $VENV/bin/pip install --quiet --upgrade pip"
INSTALL+="; $VENV/bin/pip install --quiet -e \"$SRC[tpu]\""
INSTALL+="; $VENV/bin/python -c 'import jax, microcoder_jax; print(\"microcoder_jax ok, jax\", jax.__version__)'"
tpu_ssh "$NAME" "$ZONE" all "$INSTALL" ${P[@]+"${P[@]}"}

if [[ -n "$BUCKET" ]]; then
  QB="$(printf '%q' "$BUCKET")"
  MOUNT="set -e; if mountpoint -q ~/gcs; then echo 'gs://'$QB' already mounted at ~/gcs'; else"
  MOUNT+=" command -v gcsfuse >/dev/null || {"
  MOUNT+=" curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null"
  MOUNT+=" && echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-\$(lsb_release -c -s) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null"
  MOUNT+=" && sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse; }"
  MOUNT+="; mkdir -p ~/gcs && gcsfuse --implicit-dirs $QB ~/gcs; fi"
  tpu_ssh "$NAME" "$ZONE" all "$MOUNT" ${P[@]+"${P[@]}"}
fi
