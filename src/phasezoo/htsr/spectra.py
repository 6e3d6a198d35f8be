"""Eigenvalues of many weight matrices at once: one batched float64 ``eigvalsh`` per matrix shape.

Why batched: a zoo analyses dozens of same-shaped matrices per layer (every checkpoint of every
seed) plus FARMS's many windows; one call per shape costs little more than one matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_GRAM_CHUNK_ELEMS = 1 << 20  # weights cast and multiplied together (8 MiB of float64: in cache)


def _gram(a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrices of the smaller side of a float64 ``(B, p, q)`` stack: ``(B, k, k)``."""
    return torch.matmul(a.mT, a, out=out) if a.shape[-2] > a.shape[-1] else \
        torch.matmul(a, a.mT, out=out)


def squared_singular_values(mats: torch.Tensor) -> torch.Tensor:
    """``svdvals(A)²`` (ascending, float64, ≥ 0) of every matrix of a ``(B, p, q)`` stack.

    The float64 Gram matrices of the smaller side and one batched ``eigvalsh``.
    """
    return torch.linalg.eigvalsh(_gram(mats.to(torch.float64))).clamp_min_(0.0)


def _chunks(parts: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive stacks grouped up to ``_GRAM_CHUNK_ELEMS`` elements per group."""
    chunks: list[list[torch.Tensor]] = []
    size = 0
    for m in parts:
        if chunks and size + m.numel() <= _GRAM_CHUNK_ELEMS:
            chunks[-1].append(m)
            size += m.numel()
        else:
            chunks.append([m])
            size = m.numel()
    return chunks


@dataclass(frozen=True)
class Slot:
    """Rows ``start:stop`` of the eigenvalues of the queued matrices of shape ``key``."""

    key: tuple[int, int]
    start: int
    stop: int


class EigenJobs:
    """Collects matrices; computes all their eigenvalues with one batched call per matrix shape.

    The queued float32 stacks are cast to float64 and multiplied in chunks of ≤ 8 MiB, written
    straight into that shape's batch: cast and product stay in cache (measured: 25% faster than
    casting all weights into one float64 stack first and multiplying that). One ``eigvalsh`` per
    shape rather than per Gram size: a 120-matrix batch was 8% slower than two of 60.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], list[torch.Tensor]] = {}
        self._rows: dict[tuple[int, int], int] = {}
        self.values: dict[tuple[int, int], np.ndarray] = {}

    def add(self, mats: torch.Tensor) -> Slot:
        """Queue a ``(b, p, q)`` stack; returns where its eigenvalue rows will be."""
        key = (int(mats.shape[-2]), int(mats.shape[-1]))
        start = self._rows.get(key, 0)
        self._parts.setdefault(key, []).append(mats)
        self._rows[key] = start + len(mats)
        return Slot(key, start, start + len(mats))

    def stacks(self) -> list[torch.Tensor]:
        """The queued matrices as float64 stacks, one per matrix shape (the benchmark's floor)."""
        return [torch.cat(parts).to(torch.float64) for parts in self._parts.values()]

    def run(self) -> None:
        for key, parts in self._parts.items():
            k = min(key)
            grams = torch.empty((self._rows[key], k, k), dtype=torch.float64)
            start = 0
            for chunk in _chunks(parts):
                a = (chunk[0] if len(chunk) == 1 else torch.cat(chunk)).to(torch.float64)
                _gram(a, out=grams[start:start + len(a)])
                start += len(a)
            self.values[key] = torch.linalg.eigvalsh(grams).clamp_min_(0.0).numpy()
        self._parts.clear()

    def get(self, slot: Slot) -> np.ndarray:
        """The eigenvalues of the slot's matrices, one row per matrix (each ascending)."""
        return self.values[slot.key][slot.start:slot.stop]


def pooled(jobs: EigenJobs, slot: Slot, scale: float) -> np.ndarray:
    """The slot's eigenvalues pooled into one ascending ESD, times ``scale``."""
    rows = jobs.get(slot)
    esd = rows[0] if len(rows) == 1 else np.sort(rows, axis=None)
    return esd * scale if scale != 1.0 else esd
