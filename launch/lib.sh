# Shared helpers for the launch scripts; sourced, not run.
#
# Every command that touches the cloud goes through `run` (mutating) or
# `probe` (read-only existence checks). With --dry-run both print the command,
# shell-quoted so it can be pasted, and run nothing; `probe` then answers
# "missing", so a dry run shows the full sequence a fresh project would get.

set -euo pipefail

GCLOUD="${GCLOUD:-gcloud}"   # tests point this at a recording fake
DRY_RUN=0

die() { echo "error: $*" >&2; exit 2; }

# usage: the script's header comment (from line 2 to the first non-comment line).
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }

# shquote ARG: ARG as one shell word, single-quoted when needed ("--flag=" kept outside).
shquote() {
  local s="$1" flag=""
  if [[ "$s" =~ ^(--[A-Za-z0-9-]+=)(.*)$ ]]; then
    flag="${BASH_REMATCH[1]}" s="${BASH_REMATCH[2]}"
  fi
  if [[ "$s" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s%s' "$flag" "$s"
  else
    printf "%s'%s'" "$flag" "${s//\'/\'\\\'\'}"
  fi
}

print_cmd() {
  local prefix="$1"; shift
  local out="" a
  for a in "$@"; do out+="$(shquote "$a") "; done
  echo "${prefix}${out% }"
}

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    print_cmd "+ " "$@"
  else
    print_cmd "+ " "$@" >&2
    "$@"
  fi
}

# probe CMD...: exit status of a read-only check; in dry-run prints it and fails.
probe() {
  if [[ "$DRY_RUN" == 1 ]]; then
    print_cmd "? " "$@"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

tpu_exists() {  # NAME ZONE PROJECT_ARGS...
  local name="$1" zone="$2"; shift 2
  probe "$GCLOUD" compute tpus tpu-vm describe "$name" --zone="$zone" "$@" --format=value\(state\)
}

# tpu_ssh NAME ZONE WORKER COMMAND [PROJECT_ARGS...]: one command on the workers.
tpu_ssh() {
  local name="$1" zone="$2" worker="$3" command="$4"; shift 4
  run "$GCLOUD" compute tpus tpu-vm ssh "$name" --zone="$zone" --worker="$worker" "$@" \
    --command="$command"
}

need_value() {  # FLAG VALUE
  [[ -n "${2:-}" && "${2:0:2}" != "--" ]] || die "$1 needs a value"
}

# is_local_repo URL: true when URL names a directory on this machine (a path,
# or file://...), which a TPU worker cannot clone. Anything with a scheme, and
# git's scp-like `[user@]host:path` (a colon before any slash), is remote.
is_local_repo() {
  local url="$1"
  [[ "$url" == file://* ]] && return 0
  [[ "$url" == *://* || "$url" =~ ^[^/]+: ]] && return 1
  return 0
}

# warn_local_repo URL WHAT: the warning (stderr) when URL is local; WHAT names
# where it came from ("origin", "--repo"). Printed once per run: create_tpu.sh
# checks before creating the TPU and its install_tpu.sh then stays quiet.
warn_local_repo() {
  [[ -z "${MICROCODER_REPO_CHECKED:-}" ]] && is_local_repo "$1" || return 0
  echo "warning: $2 is a local path ($1), which the TPU workers cannot clone;" \
    "pass --from-local to copy this checkout, or --repo URL" >&2
}
