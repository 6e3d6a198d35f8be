"""Named metric protocols: how mode connectivity, CKA and the Hessian are measured, as each
anchor's code measures them, so that a published phase means what that literature means.

``metrics.protocol`` picks one; its values fill every protocol key the config leaves out
(:func:`fill_protocol_defaults`), and a key the config sets overrides it. Torch-free: the config
loader reads it. The anchors' source files each value comes from, and where phasezoo differs on
purpose, are listed in ``docs/protocols.md``.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_KEYS = ("mc_points", "mc_epochs", "mc_epochs_rule", "mc_train_data", "mc_eval_data",
                 "mc_lr", "mc_momentum", "mc_batch_size", "mc_weight_decay", "mc_schedule",
                 "mc_init", "max_pairs", "cka_max_pairs",
                 "cka_output", "cka_data", "cka_batches", "cka_batch_size", "cka_pooling",
                 "cka_mixup_alpha", "hessian_batches", "hessian_batch_size", "hessian_top_data")

_CURVES = {"mc_points": 5, "mc_momentum": 0.9, "mc_batch_size": 128, "mc_weight_decay": 5e-4}

PROTOCOLS: dict[str, dict[str, Any]] = {
    "ptmz": {**_CURVES, "mc_epochs": 10, "mc_epochs_rule": "fixed",
             "mc_train_data": "augmented", "mc_eval_data": "augmented", "mc_lr": 0.1,
             "mc_schedule": "compounded", "mc_init": "midpoint", "max_pairs": -1, "cka_max_pairs": -1,
             "cka_output": "logits", "cka_data": "test", "cka_batches": 10, "cka_batch_size": 128,
             "cka_pooling": "batch-mean", "cka_mixup_alpha": 16.0,
             "hessian_batches": 10, "hessian_batch_size": 64, "hessian_top_data": "test"},
    "llt": {**_CURVES, "mc_epochs": 50, "mc_epochs_rule": "per-data-fraction",
            "mc_train_data": "clean", "mc_eval_data": "clean", "mc_lr": 0.01,
            "mc_schedule": "from-base", "mc_init": "random", "max_pairs": 1, "cka_max_pairs": -1,
            "cka_output": "softmax", "cka_data": "train-mixup", "cka_batches": 6,
            "cka_batch_size": 128, "cka_pooling": "pooled", "cka_mixup_alpha": 16.0,
            "hessian_batches": 1, "hessian_batch_size": 200, "hessian_top_data": "train"},
}

# Neither anchor's code holds phase boundaries: PTMZ's README gives the taxonomy as a qualitative
# table (high / small train loss, negative / positive / near-zero mc, small / large CKA), LLT's
# notebooks only colour ranges. So every threshold below is a convention, not a measured phase
# boundary, placed on the anchor's published metrics, on that protocol's own scale, by a stated
# rule (THRESHOLD_SOURCES; tests/test_thresholds.py recomputes each from its data): train error
# 1 % and mc −2 % sit in sparse bands of the published distributions, and the CKA split is the
# median CKA of the published low-loss (train error ≤ 1 %), connected (mc ≥ −2) cells, to 2
# decimals, so IV-A and IV-B split that set in half by construction. `phases.cka_rule:
# zoo-median` applies the same rule to a zoo's own cells instead (phasezoo.boundaries).
PHASE_THRESHOLDS: dict[str, dict[str, float]] = {
    "ptmz": {"train_error": 1.0, "mc_tolerance": 2.0, "cka": 0.93},
    "llt": {"train_error": 1.0, "mc_tolerance": 2.0, "cka": 0.55},
}
# Per protocol and threshold: what kind of number it is, the rule that placed it, and the data
# (the card's "Phase boundaries" table; docs/protocols.md, "Phase boundaries: conventions and
# their data").
THRESHOLD_SOURCES: dict[str, dict[str, dict[str, str]]] = {
    "ptmz": {
        "train_error": {
            "kind": "convention",
            "rule": "placed in a sparse band of the published train errors",
            "data": "PTMZ's CIFAR-10 ResNet-18 and ResNet-50 grids (128 cells, "
                    "`summary_metrics/*.csv`, MIT): 3 cells have a seed-mean train error in "
                    "(0.5, 1] %"},
        "mc_tolerance": {
            "kind": "convention",
            "rule": "placed in a sparse band of the published mc",
            "data": "the same 128 cells: 2 have mc in (−3, −2]; ResNet-50 width 32 batch 512 "
                    "(mc −2.0007) is phase III by 0.0007, so the value sits on the data's edge"},
        "cka": {
            "kind": "convention (a median, not a measured boundary)",
            "rule": "median CKA of the anchor's low-loss (≤ 1 %) connected (mc ≥ −2) cells, to "
                    "2 decimals: splits those cells 50/50 into IV-A and IV-B by construction",
            "data": "the 37 such cells of the same grids: median 0.926. On PTMZ's CIFAR-100 "
                    "ResNet-18 width 256 (train accuracy ≥ 99.95 %, |mc| < 1, CKA 0.80–0.92; "
                    "issue #33, not in tests/data) it labels every cell IV-A"},
    },
    "llt": {
        "train_error": {
            "kind": "convention",
            "rule": "placed in a sparse band of the published train errors",
            "data": "the MD-tree paper's 1,690 ResNet-18 / CIFAR-10 configurations measured "
                    "with LLT's code (`dataframe_normal_public.csv`, MIT): 0.7 % have a train "
                    "error in (0.5, 1] %"},
        "mc_tolerance": {
            "kind": "convention",
            "rule": "placed in a sparse band of the published mc",
            "data": "the same 1,690 configurations: 3 % have mc in (−5, −0.5]"},
        "cka": {
            "kind": "convention (a median, not a measured boundary)",
            "rule": "median CKA of the anchor's low-loss (≤ 1 %) connected (mc ≥ −2) "
                    "configurations, to 2 decimals: splits them 50/50 by construction",
            "data": "the 616 such configurations pooled over the MD tree's ten training-data "
                    "fractions: median 0.555 (the MD tree's own starting threshold is 0.5). "
                    "Its 35 full-data ones give 0.67 by the same rule, LLT's own ResNet-18 "
                    "grid 0.68 (issue #33, not in tests/data)"},
    },
}

ANCHORS = {"ptmz": "phase-transition model zoo (ModelZoos/PhaseTransitionModelZoo)",
           "llt": "loss-landscape taxonomy (nsfzyzz/loss_landscape_taxonomy)"}

DEVIATIONS = (
    "Hessian λmax by Lanczos and trace by Hutchinson probes to a standard-error target "
    "(the anchors: PyHessian's power iteration and its stopping rule)",
    "CKA test samples evenly spaced over the test split (the anchors: its first batches)",
    "under `mc_eval_data: augmented` every path point sees one fixed augmented copy of the "
    "training split (PTMZ's loader draws fresh augmentations on every pass)",
    "LLT's mixup CKA batches drawn once per cell and shared by its pairs (LLT draws fresh ones "
    "for every ordered pair)",
    "each pair's curve (shuffles, t draws, training augmentations, LLT's random control point) "
    "and each cell's CKA batches draw from their own streams, derived from `mc_seed`, the cell "
    "and the pair (the anchors: one process seed per run; PTMZ's loader workers draw its "
    "augmentations)",
    "`mc_loss` on the plain loss (the anchors' curve loss adds the L2 term)",
    "the Hessian's samples (train, and test for ptmz's λmax) drawn at random with "
    "`hessian_seed` (the anchors: their loaders' first batches)",
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


def curve_epochs(mc_epochs: int, rule: str, data_fraction: float) -> int:
    """The curve-training epochs of a cell trained on ``data_fraction`` of its training split.

    ``fixed``: ``mc_epochs`` at every fraction (PTMZ trains on full data only). ``per-data-
    fraction``: LLT's ``example_experiment.py`` trains ``int(10 / fraction) × 5`` epochs, so a
    curve on less data takes as many steps as at full data; ``mc_epochs`` is read as the
    full-data count (LLT's 50) and scaled by ``int(10 / fraction) / 10`` in integers, which is
    LLT's number exactly at ``mc_epochs: 50``.
    """
    if rule == "fixed":
        return int(mc_epochs)
    if rule == "per-data-fraction":
        if not 0 < data_fraction <= 1:
            raise ValueError(f"metrics.mc_epochs_rule: data fraction {data_fraction} is not in "
                             "(0, 1]")
        return int(10 / data_fraction) * int(mc_epochs) // 10
    raise ValueError(f"metrics.mc_epochs_rule: unknown rule '{rule}'; known: fixed, "
                     "per-data-fraction")


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
