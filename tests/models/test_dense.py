"""`layers.dense`: the projection with its own weight-gradient VJP."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from microcoder_jax.models import get_preset
from microcoder_jax.models import layers

SPECS = {  # spec: (x shape, w shape), as the decoder uses them
    "btd,dnh->btnh": ((2, 5, 6), (6, 3, 4)),
    "btnh,nhd->btd": ((2, 5, 3, 4), (3, 4, 6)),
    "...d,df->...f": ((2, 5, 6), (6, 9)),     # x smaller than dy
    "...f,fd->...d": ((2, 5, 9), (9, 6)),     # x larger than dy
}


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("remat", ["none", "dots_saveable"])
def test_dense_value_and_grads_match_float64_numpy(spec, remat):
  x_shape, w_shape = SPECS[spec]
  rng = np.random.default_rng(0)
  x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
  y = np.einsum(spec.replace("...", "bt"), x, w)
  dy = rng.normal(size=y.shape)
  cfg = dataclasses.replace(get_preset("tiny"), remat=remat)
  out, vjp = jax.vjp(lambda a, b: layers.dense(spec, a, b, cfg),
                     jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
  dx, dw = vjp(jnp.asarray(dy, jnp.float32))
  s = spec.replace("...", "bt")
  x_spec, rest = s.split(",")
  w_spec, y_spec = rest.split("->")
  np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx, np.einsum(f"{y_spec},{w_spec}->{x_spec}", dy, w),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, np.einsum(f"{x_spec},{y_spec}->{w_spec}", x, dy),
                             rtol=1e-5, atol=1e-5)


def test_dense_keeps_bfloat16():
  cfg = get_preset("tiny")
  x = jnp.ones((2, 3, 6), jnp.bfloat16)
  w = jnp.ones((6, 4), jnp.bfloat16)
  y, vjp = jax.vjp(lambda a, b: layers.dense("...d,df->...f", a, b, cfg), x, w)
  dx, dw = vjp(jnp.ones_like(y))
  assert (y.dtype, dx.dtype, dw.dtype) == (jnp.bfloat16,) * 3
  assert float(dw[0, 0]) == 6.0


def test_dense_under_dot_saving_remat_is_a_plain_dot():
  """A dots-saving remat policy must see (and save) the projection's dot."""
  from jax._src import ad_checkpoint  # pylint: disable=g-import-not-at-top
  cfg = dataclasses.replace(get_preset("tiny"), remat="dots_saveable")
  f = jax.checkpoint(lambda x, w: jnp.tanh(layers.dense("...d,df->...f", jnp.sin(x), w, cfg)),
                     policy=jax.checkpoint_policies.dots_saveable)
  saved = ad_checkpoint.saved_residuals(lambda x, w: f(x, w).sum(),
                                        jnp.ones((4, 6)), jnp.ones((6, 5)))
  assert any(shape.shape == (4, 5) for shape, _ in saved), saved
