"""What a workdir was started with; refusing to resume it as another run.

A training workdir records its config in `config.json`. Resuming from its
checkpoints with a different objective (`rl.*`), model (`model.preset`,
`model.init_from`, `model.tokenizer`), data (`data.*`) or `seed` would
continue the old weights under a new name and rewrite the records that
describe them, so `check_resume` refuses it with a `ProvenanceError` naming
each differing key, unless the config sets `allow_config_change=True`. An
accepted change is appended to `WORKDIR/config_changes.json` (RL step, old
and new values) and listed in `report.md`.
"""

from __future__ import annotations

import datetime
import json
import os

# Keys (or key prefixes, ending in ".") that define what a run is.
KEYS = ("seed", "rl.", "model.preset", "model.init_from", "model.tokenizer", "data.")
CHANGES_FILE = "config_changes.json"


class ProvenanceError(ValueError):
  """Resuming a workdir with a config that describes a different run."""


def _leaves(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_leaves(v, f"{prefix}{k}."))
    else:
      out[prefix + k] = v
  return out


def _defining(key: str) -> bool:
  return any(key == k or (k.endswith(".") and key.startswith(k)) for k in KEYS)


def differences(recorded: dict, current: dict) -> dict[str, tuple]:
  """{key: (recorded, current)} over the run-defining keys both configs have
  (keys added by a newer trainer are not differences)."""
  old, new = _leaves(recorded), _leaves(current)
  return {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys())
          if _defining(k) and old[k] != new[k]}


def has_checkpoint(workdir: str) -> bool:
  ckpt = os.path.join(workdir, "checkpoints")
  return os.path.isdir(ckpt) and any(n.isdigit() for n in os.listdir(ckpt))


def check_resume(workdir: str, c) -> dict[str, tuple]:
  """Compares `c` with the workdir's recorded config before a resume.

  Returns the accepted differences (empty unless `allow_config_change`);
  raises `ProvenanceError` naming the differing keys otherwise. A workdir
  without checkpoints or without `config.json` starts fresh: no check.
  """
  path = os.path.join(workdir, "config.json")
  if not (has_checkpoint(workdir) and os.path.exists(path)):
    return {}
  try:
    with open(path) as f:
      recorded = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ProvenanceError(f"{path}: unreadable record of this workdir's config ({e}); "
                          "move it away to resume without the check") from e
  diff = differences(recorded, json.loads(c.to_json_best_effort()))
  if diff and not c.get("allow_config_change", False):
    lines = "\n".join(f"  {k}: {old!r} (recorded) -> {new!r} (now)"
                      for k, (old, new) in diff.items())
    raise ProvenanceError(
        f"{workdir} holds checkpoints of a run with a different config:\n{lines}\n"
        "Use a new --workdir, or pass --config.allow_config_change=True to continue "
        "these weights under the new config (the change is recorded in report.md).")
  return diff


def record(workdir: str, diff: dict[str, tuple], rl_step: int) -> None:
  """Appends an accepted change to `WORKDIR/config_changes.json`."""
  if not diff:
    return
  entries = history(workdir)
  entries.append({"rl_step": int(rl_step),
                  "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                      timespec="seconds"),
                  "changed": {k: {"from": old, "to": new} for k, (old, new) in diff.items()}})
  tmp = os.path.join(workdir, CHANGES_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump(entries, f, indent=2)
  os.replace(tmp, os.path.join(workdir, CHANGES_FILE))


def history(workdir: str) -> list[dict]:
  path = os.path.join(workdir, CHANGES_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def report_lines(entries: list[dict]) -> list[str]:
  """Markdown lines for `report.md` (none when the config never changed)."""
  if not entries:
    return []
  lines = ["## Config changes accepted on resume (`allow_config_change`)", ""]
  for e in entries:
    for key, v in e["changed"].items():
      lines.append(f"- RL step {e['rl_step']}: `{key}` {v['from']!r} -> {v['to']!r}")
  return lines + [""]
