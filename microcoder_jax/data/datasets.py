"""Problem sources and a checkpointable, deterministically shuffled iterator.

Sources (`load_dataset(spec)`; a file is read by the judge's
`evaluator.load_problems`, which this resolves names for):
  path/to/file.jsonl        native or LiveCodeBench rows (docs/formats.md)
  bundled:synthetic_train   a file shipped in `microcoder_jax/data/bundled/`
  hf:<dataset>[:<split>]    a Hugging Face dataset (needs a network and `datasets`)
  tfds:<data_dir>           array_record shards written by `build_array_record`

Large corpora go through the TensorFlow Datasets builder below: it writes
array_record shards (random access, no TensorFlow needed) that are read
lazily, one problem at a time.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from microcoder_jax.evaluator import Problem, ProblemError, load_problems as _load_jsonl
from microcoder_jax.evaluator import parse_problem

log = logging.getLogger(__name__)
BUNDLED_DIR = os.path.join(os.path.dirname(__file__), "bundled")


class DatasetError(ValueError):
  """A dataset that cannot be read; names the path or dataset."""


def load_dataset(spec: str) -> list[Problem]:
  """Problems from a source spec (see the module docstring), in file order;
  bad rows are logged and skipped."""
  if spec.startswith("bundled:"):
    spec = os.path.join(BUNDLED_DIR, spec[len("bundled:"):] + ".jsonl")
  if spec.startswith("hf:"):
    return _from_hf(spec[3:])
  if spec.startswith("tfds:"):
    source = ArrayRecordProblems(spec[5:])
    return [source[i] for i in range(len(source))]
  if not os.path.exists(spec):
    raise DatasetError(f"problem file {spec} does not exist")
  errors: list[str] = []
  problems = list(_load_jsonl(spec, errors).values())
  for e in errors:
    log.warning("%s: skipped %s", spec, e)
  if not problems:
    raise DatasetError(f"{spec}: no usable problems ({len(errors)} bad rows: "
                       f"{errors[:3]})")
  return problems


def _from_hf(name: str) -> list[Problem]:
  dataset, _, split = name.partition(":")
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DatasetError(f"hf:{name} needs the `datasets` package") from e
  try:
    rows = datasets.load_dataset(dataset, split=split or "train")
  except Exception as e:
    raise DatasetError(f"could not load Hugging Face dataset {dataset!r}: {e}") from e
  out = []
  for i, row in enumerate(rows):
    try:
      out.append(parse_problem(dict(row), f"{dataset} row {i}"))
    except ProblemError as e:
      log.warning("skipped %s", e)
  return out


# ------------------------------------------------------------ TFDS builder
class MicrocoderProblems(tfds.core.GeneratorBasedBuilder):
  """Problems as array_record shards: one example = one JSON problem row."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, *, source_jsonl: str | None = None, **kwargs):
    self._source = source_jsonl
    super().__init__(**kwargs)

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(), "row": tfds.features.Text()}),
        description="Problems in microcoder_jax's native or LiveCodeBench schema.")

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    with open(self._source, encoding="utf-8") as f:
      for n, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
          pid = parse_problem(row, f"{self._source} line {n}").id
        except (ValueError, ProblemError) as e:
          log.warning("skipped %s", e)
          continue
        yield pid, {"id": pid, "row": json.dumps(row)}


def build_array_record(source_jsonl: str, data_dir: str) -> str:
  """Writes `source_jsonl` as array_record shards under `data_dir`."""
  builder = MicrocoderProblems(source_jsonl=source_jsonl, data_dir=data_dir,
                               file_format="array_record")
  builder.download_and_prepare()
  return data_dir


class ArrayRecordProblems:
  """Random access to problems stored by `build_array_record`."""

  def __init__(self, data_dir: str):
    if not os.path.isdir(data_dir):
      raise DatasetError(f"array_record problem directory {data_dir} does not exist")
    builder = MicrocoderProblems(data_dir=data_dir, file_format="array_record")
    self._source = builder.as_data_source(split="train")

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i: int) -> Problem:
    row = json.loads(self._source[i]["row"])
    return parse_problem(row, f"record {i}")


# ------------------------------------------------------------ the iterator
class ProblemIterator:
  """Endless, epoch-wise shuffled batches; position is checkpointable.

  The order of epoch e is a permutation drawn from (seed, e), so resuming
  from (epoch, index) replays exactly the same stream.
  """

  def __init__(self, problems: Sequence, seed: int = 0, shuffle: bool = True):
    if not problems:
      raise DatasetError("no problems to iterate over")
    self.problems = list(problems)
    self.seed, self.shuffle = seed, shuffle
    self.epoch, self.index = 0, 0
    self._order = self._permutation(0)

  def _permutation(self, epoch: int) -> np.ndarray:
    n = len(self.problems)
    if not self.shuffle:
      return np.arange(n)
    return np.random.default_rng([self.seed, epoch]).permutation(n)

  def next_batch(self, n: int) -> list:
    out = []
    while len(out) < n:
      if self.index == len(self._order):
        self.epoch, self.index = self.epoch + 1, 0
        self._order = self._permutation(self.epoch)
      out.append(self.problems[self._order[self.index]])
      self.index += 1
    return out

  def state_dict(self) -> dict:
    return {"epoch": self.epoch, "index": self.index, "seed": self.seed,
            "size": len(self.problems)}

  def load_state_dict(self, state: dict) -> None:
    if state["size"] != len(self.problems) or state["seed"] != self.seed:
      raise DatasetError(
          f"checkpointed data position is for {state['size']} problems with "
          f"seed {state['seed']}, but the dataset has {len(self.problems)} "
          f"with seed {self.seed}")
    self.epoch, self.index = int(state["epoch"]), int(state["index"])
    self._order = self._permutation(self.epoch)
