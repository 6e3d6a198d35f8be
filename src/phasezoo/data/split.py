"""A train/test split held as tensors, and the helpers the dataset loaders share to build one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from phasezoo.tasks import Task

DATA_FRACTION_SEED = 0  # the training subset is part of the cell (its load), not of the seed

@dataclass
class Split:
    """A train/test split held as tensors, plus what a card needs to describe it."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int  # classes, vocabulary size, or output size (PINN)
    info: dict = field(default_factory=dict)
    task: Task = field(default_factory=Task)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device | str) -> "Split":
        """Move every tensor to ``device`` once (training then indexes on the device)."""
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device))


def stratified_split(y: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with exactly ``test_per_class`` test samples of every class."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:test_per_class]
                           for c in np.unique(y)])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def as_images(x: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8-range array → float32 tensor in [0, 1] shaped ``(N, C, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32).reshape(-1, *shape) / 255.0)
