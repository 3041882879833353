"""Runners for benchmarks/peer_trainers.py: one script per trainer (see common.py)."""
