"""Synthetic CPU-scale task: split by construction, bundled files, warm-start habits."""
import collections
import json
import os

import numpy as np
import pytest

from microcoder_jax import warm_start
from microcoder_jax.data import datasets, synthetic, tiny_tokenizer
from microcoder_jax.evaluator import Evaluator, parse_problem


def _bundled(split):
  with open(os.path.join(datasets.BUNDLED_DIR, f"synthetic_{split}.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_split_is_disjoint_and_covers_every_family():
  train, held = synthetic.split(synthetic.all_specs())
  assert not {s.id for s in train} & {s.id for s in held}
  assert {s.question for s in train}.isdisjoint({s.question for s in held})
  assert {s.family for s in train} == {s.family for s in held}
  frac = len(held) / (len(train) + len(held))
  assert 0.2 < frac < 0.3


def test_bundled_files_are_what_the_generator_writes(tmp_path):
  counts = synthetic.write_split(str(tmp_path))
  for split in ("train", "heldout"):
    with open(tmp_path / f"synthetic_{split}.jsonl") as f:
      assert [json.loads(line) for line in f] == _bundled(split), split
    assert counts[split] == len(_bundled(split))


@pytest.fixture(scope="module")
def ev():
  with Evaluator(workers=2, timeout_s=2.0, memory_mb=512) as e:
    yield e


def _judge(ev, rows, codes):
  problems = {r["id"]: parse_problem(r) for r in rows}
  results = ev.evaluate(problems, [{"id": r["id"], "code": c} for r, c in zip(rows, codes)])
  return np.array([x.verdict == "pass" for x in results])


def test_reference_solutions_pass_and_habits_fail(ev):
  """Every reference passes its tests; each warm-start habit breaks most of them."""
  rows = _bundled("train")[::4] + _bundled("heldout")[::4]
  assert _judge(ev, rows, [r["reference_solution"] for r in rows]).all()
  for habit in warm_start.HABITS:
    bad = [warm_start.with_habits(r["reference_solution"], (habit,)) for r in rows]
    assert all(b != r["reference_solution"] for b, r in zip(bad, rows)), habit
    assert _judge(ev, rows, bad).mean() < 0.2, habit


def test_warm_start_batches_mix_habits_at_the_asked_rate():
  tok = tiny_tokenizer.load()
  examples = warm_start.sft_examples(tok, "synthetic_train")
  assert len(examples) == len(_bundled("train"))
  assert all(len(ex) == 2 ** len(warm_start.HABITS) for ex in examples)
  rng = np.random.default_rng(0)
  seen = collections.Counter()
  clean = {tuple(ex[()][0]) for ex in examples}
  for _ in range(50):
    for ids, mask in warm_start.draw_batch(examples, 16, 0.3, rng):
      assert len(ids) == len(mask) and sum(mask) > 0
      text = tok.decode(ids)
      for habit, marker in (("strip_newline", "[:-1]"), ("label_output", "Answer:")):
        seen[habit] += marker in text
      seen["clean"] += tuple(ids) in clean
  n = 50 * 16
  for habit in warm_start.HABITS:
    assert 0.25 < seen[habit] / n < 0.35, seen
  assert 0.42 < seen["clean"] / n < 0.56, seen


def test_tokenizer_rebuild_reproduces_the_bundled_one():
  built, bundled = tiny_tokenizer.build(), tiny_tokenizer.load()
  assert built.get_vocab() == bundled.get_vocab()
  assert built.backend_tokenizer.to_str() == bundled.backend_tokenizer.to_str()


def test_warm_start_learns_the_train_split():
  model, losses = warm_start.train(tiny_tokenizer.load(), steps=12, batch=8, lr=3e-3,
                                   seed=0, noise=0.3)
  assert losses.shape == (12,) and np.isfinite(losses).all()
  assert losses[-3:].mean() < 0.7 * losses[:3].mean(), losses
  assert model.cfg.vocab_size == len(tiny_tokenizer.load())
