"""The argparse command-line tools: every flag has help text that shows its
default, and flags are spelled `--kebab-case` (a snake_case spelling only as
the alias of its kebab twin).

One subprocess imports every tool (nothing runs) and reports each parser's
options as JSON: `build_parser()` where the module has it, else the parser
`main` builds, caught at its `parse_args` call.
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

CLIS = (
    "microcoder_jax.benchmark",
    "microcoder_jax.curation.__main__",
    "microcoder_jax.data.synthetic",
    "microcoder_jax.evaluate",
    "microcoder_jax.select_temperature",
    "microcoder_jax.warm_start",
    "benchmarks/compile_time.py",
    "benchmarks/decode_scaling.py",
    "benchmarks/evaluator_bench.py",
    "benchmarks/learning_curves.py",
    "benchmarks/peer_trainers.py",
    "benchmarks/sampler_vs_hf.py",
    "benchmarks/scale_aot.py",
    "benchmarks/temperature_study.py",
)

_INSPECT = r'''
import argparse, importlib, importlib.util, json, os, sys

class _Caught(Exception):
  pass

def _catch(parser, args=None, namespace=None):
  raise _Caught(parser)

def parser_of(name):
  if name.endswith(".py"):
    path = os.path.abspath(name)
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(
        "cli_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  else:
    module = importlib.import_module(name)
  if hasattr(module, "build_parser"):
    return module.build_parser()
  real = argparse.ArgumentParser.parse_args
  argparse.ArgumentParser.parse_args = _catch
  try:
    module.main()
  except _Caught as caught:
    return caught.args[0]
  finally:
    argparse.ArgumentParser.parse_args = real
  raise AssertionError(f"{name}: main() built no parser")

out = {}
for name in sys.argv[1:]:
  parser = parser_of(name)
  parser.format_help()  # renders (a bad %-format in a help would raise here)
  formatter = parser._get_formatter()
  out[name] = [dict(options=a.option_strings, help=a.help or "",
                    shown=formatter._expand_help(a) if a.help else "",
                    required=a.required,
                    implicit=a.default is None or a.default is False
                             or a.default == argparse.SUPPRESS)
               for a in parser._actions if not isinstance(a, argparse._HelpAction)]
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def options():
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", _INSPECT, *CLIS], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("cli", CLIS)
def test_every_flag_has_help_showing_its_default(options, cli):
  actions = options[cli]
  assert actions, f"{cli}: no options"
  for a in actions:
    assert a["help"].strip(), f"{cli} {a['options']}: no help text"
    if not (a["required"] or a["implicit"]):
      assert "(default:" in a["shown"], f"{cli} {a['options']}: default not shown: {a['shown']!r}"
    assert a["shown"].count("(default:") <= 1, f"{cli} {a['options']}: {a['shown']!r}"


@pytest.mark.parametrize("cli", CLIS)
def test_flags_are_kebab_case_with_snake_aliases_only(options, cli):
  for a in options[cli]:
    longs = [o for o in a["options"] if o.startswith("--")]
    assert longs and "_" not in longs[0], f"{cli}: {a['options']} (first spelling not kebab-case)"
    for o in longs:
      assert "_" not in o or o.replace("_", "-") in longs, (
          f"{cli}: {o} has no --kebab-case twin")
