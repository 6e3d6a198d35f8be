"""The task kinds a dataset can pose, each registered once with its properties: what its
columns mean, the error (%) the phases read, how it trains and what a config may ask of it.
The torch-free half of :mod:`phasezoo.tasks` (the phases stage, the card, the config check,
the estimate and the job layout need it without importing torch); a dataset names its kind in
its record (:mod:`phasezoo.dataset_facts`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskKind:
    """One task kind's properties."""

    name: str
    score: str  # what the ``*_accuracy`` columns hold (the card)
    loss: str  # what the ``*_loss`` columns hold (the card)
    score_unit: str  # the score in a heat map's title
    loss_unit: str  # the loss in a heat map's title
    inputs: str  # "images", "tokens" or "points": one sample's shape and what preparation applies
    score_is_error: bool = False  # a lower score is better (a relative error, not an accuracy)
    stackable: bool = True  # the stacked trainer applies (phasezoo.tasks.Task.stackable)
    categorical: bool = True  # outputs are logits over categories (softmax CKA is meaningful)
    input_derivative_factor: int = 1  # training FLOPs over a plain forward + backward
    notes: tuple[str, ...] = ()  # what differs beyond loss and score, every NaN metric included


CLASSIFICATION = TaskKind(
    "classification", score="top-1 accuracy (fraction in [0, 1], higher is better)",
    loss="mean cross-entropy (nats)", score_unit="accuracy (fraction)",
    loss_unit="cross-entropy, nats", inputs="images")
LANGUAGE_MODELING = TaskKind(
    "language-modeling",
    score="next-token top-1 accuracy (fraction in [0, 1], higher is better)",
    loss="mean next-token cross-entropy (nats per token)",
    score_unit="next-token accuracy (fraction)", loss_unit="cross-entropy, nats/token",
    inputs="tokens", notes=(
        "Rows are sequences of byte tokens; losses and accuracies average over every position.",
        "`cell_cka` compares next-token logits position by position: every position of the "
        "CKA batches' test sequences (`metrics.cka_batches` × `cka_batch_size`) is one sample.",
        "HT-SR (`alpha_mean`, `layer_*`) analyses the Linear layers (attention qkv and "
        "projection, MLP, head); embeddings and LayerNorms are not analysed.",
        "Weight matching (studies' `aligned_average_accuracy`) aligns the residual stream, each "
        "block's MLP units and each attention layer's heads (`phasezoo.wsl.symmetry`).",
    ))
# A PINN's loss differentiates the network w.r.t. its inputs, then backward goes through that:
# about 3× the FLOPs of a plain forward + backward, and no stacked form.
PINN_CONVECTION = TaskKind(
    "pinn-convection",
    score="relative L2 error against the analytic solution (lower is better)",
    loss="PINN loss: mean squared PDE residual + initial-condition + periodic-boundary mean "
         "squared errors",
    score_unit="relative L2 error (lower is better)",
    loss_unit="PDE residual + IC + BC mean squared errors", inputs="points",
    score_is_error=True, stackable=False, categorical=False, input_derivative_factor=3, notes=(
        "The `*_accuracy` columns hold the relative L2 error against the analytic solution "
        "u = sin(x − βt) (lower is better); the phases' train error (%) is 100 × that error.",
        "Train rows are collocation points (interior, t = 0, x = 0); test rows the evaluation "
        "grid, so `test_loss` is the PINN loss on the grid.",
        "`cell_cka` is the squared correlation of two seeds' predicted solutions on test grid "
        "points (the output is one number per point).",
        "HT-SR: the input layer (2 coordinates) and output layer (1 value) have fewer than 8 "
        "eigenvalues, WeightWatcher's minimum: NaN in the `layer_*` lists; the means are over the "
        "hidden layers.",
    ))
TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in (CLASSIFICATION, LANGUAGE_MODELING,
                                                         PINN_CONVECTION)}


def task_kind(name: str) -> TaskKind:
    """The registered task kind ``name``.

    Raises:
        ValueError: naming the task kinds, for a name that is not one.
    """
    if name not in TASK_KINDS:
        raise ValueError(f"unknown task '{name}'; tasks are {sorted(TASK_KINDS)}")
    return TASK_KINDS[name]


def score_sign(kind: str) -> int:
    """+1 where a higher ``*_accuracy`` is better, −1 where it is an error (PINN): multiplying
    a score difference by it makes "positive = better" hold for every task."""
    return -1 if task_kind(kind).score_is_error else 1


def error_percent(kind: str, score: np.ndarray | float) -> np.ndarray | float:
    """The error (%) that phases and mode connectivity use, from a ``*_accuracy`` value."""
    return 100.0 * score if task_kind(kind).score_is_error else 100.0 * (1.0 - score)


def counted_error_percent(kind: str, score: float, n: int) -> float:
    """The error (%) of a path point whose score counts c correct of ``n`` targets, in the
    anchors' own arithmetic: ``100.0 - c * 100.0 / n`` (their ``test_acc_loss`` returns
    ``correct * 100.0 / len(dataset)`` and the curve code takes ``100.0 - accuracy``).

    Why not :func:`error_percent`: at an end tie of ``mc`` (no interior point deviates more than
    the ends) the two ends deviate equally from the midline in exact arithmetic, so the last bit
    of each error decides which end argmax picks, and with it mc's sign; ``100·(1 − c/n)`` rounds
    differently from the anchors' form on about 28 % of count pairs. ``c = round(score · n)`` is
    exact for a score computed as ``c / n``. A PINN's score is a relative L2 error with no
    counts: it keeps :func:`error_percent`'s ``100 · score``. NaN for a NaN score.
    """
    if task_kind(kind).score_is_error or not np.isfinite(score):
        return float(error_percent(kind, score))
    correct = round(float(score) * n)
    return 100.0 - correct * 100.0 / n
