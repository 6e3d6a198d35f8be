"""What each task kind's columns mean, and the error (%) the phases read: the torch-free half of
:mod:`phasezoo.tasks` (the phases stage and the card need it without importing torch)."""

from __future__ import annotations

import numpy as np

TASK_SCORES = {
    "classification": "top-1 accuracy (fraction in [0, 1], higher is better)",
    "language-modeling": "next-token top-1 accuracy (fraction in [0, 1], higher is better)",
    "pinn-convection": "relative L2 error against the analytic solution (lower is better)",
}
TASK_LOSSES = {
    "classification": "mean cross-entropy (nats)",
    "language-modeling": "mean next-token cross-entropy (nats per token)",
    "pinn-convection": "PINN loss: mean squared PDE residual + initial-condition + periodic-"
                       "boundary mean squared errors",
}

# What differs per modality beyond loss and score, including every metric that is NaN there.
TASK_NOTES = {
    "classification": [],
    "language-modeling": [
        "Rows are sequences of byte tokens; losses and accuracies average over every position.",
        "`cell_cka` compares next-token logits position by position: every position of the "
        "CKA batches' test sequences (`metrics.cka_batches` × `cka_batch_size`) is one sample.",
        "HT-SR (`alpha_mean`, `layer_*`) analyses the Linear layers (attention qkv and "
        "projection, MLP, head); embeddings and LayerNorms are not analysed.",
        "Weight matching (studies' `aligned_average_accuracy`) is defined for plain Linear/Conv "
        "chains only: NaN for transformers.",
    ],
    "pinn-convection": [
        "The `*_accuracy` columns hold the relative L2 error against the analytic solution "
        "u = sin(x − βt) (lower is better); the phases' train error (%) is 100 × that error.",
        "Train rows are collocation points (interior, t = 0, x = 0); test rows the evaluation "
        "grid, so `test_loss` is the PINN loss on the grid.",
        "`cell_cka` is the squared correlation of two seeds' predicted solutions on test grid "
        "points (the output is one number per point).",
        "HT-SR: the input layer (2 coordinates) and output layer (1 value) have fewer than 8 "
        "eigenvalues, WeightWatcher's minimum: NaN in the `layer_*` lists; the means are over the "
        "hidden layers.",
    ],
}


def score_sign(kind: str) -> int:
    """+1 where a higher ``*_accuracy`` is better, −1 where it is an error (PINN): multiplying
    a score difference by it makes "positive = better" hold for every task."""
    return -1 if kind == "pinn-convection" else 1


def error_percent(kind: str, score: np.ndarray | float) -> np.ndarray | float:
    """The error (%) that phases and mode connectivity use, from a ``*_accuracy`` value."""
    if kind not in TASK_SCORES:
        raise ValueError(f"unknown task '{kind}'; tasks are {sorted(TASK_SCORES)}")
    return 100.0 * score if kind == "pinn-convection" else 100.0 * (1.0 - score)


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
    if kind == "pinn-convection" or not np.isfinite(score):
        return float(error_percent(kind, score))
    if kind not in TASK_SCORES:
        raise ValueError(f"unknown task '{kind}'; tasks are {sorted(TASK_SCORES)}")
    correct = round(float(score) * n)
    return 100.0 - correct * 100.0 / n
