"""Deterministic per-rung seeds: the same request seed always gives the same seed on each rung.

Rung 0 gets the user's seed unchanged, so a job served by its first model reproduces exactly with
that seed. Later rungs get a seed derived from the user's seed and the rung index: escalating to a
different model with the very same seed gains nothing, but the run stays reproducible end to end.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_SEED", "rung_seed"]

#: Largest seed any KIE model accepts (signed 32-bit).
MAX_SEED = 2**31 - 1


def rung_seed(seed: int | None, rung: int) -> int | None:
    """The seed for plan step ``rung`` (0-based) given the request's seed (``None`` stays so)."""
    if seed is None:
        return None
    if rung <= 0:
        return seed
    digest = hashlib.blake2b(f"kierouter/seed/{seed}/{rung}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (MAX_SEED + 1)
