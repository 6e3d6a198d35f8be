"""Connectivity of two trained models: straight-line barrier and Bezier mode connectivity.

Both use the ``mc`` convention of Yang et al. (2021) and the phase-transition zoo:
``mc = ½(v(θ0) + v(θ1)) − v(θ_t*)`` with ``t* = argmax_t |v(θ_t) − ½(v(θ0) + v(θ1))|`` over
evenly spaced t, endpoints included, v = train error (%; the task's error, see phasezoo.tasks)
or train loss. Negative: a barrier between the seeds; positive: the path is better than its
(under-trained) ends; ≈ 0: connected. At every point of a path, BatchNorm statistics are
recomputed on the training data before evaluating. The curve's training recipe is the metric
protocol's (:mod:`phasezoo.protocols`).

Why ``mc_chord`` too: when the two seeds end at different train errors, the endpoints themselves
are |v(θ0) − v(θ1)|/2 from the midline ½(v(θ0) + v(θ1)), so the argmax can land on an endpoint
and then mc = ½(v(θ1) − v(θ0)): its sign is set by which seed is θ0, and by whether some grid
point happens to beat the endpoint. Measured on 2-layer MLPs on scikit-learn's digits (width
4, pair 0-1): +28.1 with 11 points and −27.4 with 5 on the same trained curve; the cell mean
moved from +12.5 (phase II) to −23.1 (phase I). ``mc_chord`` measures each point against the
chord between the endpoint values, (1 − t)·v(θ0) + t·v(θ1), instead of the midline: the
endpoints are on the chord, so t* is always interior, a straight path scores 0 and swapping
the seeds changes nothing (the loss-barrier convention of Frankle et al. 2020, signed as mc).
It is an extra column; the anchors' ``mc`` stays the one the phases use. So is ``mc_peak``,
the MD tree's connectivity feature (:func:`mc_peak`).

At such an end pick the two ends deviate equally in exact arithmetic (an end tie), so rounding
picks the end: path errors are computed in the anchors' own arithmetic
(:func:`phasezoo.task_kinds.counted_error_percent`), which reproduces their pick, and
``mc_end_tie`` (:func:`end_tie`) reports the pairs where it happened.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from phasezoo.augment import augment
from phasezoo.data import Split
from phasezoo.evaluation import evaluate
from phasezoo.optim import SGD
from phasezoo.protocols import curve_lrs
from phasezoo.runtime import generator, seeded, stream_seed
from phasezoo.task_kinds import counted_error_percent


@dataclass(frozen=True)
class CurveSettings:
    """How the Bezier control point is trained and the curve evaluated (defaults: the
    ``ptmz`` protocol's, :mod:`phasezoo.protocols`)."""

    epochs: int = 10
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 128
    points: int = 5
    seed: int = 0  # the pair's stream (phasezoo.landscape.pairs.pair_seed)
    weight_decay: float = 5e-4  # ½·wd·‖θ(t)‖² added to the loss
    schedule: str = "compounded"  # see phasezoo.protocols.curve_lrs
    init: str = "midpoint"  # or "random"
    # the zoo's train.augment applied to every training batch (mc_train_data: augmented), None:
    # clean batches (phasezoo.landscape.pairs.curve_settings sets it only when it is active)
    augment: dict | None = field(default=None, hash=False)


def mc_of(values: np.ndarray, reference: str = "midline") -> tuple[float, float]:
    """``(mc, t*)`` of a quantity sampled at evenly spaced t along a path: deviations from the
    ``midline`` ½(v0 + v1) (the anchors' ``mc``) or from the ``chord`` (1 − t)·v0 + t·v1
    (``mc_chord``), the largest in magnitude, negated (see the module docstring)."""
    if reference not in ("midline", "chord"):
        raise ValueError(f"mc_of: reference '{reference}' is not midline or chord")
    values = np.asarray(values, dtype=float)
    t = np.linspace(0.0, 1.0, len(values))
    base = (0.5 * (values[0] + values[-1]) if reference == "midline"
            else (1 - t) * values[0] + t * values[-1])
    i = int(np.argmax(np.abs(values - base)))
    return float(np.broadcast_to(base, values.shape)[i] - values[i]), float(t[i])


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def interpolate(a: nn.Module, b: nn.Module, t: float) -> nn.Module:
    """A copy of ``a`` with weights (1 − t)·θ_a + t·θ_b (every float state entry interpolated)."""
    sa, sb = a.state_dict(), b.state_dict()
    state = {k: (1 - t) * sa[k] + t * sb[k] if sa[k].is_floating_point() else sa[k] for k in sa}
    model = copy.deepcopy(a)
    model.load_state_dict(state)
    return model.eval()


def bezier(p0: dict, pc: dict, p1: dict, t: float) -> dict[str, torch.Tensor]:
    """Point t of the quadratic Bezier curve (1−t)²θ0 + 2t(1−t)θc + t²θ1."""
    return {k: (1 - t) ** 2 * p0[k] + 2 * t * (1 - t) * pc[k] + t ** 2 * p1[k] for k in p0}


def recompute_bn_stats(model: nn.Module, x: torch.Tensor, batch_size: int) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them on ``x`` in batches of
    ``batch_size``, as the anchors' ``update_bn`` does: momentum b / (seen + b) per batch, so
    the statistics are the sample-weighted mean of the batches'. Momenta are restored after."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            batch = x[s:s + batch_size]
            for m in bns:
                m.momentum = len(batch) / (s + len(batch))
            model(batch)
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


def _path_values(models: list[nn.Module], split: Split, batch_size: int,
                 bn_batch_size: int, x: torch.Tensor | None = None) -> np.ndarray:
    """Train error (%, in the anchors' arithmetic: :func:`counted_error_percent`) and train
    loss at each point of a path, BatchNorm recomputed in batches of ``bn_batch_size``:
    (points, 2). ``x``: the training inputs every point sees, for BatchNorm and evaluation
    alike (default the clean split; an augmented copy under ``mc_eval_data: augmented``)."""
    x = split.x_train if x is None else x
    out, targets = [], split.y_train.numel()  # what a score counts: every target (LM: token)
    for m in models:
        recompute_bn_stats(m, x, bn_batch_size)
        loss, score = evaluate(m, x, split.y_train, batch_size, split.task)
        out.append((counted_error_percent(split.task.kind, score, targets), loss))
    return np.array(out)


def end_tie(values: np.ndarray) -> float:
    """1.0 when mc's argmax is decided by rounding: the ends differ and no interior point
    deviates from the midline more than they do (both ends deviate by exactly |v0 − v1|/2, so
    mc = ±|v0 − v1|/2 and which end's sign it takes is a float rounding); 0.0 otherwise; NaN
    when a value is not finite. Errors from counts are multiples of 100/n, so a point that
    deviates more does so by far more than a rounding."""
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():
        return float("nan")
    mid = 0.5 * (v[0] + v[-1])
    ends = max(abs(v[0] - mid), abs(v[-1] - mid))
    return float(v[0] != v[-1] and bool(np.all(np.abs(v[1:-1] - mid) <= ends)))


def interpolation_barrier(a: nn.Module, b: nn.Module, split: Split, points: int,
                          batch_size: int, x_eval: torch.Tensor | None = None) -> dict[str, float]:
    """The straight-line (linear interpolation) barrier on train error, in the ``mc`` convention,
    evaluated on ``x_eval`` (default the clean training inputs; see :func:`_path_values`)."""
    path = [interpolate(a, b, float(t)) for t in np.linspace(0.0, 1.0, points)]
    mc, t_star = mc_of(_path_values(path, split, batch_size, batch_size, x_eval)[:, 0])
    return {"linear_barrier": mc, "linear_barrier_t": t_star}


def train_bezier(a: nn.Module, b: nn.Module, split: Split, cfg: CurveSettings) -> dict:
    """Train the control point θc with the ends fixed, as the anchors' curve code does.

    Each step draws t ~ U(0, 1) and minimises the task loss of the model at θ(t) plus
    ½·wd·‖θ(t)‖² (the anchors' ``l2_regularizer``, on every parameter of the point, not on θc):
    the expected loss along the curve (Garipov et al. 2018). The learning rate is set once per
    epoch (``cfg.schedule``, :func:`phasezoo.protocols.curve_lrs`).

    With ``cfg.augment`` (``mc_train_data: augmented`` on a zoo with ``train.augment``) each
    batch is augmented as the zoo's training augments it (:func:`phasezoo.augment.augment`),
    fresh draws per batch as PTMZ's augmented training loader gives, seeded by
    :func:`curve_augment_seed` (the curve's stream, epoch, step): the shuffles and t draws are
    the clean curve's, and a seed gives the same control point.
    """
    p0, p1 = _params(a), _params(b)
    start = (random_point(a, cfg.seed) if cfg.init == "random"
             else {k: 0.5 * (p0[k] + p1[k]) for k in p0})
    pc = {k: v.detach().clone().requires_grad_() for k, v in start.items()}
    model = copy.deepcopy(a).train()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    opt = SGD(list(pc.values()), momentum=cfg.momentum)
    n, gen = len(split.x_train), generator(cfg.seed)
    for epoch, lr in enumerate(curve_lrs(cfg.lr, cfg.epochs, cfg.schedule), 1):
        order = torch.randperm(n, generator=gen).to(split.x_train.device)
        for s in range(0, n, cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            t = float(torch.rand((), generator=gen))
            point = bezier(p0, pc, p1, t)
            params = {**point, **buffers}
            opt.zero_grad()
            xb = split.x_train[idx]
            if cfg.augment is not None:
                step = s // cfg.batch_size
                xb = augment(xb, cfg.augment, curve_augment_seed(cfg.seed, epoch, step))
            loss = split.task.loss(lambda inp, p=params: functional_call(model, p, (inp,)),
                                   xb, split.y_train[idx])
            if cfg.weight_decay:
                loss = loss + 0.5 * cfg.weight_decay * sum(w.pow(2).sum() for w in point.values())
            loss.backward()
            opt.step(lr)
    return {k: v.detach() for k, v in pc.items()}


def curve_augment_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of a curve's augmentation draws at (``epoch``, 1-based, ``step``), derived from
    its stream ``seed`` (a pair's ``pair_seed``) apart from its shuffle and t draws."""
    return stream_seed("mc-train-augment", int(seed), int(epoch), int(step))


@torch.no_grad()
def random_point(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A control point at LLT's random initialisation of its curve layers: every module's own
    ``reset_parameters`` (Linear and Conv: U(±1/√fan_in) for weights and biases, as LLT's
    ``curves.py``), BatchNorm weights U(0, 1) and biases 0 (LLT's ``_BatchNorm``). Parameters no
    module resets (a ViT's class token and position embedding) keep ``model``'s values: LLT's
    curves are ResNets only and define none."""
    device = next(model.parameters()).device
    fresh = copy.deepcopy(model).to("cpu")  # drawn on the CPU: the same point on any device
    with seeded(seed):
        for m in fresh.modules():
            reset = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
            if callable(reset):
                reset()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.uniform_()
                m.bias.zero_()
    return {k: v.to(device) for k, v in _params(fresh).items()}


def _at(template: nn.Module, params: dict[str, torch.Tensor]) -> nn.Module:
    model = copy.deepcopy(template)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model


def mode_connectivity(a: nn.Module, b: nn.Module, split: Split, cfg: CurveSettings,
                      eval_batch_size: int = 1000,
                      x_eval: torch.Tensor | None = None) -> dict[str, float]:
    """Bezier mode connectivity between two models on train error (%) and train loss, and
    whether its train-error mc is an end tie (:func:`end_tie`: its sign set by rounding). The
    curve trains on the split's batches (augmented under ``cfg.augment``); its points are
    evaluated on ``x_eval`` (default the clean training inputs; an augmented copy under
    ``mc_eval_data: augmented``)."""
    pc = train_bezier(a, b, split, cfg)
    p0, p1 = _params(a), _params(b)
    path = [_at(a, bezier(p0, pc, p1, float(t))) for t in np.linspace(0.0, 1.0, cfg.points)]
    # BN: the curve's batch size, as the anchors' update_bn on the curve's loader
    values = _path_values(path, split, eval_batch_size, cfg.batch_size, x_eval)
    mc_error, t_error = mc_of(values[:, 0])
    mc_loss, _ = mc_of(values[:, 1])
    mc_chord, _ = mc_of(values[:, 0], reference="chord")
    return {"mc": mc_error, "mc_t": t_error, "mc_loss": mc_loss, "mc_chord": mc_chord,
            "mc_peak": mc_peak(values[:, 0]), "mc_end_tie": end_tie(values[:, 0])}


def mc_peak(errors: np.ndarray) -> float:
    """The MD tree's ``mode_connectivity_peak``: minus the worst train error (%) at the
    curve's interior points (≤ 0; NaN for a curve of only its two ends). Unlike ``mc`` it does
    not subtract the ends: a curve between two poor models scores poorly."""
    inner = np.asarray(errors, dtype=float)[1:-1]
    return float(-inner.max()) if len(inner) else float("nan")
