"""Named metric protocols: how mode connectivity, CKA and the Hessian are measured, as each
anchor's code measures them, so that a published phase means what that literature means.

``metrics.protocol`` picks one; its values fill every protocol key the config leaves out
(:func:`fill_protocol_defaults`), and a key the config sets overrides it. Torch-free: the config
loader reads it. The anchors' source files each value comes from, and where phasezoo differs on
purpose, are listed in ``docs/protocols.md``.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_KEYS = ("mc_points", "mc_epochs", "mc_lr", "mc_momentum", "mc_batch_size",
                 "mc_weight_decay", "mc_schedule", "mc_init", "max_pairs", "cka_output",
                 "cka_data", "cka_batches", "cka_batch_size", "cka_pooling", "cka_mixup_alpha",
                 "hessian_batches", "hessian_batch_size")

_CURVES = {"mc_points": 5, "mc_momentum": 0.9, "mc_batch_size": 128, "mc_weight_decay": 5e-4}

PROTOCOLS: dict[str, dict[str, Any]] = {
    "ptmz": {**_CURVES, "mc_epochs": 10, "mc_lr": 0.1, "mc_schedule": "compounded",
             "mc_init": "midpoint", "max_pairs": -1,
             "cka_output": "logits", "cka_data": "test", "cka_batches": 10, "cka_batch_size": 128,
             "cka_pooling": "batch-mean", "cka_mixup_alpha": 16.0,
             "hessian_batches": 10, "hessian_batch_size": 64},
    "llt": {**_CURVES, "mc_epochs": 50, "mc_lr": 0.01, "mc_schedule": "from-base",
            "mc_init": "random", "max_pairs": 1,
            "cka_output": "softmax", "cka_data": "train-mixup", "cka_batches": 6,
            "cka_batch_size": 128, "cka_pooling": "pooled", "cka_mixup_alpha": 16.0,
            "hessian_batches": 1, "hessian_batch_size": 200},
}

# Neither anchor's code holds phase boundaries: PTMZ's README gives the taxonomy as a qualitative
# table (high / small train loss, negative / positive / near-zero mc, small / large CKA), LLT's
# notebooks only colour ranges. So each threshold is read off the anchor's published metrics,
# on that protocol's own scale, by one rule (tests/test_thresholds.py recomputes them): train
# error 1 % and mc −2 % sit in sparse bands of the published distributions, and the CKA
# threshold is the median CKA of the published low-loss (train error ≤ 1 %), connected
# (mc ≥ −2) cells, to 2 decimals, so IV-A and IV-B split that set in half.
PHASE_THRESHOLDS: dict[str, dict[str, float]] = {
    "ptmz": {"train_error": 1.0, "mc_tolerance": 2.0, "cka": 0.93},
    "llt": {"train_error": 1.0, "mc_tolerance": 2.0, "cka": 0.55},
}
THRESHOLD_SOURCES = {
    "ptmz": "read off PTMZ's published CIFAR-10 ResNet-18 and ResNet-50 grids (128 cells, "
            "`summary_metrics/*.csv`, MIT): 3 cells have a train error in (0.5, 1] %; 2 have "
            "mc in (−3, −2]; the median CKA of the 37 low-loss (≤ 1 %) connected (mc ≥ −2) "
            "cells is 0.926. Neither anchor's code holds phase boundaries (its README gives "
            "them as a qualitative table); `phasezoo.protocols` states the rule.",
    "llt": "read off the MD-tree paper's 1,690 ResNet-18 configurations measured with LLT's "
           "code (`dataframe_normal_public.csv`, MIT): 0.7 % have a train error in (0.5, 1] %; "
           "3 % have mc in (−5, −0.5]; the median CKA of the 616 low-loss connected ones is "
           "0.555 (the MD tree's own starting threshold is 0.5). Neither anchor's code holds "
           "phase boundaries; `phasezoo.protocols` states the rule.",
}

ANCHORS = {"ptmz": "phase-transition model zoo (ModelZoos/PhaseTransitionModelZoo)",
           "llt": "loss-landscape taxonomy (nsfzyzz/loss_landscape_taxonomy)"}

DEVIATIONS = (
    "Hessian λmax by Lanczos and trace by Hutchinson probes to a standard-error target "
    "(the anchors: PyHessian's power iteration and its stopping rule)",
    "CKA test samples evenly spaced over the test split (the anchors: its first batches)",
    "curves trained, and BatchNorm recomputed, on the un-augmented training split",
    "LLT's mixup CKA batches drawn once per cell (seed `mc_seed`) and shared by its pairs "
    "(LLT draws fresh ones for every pair)",
    "`mc_loss` on the plain loss (the anchors' curve loss adds the L2 term)",
)


def fill_protocol_defaults(metrics: dict[str, Any], phases: dict[str, Any]) -> None:
    """Fill, in place, every protocol key that ``metrics`` and every threshold that ``phases``
    leaves out with its protocol's value (``metrics['protocol']``, validated by the schema)."""
    for key, value in PROTOCOLS[metrics["protocol"]].items():
        metrics.setdefault(key, value)
    for key, value in PHASE_THRESHOLDS[metrics["protocol"]].items():
        phases.setdefault(key, value)


def overrides(metrics: dict[str, Any]) -> dict[str, Any]:
    """The protocol keys whose values differ from the protocol's own (what the card names)."""
    own = PROTOCOLS[metrics["protocol"]]
    return {k: metrics[k] for k in PROTOCOL_KEYS if k in metrics and metrics[k] != own[k]}


def lr_factor(epoch: int, epochs: int) -> float:
    """The anchors' curve learning-rate factor at ``epoch`` (1-based) of ``epochs``: 1 until
    half-way, linear down to 0.01 at 90 %, then 0.01 (Garipov et al.'s ``learning_rate_schedule``,
    which both anchors copy)."""
    alpha = epoch / epochs
    if alpha <= 0.5:
        return 1.0
    if alpha <= 0.9:
        return 1.0 - (alpha - 0.5) / 0.4 * 0.99
    return 0.01


def curve_lrs(base: float, epochs: int, schedule: str) -> list[float]:
    """The learning rate of each curve-training epoch: ``constant``; ``from-base`` (LLT: the
    factor times the base rate); ``compounded`` (PTMZ: the factor times the previous epoch's
    rate, as its code feeds the rate back)."""
    lrs, lr = [], base
    for epoch in range(1, epochs + 1):
        if schedule == "constant":
            lr = base
        elif schedule == "from-base":
            lr = base * lr_factor(epoch, epochs)
        elif schedule == "compounded":
            lr = lr * lr_factor(epoch, epochs)
        else:
            raise ValueError(f"unknown curve schedule '{schedule}'; known: constant, from-base, "
                             "compounded")
        lrs.append(lr)
    return lrs
