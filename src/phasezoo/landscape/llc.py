"""The local learning coefficient λ̂ (LLC; Lau et al. 2023, "The Local Learning Coefficient: A
Singularity-Aware Complexity Measure"): how many effective parameters a trained network uses,
estimated by SGLD sampling of the tempered posterior localized at the checkpoint w*.

The estimator is devinterp's (timaeus-research/devinterp 2.0.1, ``devinterp.optim.SGMCMC.sgld``
stepping ``devinterp.slt.sampler.sample_single_chain``, reduced by ``devinterp.slt.llc``), kept
as the test reference; here it runs on any ``nn.Module`` and a phasezoo :class:`~phasezoo.tasks.Task`
(or a PyHessian-style criterion). Per step, on a minibatch B_t of m training examples::

    w ← w − ε/2 · (nβ·∇L_{B_t}(w) + γ·(w − w*)) + √ε · N(0, I)

whose stationary law is ∝ exp(−nβ·L_n(w) − γ/2·‖w − w*‖²), and
``λ̂ = nβ · (E_chain[L_n(w)] − L_n(w*))``, one estimate per chain, averaged over chains.

Where it follows devinterp and where not, on purpose:

* The update, its noise (``torch.normal`` per parameter tensor, in parameter order) and the
  reduction are devinterp's; the default nβ is ``devinterp.utils.default_nbeta`` of the SGLD
  batch, m / log m (Lau et al. write n / log n for the whole training set: set ``nbeta``).
  Every chain sees the same batch order (devinterp's ``match_sampling_input_ids_across_chains``),
  one seeded permutation of the training set cycled with the last partial batch dropped.
* The loss is the model's in **eval mode** (devinterp samples in train mode): batch-norm running
  statistics are constants of L_n and are not updated by the chains, dropout is off, so the loss
  is a deterministic function of w, as the LLC's definition needs.
* L_n(w*) is measured on the same batches as the draws (paired), not on the first 32 batches:
  the same expectation, without the batch-to-batch noise of the loss that nβ multiplies.
* Draws start after ``burnin`` steps (devinterp 2.0.1 averages over the burn-in as well).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from phasezoo.landscape.hessian import LossFn
from phasezoo.runtime import stream_seed
from phasezoo.tasks import model_loss

# A chain "still drifts" when the mean λ̂ of its last quarter of draws differs from that of the
# third quarter by more than this fraction of λ̂ (and by more than 2 standard errors over chains).
DRIFT_TOLERANCE = 0.1


@dataclass(frozen=True)
class SGLDConfig:
    """The sampler's hyperparameters (the ``metrics.llc_*`` keys): step size ε, inverse
    temperature nβ (``None`` = m / log m of the batch), localization γ, independent chains,
    draws per chain after ``burnin`` steps, and the batch size m."""

    epsilon: float = 1e-3
    nbeta: float | None = None
    gamma: float = 100.0
    chains: int = 4
    steps: int = 200
    burnin: int = 0
    batch_size: int = 32

    def resolved_nbeta(self, n: int) -> float:
        """nβ for a training set of ``n`` examples: the configured value, or devinterp's
        ``default_nbeta`` of the batch actually used (m / log m; 1 for a batch of one)."""
        if self.nbeta is not None:
            return float(self.nbeta)
        m = min(self.batch_size, n)
        return m / math.log(m) if m > 1 else 1.0


@dataclass(frozen=True)
class LLCEstimate:
    """λ̂ and its diagnostics. ``per_chain`` holds each finished chain's λ̂; ``trace`` is
    nβ·(L_{B_t}(w_t) − L_{B_t}(w*)) per chain (rows) and draw (columns), NaN after a chain's
    loss stopped being finite."""

    per_chain: np.ndarray
    trace: np.ndarray
    nbeta: float
    steps: int

    @property
    def finished(self) -> np.ndarray:
        """Which chains kept a finite loss to the end."""
        return np.isfinite(self.trace).all(axis=1)

    @property
    def llc(self) -> float:
        """Mean λ̂ over the finished chains (NaN when none finished)."""
        done = self.per_chain[self.finished]
        return float(done.mean()) if len(done) else math.nan

    @property
    def std(self) -> float:
        """Standard deviation of λ̂ over the finished chains (ddof 0, as devinterp's
        ``llc_std``)."""
        done = self.per_chain[self.finished]
        return float(done.std()) if len(done) else math.nan

    @property
    def drift(self) -> float:
        """Mean over finished chains of (λ̂ over the last quarter of draws) − (λ̂ over the third
        quarter): ≈ 0 once the chains have settled."""
        return float(self._quarter_drifts().mean()) if self.finished.any() else math.nan

    def _quarter_drifts(self) -> np.ndarray:
        done = self.trace[self.finished]
        q = max(1, done.shape[1] // 4)
        return done[:, -q:].mean(axis=1) - done[:, -2 * q:-q].mean(axis=1)

    @property
    def unsettled(self) -> bool:
        """True when λ̂ cannot be trusted as sampled: a chain's loss became non-finite, λ̂ is
        not positive, or the second half of the chains still drifts (:data:`DRIFT_TOLERANCE`
        of λ̂, and beyond 2 standard errors of the drift over chains)."""
        if not self.finished.all() or not self.llc > 0:
            return True
        drifts = self._quarter_drifts()
        noise = 2 * drifts.std(ddof=1) / math.sqrt(len(drifts)) if len(drifts) > 1 else 0.0
        return bool(abs(self.drift) > max(DRIFT_TOLERANCE * self.llc, noise))

    def columns(self) -> dict[str, float]:
        """The per-checkpoint columns (:data:`phasezoo.metrics.LLC_COLUMNS`)."""
        return {"llc": self.llc, "llc_std": self.std, "llc_nbeta": self.nbeta,
                "llc_chains": float(self.finished.sum()), "llc_steps": float(self.steps),
                "llc_drift": self.drift, "llc_unsettled": float(self.unsettled)}


def batch_indices(n: int, steps: int, batch_size: int, seed: int) -> torch.Tensor:
    """``steps × m`` example indices: one seeded permutation of ``range(n)`` cut into batches of
    m = min(batch_size, n), the last partial batch dropped, cycled as often as ``steps`` needs
    (devinterp's ``epoch_mode='cycle'``, which replays the first shuffle)."""
    m = min(batch_size, n)
    per_pass = n // m
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:per_pass * m]
    batches = perm.view(per_pass, m)
    return batches[torch.arange(steps) % per_pass]


def _reference_losses(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
                      batches: torch.Tensor) -> np.ndarray:
    """L_{B_t}(w*) for each batch (no parameter graph; autograd stays on for a loss that
    differentiates the model w.r.t. its inputs, the PINN's)."""
    needs_grad = not getattr(loss_fn, "stackable", True)
    out = np.empty(len(batches))
    with torch.enable_grad() if needs_grad else torch.no_grad():
        for t, idx in enumerate(batches):
            out[t] = float(model_loss(loss_fn, model, x[idx], y[idx]).detach())
    return out


def sgld_chain(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
               batches: torch.Tensor, config: SGLDConfig, nbeta: float,
               seed: int) -> np.ndarray:
    """One SGLD chain from the model's current weights w*; returns L_{B_t}(w_t) for every step
    (the loss before that step's update, as devinterp's draws record it), NaN from the first
    non-finite one on (the chain stops there). The weights are left where the chain ended:
    the caller restores them."""
    params = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
    losses = np.full(len(batches), np.nan)
    for t, idx in enumerate(batches):
        loss = model_loss(loss_fn, model, x[idx], y[idx])
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        losses[t] = value
        grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
        _sgld_step(params, grads, start, config, nbeta, gen)
    return losses


@torch.no_grad()
def _sgld_step(params: list[torch.Tensor], grads: tuple[torch.Tensor, ...],
               start: list[torch.Tensor], config: SGLDConfig, nbeta: float,
               gen: torch.Generator) -> None:
    """One update of every parameter, in devinterp's operation order (SGMCMC.step) so that the
    same noise gives the same chain."""
    for p, g, p0 in zip(params, grads, start, strict=True):
        d_p = g.mul(nbeta)
        if config.gamma:
            d_p.add_(config.gamma * (p - p0))
        p.add_(d_p, alpha=-0.5 * config.epsilon)
        noise = torch.normal(mean=0.0, std=1.0, size=d_p.size(), device=d_p.device, generator=gen)
        p.add_(noise, alpha=config.epsilon ** 0.5)


def estimate_llc(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
                 config: SGLDConfig, seed: int, progress: bool = False) -> LLCEstimate:
    """λ̂ of ``model`` at its current weights on the training set ``(x, y)`` (n = ``len(x)``).

    Deterministic given ``seed``: the batch order comes from ``stream_seed('llc-batches',
    seed)``, chain c's noise from ``stream_seed('llc-noise', seed, c)``. The model's weights
    and train/eval mode are restored afterwards.

    Raises:
        ValueError: naming the setting, for an empty training set or no draws.
    """
    if len(x) == 0 or config.steps < 1 or config.chains < 1:
        raise ValueError(f"llc: need training examples, llc_steps ≥ 1 and llc_chains ≥ 1 "
                         f"(got {len(x)} examples, {config.steps} steps, {config.chains} chains)")
    nbeta = config.resolved_nbeta(len(x))
    total = config.burnin + config.steps
    batches = batch_indices(len(x), total, config.batch_size,
                            stream_seed("llc-batches", seed)).to(x.device)
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    was_training = model.training
    model.eval()
    try:
        ref = _reference_losses(model, loss_fn, x, y, batches[config.burnin:])
        traces = []
        for c in tqdm(range(config.chains), desc="llc chains", disable=not progress):
            losses = sgld_chain(model, loss_fn, x, y, batches, config, nbeta,
                                stream_seed("llc-noise", seed, c))
            traces.append(nbeta * (losses[config.burnin:] - ref))
            _restore(params, saved)
    finally:
        _restore(params, saved)
        model.train(was_training)
    trace = np.stack(traces)
    return LLCEstimate(per_chain=trace.mean(axis=1), trace=trace, nbeta=nbeta,
                       steps=config.steps)


@torch.no_grad()
def _restore(params: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    for p, s in zip(params, saved, strict=True):
        p.copy_(s)
