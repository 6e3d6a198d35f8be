"""K same-architecture models as one stacked model: one forward/backward/update for all of them.

Why not ``torch.func.vmap`` + ``functional_call`` (the generic route): on the CPU its batching
rules cost more per step than they save (measured 0.4–1.2× the per-model loop for the default
MLP and CNN, see ``benchmarks/train_population.py``). Instead each supported layer has a grouped
form (:mod:`phasezoo.stacked_layers`) that runs every member's layer in one op, block-diagonal
over members, so a member that diverges (NaN) cannot disturb the others (their values change
only by float rounding when the stack shrinks to the survivors in the next epoch).

All parameters live in one flat buffer, parameter-major (parameter i of all K members is one
contiguous ``[K, *shape]`` block), so the SGD update is one fused kernel over the blocks for the
whole population, and each block is a leaf that autograd fills directly.

The arithmetic matches per-model training up to float rounding (batched GEMMs and grouped
convolutions sum in a different order); ``tests/test_stacked.py`` bounds the difference.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from phasezoo.optim import fused_sgd
from phasezoo.stacked_layers import HANDLERS, unsupported_modules

__all__ = ["StackedModel", "stack_batches", "take_rows"]


class StackedModel:
    """The parameters, buffers and momentum of K members, stacked, with a grouped forward.

    Build it from K modules of one architecture (:meth:`from_models`), train it with
    :meth:`sgd_step`, and copy the result back with :meth:`write_back`.
    """

    def __init__(self, template: nn.Module, k: int, params: dict[str, torch.Tensor],
                 buffers: dict[str, torch.Tensor], momentum: torch.Tensor | None) -> None:
        self.template, self.k = template, k
        names = list(params)
        sizes = [params[n][0].numel() for n in names]
        self.flat = torch.cat([params[n].reshape(-1) for n in names]).detach()
        self.params, offset = {}, 0
        for name, size in zip(names, sizes, strict=True):
            block = self.flat[offset:offset + k * size].view(k, *params[name].shape[1:])
            self.params[name] = block.requires_grad_()
            offset += k * size
        self.buffers = {n: b.detach().clone() for n, b in buffers.items()}
        self.channels_last = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                     for m in template.modules())
        self.momentum = momentum

    @classmethod
    def from_models(cls, models: Sequence[nn.Module],
                    momenta: Sequence[Sequence[torch.Tensor | None]] | None = None) -> "StackedModel":
        """Stack ``models`` (and their per-parameter SGD momentum buffers, if any).

        Raises:
            ValueError: if a module has no grouped form (the message names it).
        """
        bad = unsupported_modules(models[0])
        if bad:
            raise ValueError(f"no stacked (vectorized) form for modules {bad}; "
                             "set train.vectorize: false to train them one by one")
        names = [n for n, _ in models[0].named_parameters()]
        per_model = [dict(m.named_parameters()) for m in models]
        params = {n: torch.stack([p[n].detach() for p in per_model]) for n in names}
        buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in models])
                   for n, _ in models[0].named_buffers()}
        momentum = None
        if momenta is not None and all(b is not None for mom in momenta for b in mom):
            momentum = torch.cat([torch.stack([mom[i] for mom in momenta]).reshape(-1)
                                  for i in range(len(names))])
        return cls(models[0], len(models), params, buffers, momentum)

    # ---- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, B, classes]`` for member-wise inputs ``x`` of shape ``[K, B, *input]``."""
        return self.run(self.template, "", x)

    def run(self, module: nn.Module, prefix: str, h: torch.Tensor) -> torch.Tensor:
        """Apply ``module`` (named ``prefix`` in the template) in grouped form."""
        return HANDLERS[type(module)](self, module, prefix, h)

    def param(self, prefix: str, name: str) -> torch.Tensor | None:
        return self.params.get(f"{prefix}{name}")

    # ---- training ------------------------------------------------------------------------
    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member mean cross-entropy ``[K]`` on member-wise batches ``x`` [K, B, ...], ``y`` [K, B]."""
        logits = self.forward(x)
        per_sample = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="none")
        return per_sample.view(self.k, -1).mean(dim=1)

    def sgd_step(self, x: torch.Tensor, y: torch.Tensor, lr: float | torch.Tensor,
                 momentum: float, weight_decay: float) -> torch.Tensor:
        """One SGD update of every member (the arithmetic of :class:`phasezoo.optim.SGD`, bit for
        bit given the same gradients).

        ``lr`` is a float, or a flat tensor of the buffer's length for per-member rates
        (:meth:`per_member`). Returns the detached per-member losses before the update.
        """
        losses = self.losses(x, y)
        self.update(torch.autograd.grad(losses.sum(), list(self.params.values())), lr,
                    momentum, weight_decay)
        return losses.detach()

    @torch.no_grad()
    def update(self, grads: Sequence[torch.Tensor], lr: float | torch.Tensor, momentum: float,
               weight_decay: float) -> None:
        """Apply one SGD update from ``grads`` (one ``[K, *shape]`` tensor per parameter)."""
        if isinstance(lr, torch.Tensor):
            self._update_per_member(grads, lr, momentum, weight_decay)
        else:
            self._update_fused(grads, lr, momentum, weight_decay)

    def _update_fused(self, grads: Sequence[torch.Tensor], lr: float, momentum: float,
                      weight_decay: float) -> None:
        """The update with one learning rate: :func:`phasezoo.optim.fused_sgd` over the
        parameter blocks, one kernel for the whole population where the same arithmetic as
        tensor ops makes ~13 passes over its parameters (a gradient ``cat``, then weight decay,
        momentum and step; at the MLP's width 128 that update was two thirds of a step)."""
        if momentum and self.momentum is None:
            self.momentum = torch.zeros_like(self.flat)
        fused_sgd(list(self.params.values()), grads,
                  self._blocks(self.momentum) if momentum else [], lr, momentum, weight_decay)

    def _update_per_member(self, grads: Sequence[torch.Tensor], lr: torch.Tensor,
                           momentum: float, weight_decay: float) -> None:
        """The update with a learning rate per entry (``lr`` as long as the flat buffer)."""
        d = torch.cat([g.reshape(-1) for g in grads])
        if weight_decay:
            d.add_(self.flat, alpha=weight_decay)
        if momentum:
            if self.momentum is None:
                self.momentum = d
            else:
                self.momentum.mul_(momentum).add_(d)
            d = self.momentum
        self.flat.addcmul_(lr, d, value=-1)  # in place: no flat-sized temporary

    def _blocks(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """``flat`` (laid out like the parameter buffer) as one ``[K, *shape]`` view per parameter."""
        out, offset = [], 0
        for p in self.params.values():
            out.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return out

    def per_member(self, values: Sequence[float]) -> torch.Tensor:
        """A flat tensor holding ``values[k]`` at every entry of member k (for per-member lr)."""
        v = torch.as_tensor(values, dtype=self.flat.dtype, device=self.flat.device)
        return torch.cat([v.repeat_interleave(p[0].numel()) for p in self.params.values()])

    def finite(self) -> torch.Tensor:
        """``[K]`` bool: every parameter of member k is finite."""
        return torch.stack([torch.isfinite(p.detach().reshape(self.k, -1)).all(dim=1)
                            for p in self.params.values()]).all(dim=0)

    # ---- back to modules -----------------------------------------------------------------
    @torch.no_grad()
    def write_back(self, k: int, model: nn.Module) -> list[torch.Tensor | None]:
        """Copy member ``k`` into ``model``; returns its per-parameter momentum buffers."""
        for name, p in model.named_parameters():
            p.copy_(self.params[name][k])
        for name, b in model.named_buffers():
            b.copy_(self.buffers[name][k])
        if self.momentum is None:
            return [None] * len(self.params)
        return [block[k].clone() for block in self._blocks(self.momentum)]


def take_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` along the first dimension, through a 2-D view.

    Why: on the CPU, ``index_select`` of a 2-D view is ~3× faster than of the 4-D image tensor
    and ~3.5× faster than advanced indexing (measured on 16·256 MNIST rows: 0.84 vs 2.3 vs
    3.0 ms); at large batch sizes the gather is a third of a training step.
    """
    flat = x.reshape(len(x), -1).index_select(0, idx.reshape(-1))
    return flat.view(*idx.shape, *x.shape[1:])


def stack_batches(x: torch.Tensor, y: torch.Tensor,
                  idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Member-wise batches ``x[idx[k]]``, ``y[idx[k]]`` for an index matrix ``idx`` [K, B]."""
    return take_rows(x, idx), y.index_select(0, idx.reshape(-1)).view(*idx.shape, *y.shape[1:])
