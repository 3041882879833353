"""Rollout sampling: jitted KV-cache generation and temperature control."""

from microcoder_jax.sampling.sampler import DEFAULT_BUCKETS, Rollout, Sampler, bucket_length
