"""Hessian of the training loss through Hessian-vector products: λmax, trace, spectral density.

Why not PyHessian (kept as the test and benchmark reference): on the same HVP it spends more of
them and repeats work. Here

* the first-order gradient graph of the fixed sample is built **once** and every HVP is one
  backward through it (PyHessian, given several batches, re-runs forward + backward per HVP);
* λmax comes from **Lanczos** with full reorthogonalization, stopped by the Ritz residual
  ``|β_k s_k| ≤ tol·|θ|`` (an eigenvalue lies within that residual; the top Ritz value's actual
  error is ≈ residual²/gap), instead of power iteration's slow ``(λ2/λ1)^k`` convergence;
* the trace is **Hutch++-style**: the Lanczos basis Q that found λmax deflates the outlier
  eigen-directions that dominate a network's Hessian; ``tr(QᵀHQ) = Σ α_i`` is exact and free, and
  only the small remainder ``tr((I−QQᵀ)H(I−QQᵀ))`` is estimated by Rademacher probes, stopped when
  the standard error of the total falls below ``tol·|trace|``. The estimate is unbiased (Q comes
  from a start vector independent of the probes) and reports its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from phasezoo.tasks import Task, model_loss

# A PyHessian-style criterion(outputs, targets), or a Task whose loss needs the model itself
# (a PINN residual differentiates the model w.r.t. its inputs).
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | Task
MIN_TRACE_PROBES = 3  # the standard error of fewer samples is not worth stopping on
PROBE_BLOCK = 10  # trace probes per round (the stopping rule is checked after each round)
BATCHED_HVP_MAX_PARAMS = 50_000  # measured on CPU: batched HVPs pay below this size, not above


class HessianOperator:
    """``v ↦ H v`` for the Hessian of the mean loss over ``batches`` w.r.t. the trainable parameters.

    The model is evaluated in eval mode (its mode is restored afterwards). Batches of equal input
    shape are concatenated into chunks of at most ``max_chunk`` samples whose gradient graphs are
    kept, so an HVP never repeats a forward pass. Memory: the graphs of all samples. Chunks are
    weighted by their size, which is exact for per-sample-mean losses; a PINN loss (a mean per
    point kind) is exact while the sample fits one chunk (the default sample is 640 points).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn,
                 batches: Iterable[tuple[torch.Tensor, torch.Tensor]], max_chunk: int = 4096) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.n = sum(p.numel() for p in self.params)
        device = self.params[0].device
        pairs = [(x.to(device), y.to(device)) for x, y in batches]
        if not pairs:
            raise ValueError("hessian: no batches given")
        total = sum(len(x) for x, _ in pairs)
        was_training = model.training
        model.eval()
        try:
            # The fused attention kernels (flash, memory-efficient) have no double backward; the
            # math one does, so the gradient graph of attention models (ViT) is recorded with it.
            with sdpa_kernel(SDPBackend.MATH):
                self.grads = [self._grad(model, loss_fn, x, y, len(x) / total)
                              for x, y in _chunks(pairs, max_chunk)]
        finally:
            model.train(was_training)
        self.hvps = 0

    def _split_sizes(self) -> list[int]:
        return [p.numel() for p in self.params]

    def _grad(self, model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
              weight: float) -> tuple[torch.Tensor, ...]:
        loss = model_loss(loss_fn, model, x, y) * weight
        # A parameter the loss does not reach (a PINN's output bias under the residual term) has
        # a zero gradient with no graph; matmat skips it.
        return torch.autograd.grad(loss, self.params, create_graph=True, materialize_grads=True)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H·v for a flat vector ``v`` (same dtype and device as the parameters)."""
        return self.matmat(v[None])[0]

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """H·vᵢ for each row of ``v`` (k × n), in one batched backward (``is_grads_batched``).

        Several probes per backward share the graph traversal: 2.5× faster per vector than single
        HVPs for a small MLP on CPU, about even for a wide one.
        """
        batched = len(v) > 1
        parts = [t.reshape(len(v), *p.shape) if batched else t.reshape(p.shape)
                 for t, p in zip(v.split(self._split_sizes(), dim=1), self.params, strict=True)]
        out = torch.zeros_like(v)
        for g in self.grads:
            live = [i for i, gi in enumerate(g) if gi.requires_grad]
            if not live:
                continue
            hv = torch.autograd.grad([g[i] for i in live], self.params,
                                     grad_outputs=[parts[i] for i in live], retain_graph=True,
                                     allow_unused=True, materialize_grads=True,
                                     is_grads_batched=batched)
            # materialize_grads fills an unreached parameter with an unbatched zero
            out += torch.cat([(h if h.dim() > p.dim() or not batched else h.expand(len(v), *p.shape))
                              .reshape(len(v), -1) for h, p in zip(hv, self.params, strict=True)],
                             dim=1)
        self.hvps += len(v)
        return out


def _chunks(pairs: list[tuple[torch.Tensor, torch.Tensor]],
            max_chunk: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Concatenate consecutive same-shape batches up to ``max_chunk`` samples."""
    group: list[tuple[torch.Tensor, torch.Tensor]] = []
    for x, y in pairs:
        if group and (sum(len(a) for a, _ in group) + len(x) > max_chunk
                      or x.shape[1:] != group[0][0].shape[1:]):
            yield torch.cat([a for a, _ in group]), torch.cat([b for _, b in group])
            group = []
        group.append((x, y))
    yield torch.cat([a for a, _ in group]), torch.cat([b for _, b in group])




@dataclass
class Lanczos:
    """A Lanczos run: tridiagonal coefficients and the orthonormal Krylov basis (rows of Q)."""

    alphas: list[float]
    betas: list[float]
    basis: torch.Tensor  # (k, n)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and eigenvectors of the tridiagonal matrix T_k."""
        t = np.diag(self.alphas) + np.diag(self.betas[:len(self.alphas) - 1], 1) \
            + np.diag(self.betas[:len(self.alphas) - 1], -1)
        return np.linalg.eigh(t)


def lanczos(op: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, max_steps: int,
            tol: float | None) -> Lanczos:
    """Lanczos with full reorthogonalization from ``start``.

    Stops after ``max_steps`` steps, on an invariant subspace, or (when ``tol`` is given) once the
    top Ritz value's residual ``|β_k s_k|`` is at most ``tol·|θ_max|``.
    """
    q = start / torch.linalg.vector_norm(start)
    basis, alphas, betas = [q], [], []
    for _ in range(max_steps):
        w = op(basis[-1])
        alphas.append(float(torch.dot(w, basis[-1])))
        stacked = torch.stack(basis)
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            w = w - stacked.T @ (stacked @ w)
        beta = float(torch.linalg.vector_norm(w))
        betas.append(beta)
        run = Lanczos(alphas, betas, stacked)
        if beta <= 1e-10 * max(1.0, abs(alphas[-1])) or len(basis) == start.numel():
            return run
        if tol is not None:
            theta, vecs = run.ritz()
            if abs(beta * vecs[-1, -1]) <= tol * abs(theta[-1]):
                return run
        basis.append(w / beta)
    return Lanczos(alphas, betas, torch.stack(basis[:len(alphas)]))


def _start(n: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    """A seeded Gaussian start vector, drawn on the CPU in float64 (device-independent)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, generator=gen, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def _rademacher(k: int, n: int, seed: int, like: torch.Tensor) -> torch.Tensor:
    """``k`` seeded Rademacher (±1) probe vectors as rows, drawn on the CPU."""
    gen = torch.Generator().manual_seed(int(seed))
    bits = torch.randint(0, 2, (k, n), generator=gen, dtype=torch.int8)
    return (2 * bits - 1).to(device=like.device, dtype=like.dtype)


@dataclass
class HessianSummary:
    """λmax and trace of one Hessian, with what they cost and how sure the trace is."""

    top_eigenvalue: float
    trace: float
    trace_stderr: float
    lanczos_steps: int
    trace_probes: int
    hvps: int


def _deflated_trace(op: HessianOperator, run: Lanczos, tol: float, max_probes: int,
                    seed: int) -> tuple[float, float, int]:
    """``Σ α_i`` plus a Hutchinson estimate of the trace outside the Krylov basis."""
    q = run.basis
    exact = float(sum(run.alphas))
    samples: list[float] = []
    if q.shape[0] >= op.n:  # the basis spans everything: the trace is exact
        return exact, 0.0, 0
    while len(samples) < max_probes:
        k = min(PROBE_BLOCK, max_probes - len(samples))
        z = _rademacher(k, op.n, seed * 7919 + len(samples) + 1, q)
        z = z - (z @ q.T) @ q
        hz = op.matmat(z) if op.n <= BATCHED_HVP_MAX_PARAMS else torch.stack([op(v) for v in z])
        samples += (z * hz).sum(dim=1).tolist()
        if len(samples) >= MIN_TRACE_PROBES:
            stderr = float(np.std(samples, ddof=1) / math.sqrt(len(samples)))
            if stderr <= tol * abs(exact + np.mean(samples)):
                break
    stderr = float(np.std(samples, ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 else math.inf
    return exact + float(np.mean(samples)), stderr, len(samples)


def hessian_summary(model: nn.Module, loss_fn: LossFn,
                    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, tol: float = 1e-3,
                    trace_tol: float = 1e-3, max_iter: int = 100, seed: int = 0,
                    top_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
                    ) -> HessianSummary:
    """λmax (Lanczos, residual ``tol``) and trace (deflated Hutchinson, relative stderr ``trace_tol``).

    ``max_iter`` caps both the Lanczos steps and the trace probes. ``top_batches`` puts λmax on
    other data than the trace (PTMZ publishes its test loader's λmax beside the training trace):
    the trace still deflates with its own Lanczos run on ``batches``, so that costs a second run,
    counted in ``hvps`` and ``lanczos_steps``.
    """
    other = None  # (λmax, Lanczos steps, HVPs) on top_batches, its graph freed before the trace's
    if top_batches is not None:
        top_op = HessianOperator(model, loss_fn, top_batches)
        top_run = lanczos(top_op, _start(top_op.n, seed, top_op.params[0].detach()),
                          min(max_iter, top_op.n), tol)
        other = float(top_run.ritz()[0][-1]), len(top_run.alphas), top_op.hvps
        del top_op, top_run
    op = HessianOperator(model, loss_fn, batches)
    like = op.params[0].detach()
    run = lanczos(op, _start(op.n, seed, like), min(max_iter, op.n), tol)
    top, steps, hvps = float(run.ritz()[0][-1]), len(run.alphas), 0
    if other is not None:
        top, steps, hvps = other[0], steps + other[1], other[2]
    trace, stderr, probes = _deflated_trace(op, run, trace_tol, max_iter, seed)
    return HessianSummary(top, trace, stderr, steps, probes, op.hvps + hvps)


def hessian_top_eigenvalue(model: nn.Module, loss_fn: LossFn,
                           batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                           tol: float = 1e-3, max_iter: int = 100, seed: int = 0) -> float:
    """The largest (algebraic) eigenvalue of the Hessian of the mean loss over ``batches``.

    Lanczos stopped by the Ritz residual (see the module docstring). Unlike PyHessian, which
    returns the eigenvalue of largest magnitude, this is λmax even if a negative one is larger.
    """
    op = HessianOperator(model, loss_fn, batches)
    run = lanczos(op, _start(op.n, seed, op.params[0].detach()), min(max_iter, op.n), tol)
    return float(run.ritz()[0][-1])


def hessian_top_eigenvectors(model: nn.Module, loss_fn: LossFn,
                             batches: Iterable[tuple[torch.Tensor, torch.Tensor]], k: int, *,
                             max_iter: int = 100, seed: int = 0) -> tuple[np.ndarray, torch.Tensor]:
    """The ``k`` largest (algebraic) Ritz values, descending, and their Ritz vectors (rows,
    unit norm, orthonormal) from ``max_iter`` Lanczos steps (fewer on an invariant subspace).

    Raises:
        ValueError: when the run spans fewer than ``k`` dimensions.
    """
    op = HessianOperator(model, loss_fn, batches)
    run = lanczos(op, _start(op.n, seed, op.params[0].detach()), min(max_iter, op.n), None)
    values, vectors = run.ritz()
    if len(values) < k:
        raise ValueError(f"hessian: {len(values)} Lanczos steps span fewer than {k} directions")
    top = np.argsort(values)[::-1][:k]
    ritz = torch.as_tensor(vectors[:, top].T, dtype=run.basis.dtype, device=run.basis.device)
    return values[top], ritz @ run.basis


def hessian_trace(model: nn.Module, loss_fn: LossFn,
                  batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, tol: float = 1e-3,
                  max_iter: int = 100, seed: int = 0) -> float:
    """The Hessian trace, to a relative standard error ``tol`` (or ``max_iter`` probes).

    Lanczos-deflated Hutchinson (Hutch++-style, see the module docstring);
    :func:`hessian_summary` also returns the standard error and the HVP count.
    """
    return hessian_summary(model, loss_fn, batches, tol=tol, trace_tol=tol, max_iter=max_iter,
                           seed=seed).trace


def hessian_density(model: nn.Module, loss_fn: LossFn,
                    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, steps: int = 30,
                    probes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spectral density by stochastic Lanczos quadrature (Ghorbani et al. 2019).

    Returns ``(nodes, weights)``: Ritz values of ``steps``-step Lanczos runs from ``probes``
    Gaussian start vectors, weighted by the squared first components of their eigenvectors
    divided by ``probes``; the weights sum to 1 and ``Σ w·f(node) ≈ tr f(H) / n``.
    """
    op = HessianOperator(model, loss_fn, batches)
    like = op.params[0].detach()
    nodes, weights = [], []
    for i in range(probes):
        run = lanczos(op, _start(op.n, seed * 104729 + i, like), min(steps, op.n), None)
        theta, vecs = run.ritz()
        nodes.append(theta)
        weights.append(vecs[0] ** 2 / probes)
    return np.concatenate(nodes), np.concatenate(weights)


def sample_batches(x: torch.Tensor, y: torch.Tensor, n_batches: int, batch_size: int,
                   seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed, seeded sample of ``n_batches × batch_size`` examples of (x, y), without repeats
    (the training split for the trace, the test split for ptmz's λmax)."""
    n = min(len(x), n_batches * batch_size)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].to(x.device)
    return [(x[idx[i:i + batch_size]], y[idx[i:i + batch_size]]) for i in range(0, n, batch_size)]
