"""Device choice and seeding: the two process-level decisions every stage makes the same way."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → the first CUDA GPU when present, else the CPU; anything else as torch reads it.

    Raises:
        ValueError: if a CUDA device is asked for on a machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available (use 'auto' or 'cpu')")
    return device


STREAM_BOUND = 2 ** 31  # derived seeds lie in [0, 2**31): a torch, numpy and Python seed alike


def stream_seed(*parts: int | str) -> int:
    """A seed derived from ``parts`` by SHA-256 of their canonical text (``repr`` of each,
    joined by ``|``), reduced below :data:`STREAM_BOUND`. Stable across processes, platforms and
    Python versions, which Python's salted ``hash`` of a string is not."""
    text = "|".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % STREAM_BOUND


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state after (the
    CUDA generators' too: ``manual_seed`` seeds them as well)."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (index permutations are drawn on the CPU)."""
    return torch.Generator().manual_seed(int(seed))
