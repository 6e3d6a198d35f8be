"""SGD with momentum and weight decay: the update of ``torch.optim.SGD``, without its start-up cost.

Why not ``torch.optim.SGD`` (kept as the test reference): its first ``step()`` imports
``torch._dynamo`` (1.5 s of CPU per process on the 2-core CI machine), paid by every Snakemake
job of a zoo; and a population trainer needs the momentum buffers as plain tensors to save and
resume them. The arithmetic is the same as torch's single-tensor path (dampening 0, no Nesterov):
``d = g + wd·θ``; ``b = d`` at the first step, else ``b = μ·b + d``; ``θ ← θ − lr·b``.
"""

from __future__ import annotations

from typing import Iterable

import torch


class SGD:
    """Momentum SGD over a fixed list of parameters; ``buffers[i]`` is parameter i's momentum and
    ``scales[i]`` multiplies its learning rate (1 unless set: layer-wise rates such as
    TempBalance's, the same as torch's parameter groups with lr·scale)."""

    def __init__(self, params: Iterable[torch.Tensor], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.params = list(params)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)
        self.scales: list[float] = [1.0] * len(self.params)

    def zero_grad(self) -> None:
        """Drop the gradients (set to ``None``, as ``zero_grad(set_to_none=True)``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One update with learning rate ``lr``; parameters without a gradient are skipped."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            d = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            if self.momentum != 0:
                if self.buffers[i] is None:
                    self.buffers[i] = torch.clone(d).detach()
                else:
                    self.buffers[i].mul_(self.momentum).add_(d)
                d = self.buffers[i]
            p.add_(d, alpha=-lr * self.scales[i])
