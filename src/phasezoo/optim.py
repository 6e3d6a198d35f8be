"""SGD with momentum and weight decay: the update of ``torch.optim.SGD``, without its start-up cost.

Why not ``torch.optim.SGD`` (kept as the test reference): its first ``step()`` imports
``torch._dynamo`` (1.5 s of CPU per process on the 2-core CI machine), paid by every Snakemake
job of a zoo; and a population trainer needs the momentum buffers as plain tensors to save and
resume them. The arithmetic is torch's (dampening 0, no Nesterov): ``d = g + wd·θ``; ``b = d`` at
the first step, else ``b = μ·b + d``; ``θ ← θ − lr·b``, computed by the kernel
``torch.optim.SGD(fused=True)`` runs (:func:`fused_sgd`), bit for bit.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch


@torch.no_grad()
def fused_sgd(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
              buffers: Sequence[torch.Tensor], lr: float, momentum: float,
              weight_decay: float) -> None:
    """One SGD update of ``params`` in place by ATen's fused kernel (``buffers``: momentum, one per
    parameter, updated in place; ignored when ``momentum`` is 0).

    Why: one kernel reads each gradient, weight and momentum value once and writes two, where
    the same arithmetic as tensor ops launches three or four per parameter and makes ~3× the
    passes over memory: 1.05–1.3× faster per-member training on the CPU (the CNN's step most),
    and a population's whole update in one pass (:mod:`phasezoo.stacked`). A zero momentum
    buffer gives exactly the first step's ``b = d`` (``μ·0 + d``), so buffers start as zeros.
    The kernel silently misreads non-contiguous tensors: gradients are made contiguous, and a
    non-contiguous parameter or buffer is updated through a contiguous copy.
    """
    if not params:
        return
    work = [t if t.is_contiguous() else t.contiguous() for t in params]
    moms = [t if t.is_contiguous() else t.contiguous() for t in buffers] if momentum else []
    torch._fused_sgd_(work, [g.contiguous() for g in grads], moms, weight_decay=weight_decay,
                      momentum=momentum, lr=lr, dampening=0.0, nesterov=False, maximize=False,
                      is_first_step=False)
    for original, updated in zip([*params, *(buffers if momentum else [])], [*work, *moms],
                                 strict=True):
        if updated is not original:
            original.copy_(updated)


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
        groups: dict[float, list[int]] = {}  # one kernel call per distinct learning-rate scale
        for i, p in enumerate(self.params):
            if p.grad is not None:
                groups.setdefault(self.scales[i], []).append(i)
                if self.momentum != 0 and self.buffers[i] is None:
                    self.buffers[i] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        for scale, idx in groups.items():
            fused_sgd([self.params[i] for i in idx], [self.params[i].grad for i in idx],
                      [self.buffers[i] for i in idx] if self.momentum != 0 else [],
                      lr * scale, self.momentum, self.weight_decay)
