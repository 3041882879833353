# ---
# jupyter:
#   colab:
#     provenance: []
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: colab,kernelspec,language_info,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   language_info:
#     name: python
# ---

# %% [markdown]
# # The MicroCoder-GRPO objective on another model's arrays
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-org/microcoder_jax/blob/main/colab/losses.ipynb)
#
# **Target runtime: Colab's default CPU runtime.** Everything here is small.
#
# `microcoder_jax.rl` is pure functions over arrays: no model, trainer or config
# object in any signature; the objective's symbols (ε, ε_high, β, ρ, m, ...) come
# from an `rl.Objective` (`rl.get_objective`). This notebook feeds it the hidden
# states of a tiny **PyTorch** language model, computes the MicroCoder-GRPO loss
# in JAX (`group_advantages`, `repeat_tail`, `conditional_truncation_mask`,
# `token_logprobs`, `policy_loss`) and hands the gradient back to PyTorch for
# the optimizer step. The API reference is `docs/losses.md`.
#
# The install cell takes the first of: an importable microcoder_jax; a checkout
# in the working directory (upload `microcoder_jax/`, or a `microcoder_jax*.zip` /
# `.tar.gz` of it, which the cell unpacks); a `microcoder_jax-*.whl` there; a
# clone of `REPO_URL` at `REF`. `your-org` in `REPO_URL` and in the links stands
# for the GitHub organisation that hosts microcoder_jax; put your fork's URL in
# `REPO_URL`.

# %%
# @title Install microcoder_jax (skipped when it is already importable)
import glob
import importlib.util
import os
import shutil
import subprocess
import sys

REPO_URL = "https://github.com/your-org/microcoder_jax"  # @param {type:"string"}
REF = "main"  # @param {type:"string"}


def importable():
  spec = importlib.util.find_spec("microcoder_jax")
  return spec is not None and spec.origin is not None  # not only a directory of that name


def uploaded_checkout():
  """A checkout in the working directory: microcoder_jax*/, or a .zip / .tar.gz of one."""
  for archive in glob.glob("microcoder_jax*.zip") + glob.glob("microcoder_jax*.tar.gz"):
    target = archive.removesuffix(".zip").removesuffix(".tar.gz") + "_unpacked"
    if not os.path.isdir(target):
      shutil.unpack_archive(archive, target)
  for top in sorted(glob.glob("microcoder_jax*/")):
    for root in [top, *sorted(glob.glob(os.path.join(top, "*/")))]:
      if (os.path.exists(os.path.join(root, "setup.py")) and
          os.path.exists(os.path.join(root, "microcoder_jax", "__init__.py"))):
        return os.path.abspath(root)
  return None


def pip_install(*args):
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)
  importlib.invalidate_caches()


WHEELS = sorted(glob.glob("microcoder_jax-*.whl"), key=os.path.getmtime)  # newest last
if importable():
  SOURCE = "the installed package"
elif (ROOT := uploaded_checkout()) is not None:
  pip_install("-e", ROOT)
  sys.path.insert(0, ROOT)  # an editable install is only on sys.path after a restart
  SOURCE = f"an uploaded checkout, {ROOT}"
elif WHEELS:
  pip_install(WHEELS[-1])
  SOURCE = f"the wheel {WHEELS[-1]}"
else:
  pip_install(f"git+{REPO_URL}@{REF}")
  SOURCE = f"{REPO_URL} at {REF}"
PACKAGE = os.path.dirname(importlib.util.find_spec("microcoder_jax").origin)
print(f"microcoder_jax from {SOURCE}: {PACKAGE}")

# %% [markdown]
# ## Another model
# A GRU language model in PyTorch stands in for your policy. 2 prompts × G = 4
# responses of up to T = 16 tokens, sampled at temperature 1.2; the log-probs
# recorded while sampling are the old-policy log-probs π_θold.

# %%
# @title A tiny PyTorch policy samples G responses per prompt
import numpy as np
import torch

torch.manual_seed(0)
NUM_PROMPTS, G, T, D, V = 2, 4, 16, 32, 50
N, TEMPERATURE, EOS = NUM_PROMPTS * G, 1.2, 0


class TinyLM(torch.nn.Module):
  def __init__(self):
    super().__init__()
    self.embed = torch.nn.Embedding(V, D)
    self.gru = torch.nn.GRU(D, D, batch_first=True)
    self.head = torch.nn.Linear(D, V, bias=False)

  def hidden(self, tokens_NxT):  # final hidden states [N, T, D]
    return self.gru(self.embed(tokens_NxT))[0]


policy = TinyLM()
prompts = torch.randint(1, V, (NUM_PROMPTS, 5)).repeat_interleave(G, dim=0)
with torch.no_grad():
  seq = prompts
  for _ in range(T):
    logits = policy.head(policy.hidden(seq)[:, -1]) / TEMPERATURE
    seq = torch.cat([seq, torch.multinomial(torch.softmax(logits, -1), 1)], dim=1)
  responses = seq[:, prompts.shape[1]:]
  # old log-probs log π_θold^T(o_t), from the state that predicts each token
  h_old = policy.hidden(seq)[:, prompts.shape[1] - 1:-1]
  old_logp = torch.log_softmax(policy.head(h_old) / TEMPERATURE, -1).gather(
      -1, responses[..., None])[..., 0]
is_eos = (responses == EOS).numpy()
lengths = np.where(is_eos.any(1), is_eos.argmax(1) + 1, T)  # stop token included
truncated = ~is_eos.any(1)  # |o_i| = L_max without a stop
print("lengths:", lengths, "truncated:", truncated)

# %% [markdown]
# ## Host side: rewards, advantages and the conditional truncation mask
# Rewards would come from a code judge (see `evaluator.ipynb`); here they are
# made up. The mask zeroes Â_i of a truncated response with probability ρ when it
# is non-incorrect (passed, or cut off before any complete code) and not stuck
# in a repetition loop.

# %%
# @title `group_advantages`, `repeat_tail`, `conditional_truncation_mask`
import jax
import jax.numpy as jnp
from microcoder_jax import rl

objective = rl.get_objective("microcoder_grpo")
RHO = 0.5  # the objective's ρ is objective.rho = 0.1; 0.5 so that this small batch shows a masked row
rewards_N = jnp.array([1, 0, 0, 1, 0, 0, 0, 1], jnp.float32)
non_incorrect_N = (rewards_N > 0) | jnp.array([0, 1, 0, 0, 1, 0, 0, 0], bool)
adv_N = rl.group_advantages(rewards_N, G, method=objective.adv_estimator)
repeating_N = rl.repeat_tail(jnp.asarray(responses.numpy()), jnp.asarray(lengths), window=4)
ctm_N = rl.conditional_truncation_mask(
    jax.random.key(0), lengths_N=jnp.asarray(lengths), max_response_length=T,
    non_incorrect_N=non_incorrect_N, repeating_N=repeating_N, rho=RHO,
    truncated_N=jnp.asarray(truncated))
adv_N = jnp.where(ctm_N, 0.0, adv_N)
print("repeating tails:", np.flatnonzero(np.asarray(repeating_N)))
print("advantages:", np.round(np.asarray(adv_N), 3))
print("CTM masked rows:", np.flatnonzero(np.asarray(ctm_N)))

# %% [markdown]
# ## Device side: log-probs from the other model's hidden states, and the loss
# `token_logprobs` takes final hidden states and the LM head (W: [D, V]); with
# `chunk_size` it never materialises [N, T, V] logits. It must agree with the
# log-probs PyTorch recorded while sampling.

# %%
# @title `token_logprobs` + `policy_loss`, gradient back into PyTorch
hidden_t = policy.hidden(seq)[:, prompts.shape[1] - 1:-1]  # requires grad
hidden_NxTxD = jnp.asarray(hidden_t.detach().numpy())
unembed_DxV = jnp.asarray(policy.head.weight.detach().numpy().T)
targets_NxT = jnp.asarray(responses.numpy())
old_logp_NxT = jnp.asarray(old_logp.numpy())
mask_NxT = jnp.arange(T)[None] < jnp.asarray(lengths)[:, None]


def loss_fn(hidden_NxTxD):
  logp_NxT = rl.token_logprobs(hidden_NxTxD, unembed_DxV, targets_NxT,
                               temperature=jnp.full((N,), TEMPERATURE), chunk_size=32)
  return rl.policy_loss(logp_NxT, old_logp_NxT, adv_N, mask_NxT, **objective.loss_kwargs())


logp_NxT = rl.token_logprobs(hidden_NxTxD, unembed_DxV, targets_NxT,
                             temperature=TEMPERATURE, chunk_size=32)
gap = float(jnp.abs(jnp.where(mask_NxT, logp_NxT - old_logp_NxT, 0)).max())
print(f"max |JAX - PyTorch| log-prob: {gap:.2e}")
assert gap < 1e-4

(loss, metrics), grad_NxTxD = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(hidden_NxTxD)
print(f"loss {float(loss):.5f}")
for k, v in sorted(metrics.items()):
  print(f"  {k:14s} {float(v):.4f}")

optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
optimizer.zero_grad()
hidden_t.backward(torch.from_numpy(np.array(grad_NxTxD)))  # chain rule into PyTorch
grad_norm = torch.sqrt(sum((p.grad ** 2).sum() for p in policy.parameters() if p.grad is not None))
optimizer.step()
print(f"PyTorch gradient norm through the JAX loss: {float(grad_norm):.4f}")
assert float(grad_norm) > 0
