"""Launch scripts: dry-run output, idempotency and the remote run logic, offline.

A fake `gcloud` (the scripts honour $GCLOUD) records every invocation; for
`tpu-vm ssh` it can also execute the remote command locally in a fake home
directory, standing in for one TPU worker.
"""

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch")
SCRIPTS = ["create_tpu.sh", "install_tpu.sh", "run_tpu.sh", "logs_tpu.sh",
           "copy_checkpoints.sh", "delete_tpu.sh", "run_gpu.sh"]

FAKE_GCLOUD = """#!{python}
import json, os, subprocess, sys
with open(os.environ["FAKE_LOG"], "a") as f:
  f.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "describe" in args:
  sys.exit(0 if os.environ.get("FAKE_TPU_EXISTS") == "1" else 1)
if "ssh" in args and os.environ.get("FAKE_EXEC_REMOTE") == "1":
  cmd = next(a for a in args if a.startswith("--command="))[len("--command="):]
  env = dict(os.environ, HOME=os.environ["FAKE_HOME"])
  sys.exit(subprocess.call(["bash", "-c", cmd], env=env))
"""

FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for the worker's venv python
echo "fake-train $*"
echo "$*" >> "$HOME/train_args"
sleep "${FAKE_TRAIN_SECONDS:-0}"
"""


@pytest.fixture
def fake(tmp_path):
  bin_dir, home = tmp_path / "bin", tmp_path / "home"
  bin_dir.mkdir()
  (home / "microcoder_jax").mkdir(parents=True)
  (home / "venv-microcoder" / "bin").mkdir(parents=True)
  for path, text in ((bin_dir / "gcloud", FAKE_GCLOUD.format(python=sys.executable)),
                     (home / "venv-microcoder" / "bin" / "python", FAKE_PYTHON)):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
  env = dict(os.environ, GCLOUD=str(bin_dir / "gcloud"), FAKE_LOG=str(tmp_path / "calls"),
             FAKE_HOME=str(home), PATH=f"{bin_dir}:{os.environ['PATH']}")

  class Fake:
    def run(self, script, *args, check=True, launch=LAUNCH, **extra_env):
      proc = subprocess.run(["bash", os.path.join(launch, script), *args], cwd=ROOT,
                            env={**env, **extra_env}, capture_output=True, text=True,
                            timeout=60)
      if check:
        assert proc.returncode == 0, proc.stderr
      return proc

    def calls(self):
      path = tmp_path / "calls"
      if not path.exists():
        return []
      calls = [json.loads(l) for l in path.read_text().splitlines()]
      path.unlink()
      return calls

  f = Fake()
  f.home = home
  return f


def _printed(stdout, prefix="+ "):
  """Commands a dry run prints, split as the shell would split them."""
  return [shlex.split(l[len(prefix):]) for l in stdout.splitlines() if l.startswith(prefix)]


def _gcloud(cmds):
  return [c[1:] for c in cmds if c[0].endswith("gcloud")]


def test_scripts_parse_and_explain_themselves():
  for name in SCRIPTS + ["lib.sh"]:
    assert subprocess.run(["bash", "-n", os.path.join(LAUNCH, name)]).returncode == 0, name
  for name in SCRIPTS:
    proc = subprocess.run(["bash", os.path.join(LAUNCH, name), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and f"launch/{name}" in proc.stdout, name
    assert os.access(os.path.join(LAUNCH, name), os.X_OK), name


def test_missing_arguments_fail_before_touching_anything(fake):
  for script, args in (("create_tpu.sh", ["--name", "t", "--zone", "z"]),
                       ("run_tpu.sh", ["--name", "t", "--zone", "z"]),
                       ("run_tpu.sh", ["--name", "t", "--zone", "z", "--", "--workdir=x",
                                       "--config=c.py"]),
                       ("copy_checkpoints.sh", ["--name", "t", "--zone", "z",
                                                "--bucket", "not-a-bucket"]),
                       ("run_gpu.sh", ["--", "--config=configs/demo.py"]),
                       ("delete_tpu.sh", ["--zone"])):
    proc = fake.run(script, *args, check=False)
    assert proc.returncode == 2, (script, args, proc.stdout)
  assert fake.calls() == []


def test_dry_run_prints_exactly_what_a_real_run_executes(fake):
  cases = [
      ("create_tpu.sh", ["--name", "mc", "--zone", "us-west4-a", "--type", "v5litepod-16",
                         "--repo", "https://github.com/your-org/microcoder_jax.git",
                         "--ref", "v0.1", "--mount-bucket", "gs://my-bucket"]),
      ("run_tpu.sh", ["--name", "mc", "--zone", "us-west4-a", "--",
                      "--config=configs/microcoder_grpo.py:model=qwen3_1p7b,max_response_length=4096",
                      "--config.rl.temperature=0.6,1.2@140", "--config.data.system_prompt=Be brief."]),
      ("copy_checkpoints.sh", ["--name", "mc", "--zone", "us-west4-a", "--bucket",
                               "gs://my-bucket/mc/"]),
      ("delete_tpu.sh", ["--name", "mc", "--zone", "us-west4-a", "--project", "p1"]),
  ]
  for script, args in cases:
    dry = fake.run(script, "--dry-run", *args)
    assert fake.calls() == [], f"{script} --dry-run invoked gcloud"
    fake.run(script, *args, FAKE_TPU_EXISTS="0" if script == "create_tpu.sh" else "1")
    executed = [c for c in fake.calls() if "describe" not in c]
    assert _gcloud(_printed(dry.stdout)) == executed, script
    checks = _gcloud(_printed(dry.stdout, "? "))
    if script in ("create_tpu.sh", "delete_tpu.sh"):
      assert checks and checks[0][:4] == ["compute", "tpus", "tpu-vm", "describe"], script

  dry = fake.run(cases[0][0], "--dry-run", *cases[0][1]).stdout
  assert ("gcloud compute tpus tpu-vm create mc --zone=us-west4-a "
          "--accelerator-type=v5litepod-16 --version=v2-alpha-tpuv5-lite") in dry
  ssh = [c for c in _gcloud(_printed(dry)) if "ssh" in c]
  assert all("--worker=all" in c for c in ssh) and len(ssh) == 2
  install = next(a for a in ssh[0] if a.startswith("--command="))
  assert "git clone --quiet https://github.com/your-org/microcoder_jax.git" in install
  assert "checkout --quiet --detach v0.1" in install and '[tpu]"' in install
  assert "gcsfuse --implicit-dirs my-bucket" in next(a for a in ssh[1] if a.startswith("--command="))

  run = next(a for a in _gcloud(_printed(fake.run(cases[1][0], "--dry-run", *cases[1][1]).stdout))[0]
             if a.startswith("--command="))
  train = shlex.split(run[run.index("python -m"):run.index(" )")])
  assert train == ["python", "-m", "microcoder_jax.train",
                   "--config=configs/microcoder_grpo.py:model=qwen3_1p7b,max_response_length=4096",
                   "--config.rl.temperature=0.6,1.2@140",
                   "--config.data.system_prompt=Be brief.", "--workdir=runs/mc",
                   "--config.multihost=True"]
  copy = fake.run(cases[2][0], "--dry-run", *cases[2][1]).stdout
  assert "gcloud storage rsync --recursive runs/mc gs://my-bucket/mc/mc" in copy


def _checkout(path, origin):
  """A git checkout holding a copy of launch/, with `origin` as its origin."""
  shutil.copytree(LAUNCH, path / "launch")
  git = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True,
                                  capture_output=True)
  git("init", "-q")
  git("remote", "add", "origin", origin)
  git("add", "launch")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "launch")
  return str(path / "launch")


@pytest.mark.parametrize("origin,local", [
    ("/home/me/microcoder_jax", True), ("../microcoder_jax", True),
    ("file:///home/me/microcoder_jax", True),
    ("https://github.com/your-org/microcoder_jax.git", False),
    ("git@github.com:your-org/microcoder_jax.git", False),
    ("ssh://git@host/microcoder_jax.git", False), ("host:microcoder_jax", False)])
def test_local_origin_warns_that_workers_cannot_clone_it(fake, tmp_path, origin, local):
  launch = _checkout(tmp_path / "co", origin)
  args = ["--name", "mc", "--zone", "z", "--type", "v4-8"]
  warning = (f"warning: origin is a local path ({origin}), which the TPU workers "
             "cannot clone; pass --from-local to copy this checkout, or --repo URL")
  dry = fake.run("create_tpu.sh", "--dry-run", *args, launch=launch)
  assert dry.stderr.count(warning) == (1 if local else 0), dry.stderr
  assert ("warning" in dry.stderr) == local
  assert f"git clone --quiet {shlex.quote(origin)}" in dry.stdout  # still the default
  # Before the TPU is created; once per run, dry or not.
  real = fake.run("create_tpu.sh", *args, launch=launch, FAKE_TPU_EXISTS="0")
  assert [c[3] for c in fake.calls()] == ["describe", "create", "ssh"]
  assert real.stderr.count(warning) == (1 if local else 0), real.stderr
  if local:
    assert real.stderr.index(warning) < real.stderr.index("tpu-vm create")
  install = fake.run("install_tpu.sh", "--dry-run", "--name", "mc", "--zone", "z",
                     launch=launch)
  assert install.stderr.count(warning) == (1 if local else 0), install.stderr
  for extra in (["--from-local"], ["--repo", "https://x/y.git"]):
    quiet = fake.run("create_tpu.sh", "--dry-run", *args, *extra, launch=launch)
    assert "warning" not in quiet.stderr, (extra, quiet.stderr)
  explicit = fake.run("install_tpu.sh", "--dry-run", "--name", "mc", "--zone", "z",
                      "--repo", "/srv/mirror.git", launch=launch)
  assert ("warning: --repo is a local path (/srv/mirror.git), which the TPU workers "
          "cannot clone") in explicit.stderr


def test_create_and_delete_are_idempotent(fake):
  args = ["--name", "mc", "--zone", "z", "--type", "v4-8", "--repo", "https://x/y.git"]
  fake.run("create_tpu.sh", *args, FAKE_TPU_EXISTS="1")
  calls = fake.calls()
  assert [c[3] for c in calls] == ["describe", "ssh"]  # exists: no create, install again
  fake.run("create_tpu.sh", *args, FAKE_TPU_EXISTS="0")
  calls = fake.calls()
  assert [c[3] for c in calls] == ["describe", "create", "ssh"]
  assert "--version=tpu-ubuntu2204-base" in calls[1]
  proc = fake.run("delete_tpu.sh", "--name", "mc", "--zone", "z", "--copy-to", "gs://b",
                  FAKE_TPU_EXISTS="0")
  assert [c[3] for c in fake.calls()] == ["describe"] and "nothing to delete" in proc.stderr
  fake.run("delete_tpu.sh", "--name", "mc", "--zone", "z", "--copy-to", "gs://b",
           FAKE_TPU_EXISTS="1")
  calls = fake.calls()
  assert [c[3] for c in calls] == ["describe", "ssh", "delete"] and "--quiet" in calls[2]


def test_run_on_a_worker_streams_logs_and_refuses_a_second_run(fake):
  """The remote command itself, executed locally as one worker."""
  base = ["--name", "mc", "--zone", "z"]
  out = fake.run("run_tpu.sh", *base, "--", "--config=configs/demo.py",
                 FAKE_EXEC_REMOTE="1")
  assert "fake-train -m microcoder_jax.train --config=configs/demo.py --workdir=runs/mc " \
         "--config.multihost=True" in out.stdout  # streamed back
  log = fake.home / "logs" / "mc.log"
  assert "fake-train" in log.read_text()
  # A detached run that is still alive blocks a second start, detached or not.
  out = fake.run("run_tpu.sh", *base, "--detach", "--", "--config=configs/demo.py",
                 FAKE_EXEC_REMOTE="1", FAKE_TRAIN_SECONDS="30")
  pid = int((fake.home / "logs" / "mc.pid").read_text())
  try:
    assert f"started {pid}" in out.stdout
    second = fake.run("run_tpu.sh", *base, "--", "--config=configs/demo.py", check=False,
                      FAKE_EXEC_REMOTE="1")
    assert second.returncode == 3 and "still alive" in second.stderr
  finally:
    os.killpg(pid, signal.SIGKILL)  # the detached fake run (its own session) we started
  for _ in range(100):
    if not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]:
      break
    time.sleep(0.05)
  fake.run("run_tpu.sh", *base, "--", "--config=configs/demo.py", FAKE_EXEC_REMOTE="1")
  assert (fake.home / "train_args").read_text().count("--config.multihost=True") == 3


def test_logs_and_download(fake):
  out = fake.run("logs_tpu.sh", "--name", "mc", "--zone", "z", "--dry-run").stdout
  assert "--worker=0" in out and "tail -n 200 -F $HOME/logs/mc.log" in out
  out = fake.run("copy_checkpoints.sh", "--bucket", "gs://b/x", "--run", "mc",
                 "--download", "runs/mc", "--dry-run").stdout
  assert "gcloud storage rsync --recursive gs://b/x/mc runs/mc" in out


def test_gpu_script_installs_cuda_jax_and_runs_the_trainer(fake):
  out = fake.run("run_gpu.sh", "--gpus", "0,1,2,3", "--dry-run", "--",
                 "--config=configs/microcoder_grpo.py:model=qwen3_1p7b",
                 "--workdir=runs/gpu").stdout
  cmds = _printed(out)
  pip = next(c for c in cmds if "install" in c and "-e" in c)
  assert "jax[cuda12]" in pip and pip[pip.index("-e") + 1] == ROOT
  assert cmds[-1][1:] == ["-m", "microcoder_jax.train",
                          "--config=configs/microcoder_grpo.py:model=qwen3_1p7b",
                          "--workdir=runs/gpu"]
  assert "+ export CUDA_VISIBLE_DEVICES=0,1,2,3" in out
  assert "? nvidia-smi -L" in out
