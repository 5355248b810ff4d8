"""Seeds: how one request seed becomes a seed per rendered item, and fresh seeds when none is given.

A podcast renders piece after piece and the engine splits each piece into chunks; every chunk needs noise of its
own that depends only on where it sits (request seed, piece index, chunk index), never on what else shares its
batch. `derive_seed(seed, piece, chunk)` hashes that path with BLAKE2b, so nearby seeds and indices give unrelated
streams and no constant needs explaining.
"""

from __future__ import annotations

import hashlib
import random
import struct

import numpy as np

SEED_BITS = 63
"""Seeds are non-negative and below 2**63 (torch.Generator.manual_seed takes them as they are)."""


def check_seed(seed) -> int | None:
    """None, or an int (numpy integers too; not bool) -> the same value; ValueError otherwise."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer or None; got {seed!r}")
    return int(seed)


def derive_seed(seed: int, *path: int) -> int:
    """A seed in [0, 2**63) for the item at `path` (e.g. piece index, chunk index) of a request seeded with `seed`.

    Stable across runs, machines and versions of Python. Any integer is accepted; seeds and indices are taken
    modulo 2**64.
    """
    data = struct.pack(f"<{len(path) + 1}Q", *((int(v) % 2**64) for v in (seed, *path)))
    digest = hashlib.blake2b(data, digest_size=8, person=b"voicegen-seed").digest()
    return int.from_bytes(digest, "little") >> (64 - SEED_BITS)


def fresh_seed() -> int:
    """An unpredictable seed, for calls without one (fresh noise every time, as the reference model has)."""
    return random.SystemRandom().getrandbits(SEED_BITS)
