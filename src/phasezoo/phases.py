"""Per-cell aggregates of a zoo and each cell's loss-landscape phase (Yang et al. 2021 taxonomy).

The rules, on seed means at the landscape epoch (train error and mc in %):

* high train loss (train_error > ``train_error``):  I if mc < −``mc_tolerance``, else II;
* low train loss: III if mc < −``mc_tolerance``; otherwise (connected) IV-A if CKA < ``cka``,
  else IV-B;
* a cell whose seeds all diverged is ``diverged``.

Defaults: the metric protocol's (``PHASE_THRESHOLDS`` in :mod:`phasezoo.protocols`), read off
that anchor's published metrics on its own scale, because neither anchor's code holds phase
boundaries (PTMZ's README gives the taxonomy as a qualitative table). The MD tree's fitted
thresholds (train error 0.5 %, −10, CKA 0.5) are not phase boundaries: they split another label
(temperature too small or too large) and their −10 is on another connectivity (``mc_peak``,
the worst interior point). Each threshold is a convention placed on an anchor's data, not a
measured boundary (``THRESHOLD_SOURCES``); a config's ``phases`` keys override the protocol's, and
``phases.cka_rule: zoo-median`` takes the CKA split from the zoo's own cells
(:mod:`phasezoo.boundaries`, which also reports each label's sensitivity to the thresholds).
Every label carries a ``margin``: the distance to the nearest threshold that decided it, divided
by that threshold's scale (train_error, mc_tolerance, cka), and ``margin_rule`` names it.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from phasezoo.protocols import PHASE_THRESHOLDS
from phasezoo.task_kinds import CLASSIFICATION, error_percent
from phasezoo.vocabulary import DIVERGED, UNLABELLED, landscape_epoch_of


THRESHOLD_KEYS = ("train_error", "mc_tolerance", "cka")  # the keys of ``phases`` that label
DEFAULT_THRESHOLDS: dict[str, float] = dict(PHASE_THRESHOLDS["ptmz"])  # the default protocol's


def label_cells(cells: pd.DataFrame, **thresholds: float) -> pd.DataFrame:
    """Phase, margin and deciding rule for each row of a per-cell metric table.

    Args:
        cells: one row per cell with ``train_error`` (%) and ``mc`` (train error %); ``cka`` is
            needed only for low-loss connected cells and ``diverged_fraction`` is optional
            (1 → ``diverged``). Other columns (``train_loss``, ``ln_hessian_trace``, ...) are
            carried along unused.
        thresholds: overrides of :data:`DEFAULT_THRESHOLDS` (train_error: %, above = high train
            loss; mc_tolerance: %, mc < −tol = a barrier; cka: seed-pair CKA, below = IV-A).

    Returns:
        A copy of ``cells`` with ``phase``, ``margin`` and ``margin_rule`` columns.

    Raises:
        ValueError: naming a missing column or an unknown threshold.
    """
    unknown = set(thresholds) - set(THRESHOLD_KEYS)
    if unknown:
        raise ValueError(f"unknown phase thresholds {sorted(unknown)}; known: "
                         f"{sorted(THRESHOLD_KEYS)}")
    t = DEFAULT_THRESHOLDS | thresholds
    for col in ("train_error", "mc"):
        if col not in cells:
            raise ValueError(f"label_cells: column '{col}' is required")
    out = cells.copy()
    decided = [_label_row(row, t) for row in out.to_dict("records")]
    out["phase"] = [d[0] for d in decided]
    out["margin"] = [d[1] for d in decided]
    out["margin_rule"] = [d[2] for d in decided]
    return out


def _label_row(row: dict, t: dict[str, float]) -> tuple[str, float, str]:
    """(phase, margin, margin_rule) of one cell under thresholds ``t`` (every THRESHOLD_KEYS)."""
    if row.get("diverged_fraction", 0.0) == 1.0:
        return DIVERGED, float("nan"), ""
    err, mc = row["train_error"], row["mc"]
    if not (np.isfinite(err) and np.isfinite(mc)):
        return UNLABELLED, float("nan"), ""
    tol = t["mc_tolerance"]
    margins = {"train_error": abs(err - t["train_error"]) / t["train_error"],
               "mc_tolerance": abs(mc + tol) / tol}
    if err > t["train_error"]:
        phase = "I" if mc < -tol else "II"
    elif mc < -tol:
        phase = "III"
    else:
        cka = row.get("cka", float("nan"))
        if not np.isfinite(cka):
            raise ValueError(f"label_cells: cell {row.get('cell', '?')} is low-loss and "
                             "connected: column 'cka' is required to tell IV-A from IV-B")
        phase = "IV-A" if cka < t["cka"] else "IV-B"
        margins["cka"] = abs(cka - t["cka"]) / t["cka"]
    rule = min(margins, key=margins.get)
    return phase, float(margins[rule]), rule


def landscape_epoch(metrics: pd.DataFrame, requested: int) -> int:
    """The kept epoch at which cells are compared (``-1`` = the last kept epoch)."""
    return landscape_epoch_of(sorted(int(e) for e in metrics["epoch"].unique()), requested)


def aggregate_cell(metrics: pd.DataFrame, pairs: pd.DataFrame, epoch: int,
                   task: str = CLASSIFICATION.name) -> dict[str, float]:
    """Seed means of one cell at ``epoch``: losses, train error (%; the ``task``'s error, see
    :mod:`phasezoo.tasks`), the natural log of the seed-mean Hessian λmax and trace (as both
    anchors take it: ``np.log(np.mean(...))``), and the pair means of mode connectivity
    (train error %, and loss; ``mc_chord`` and the MD tree's ``mc_peak`` too), linear barrier
    and CKA; the topological profile's minima and total persistence (NaN when it is off); the
    local learning coefficient ``llc`` and the fraction of seeds whose chains did not settle
    (``llc_unsettled``; NaN when ``metrics.llc_steps`` is 0); and how many pairs each mean rests
    on (:func:`pair_counts`)."""
    at = metrics[metrics["epoch"] == epoch]
    live = at[~at["diverged"]]
    return {"train_loss": live["train_loss"].mean(), "test_loss": live["test_loss"].mean(),
            "train_error": error_percent(task, live["train_accuracy"].mean()),
            "test_accuracy": live["test_accuracy"].mean(),
            "ln_hessian_top_eigenvalue": _ln_mean(live, "hessian_top_eigenvalue"),
            "ln_hessian_trace": _ln_mean(live, "hessian_trace"),
            **{c: live[c].mean() if c in live else np.nan
               for c in ("alpha_mean", "farms_alpha_mean", "topo_minima",
                         "topo_total_persistence", "llc", "llc_unsettled")},
            "mc": pairs["mc"].mean(), "mc_loss": pairs["mc_loss"].mean(),
            **{c: pairs[c].mean() if c in pairs else np.nan for c in ("mc_chord", "mc_peak")},
            "linear_barrier": pairs["linear_barrier"].mean(), "cka": pairs["cka"].mean(),
            "diverged_fraction": float(at["diverged"].mean()) if len(at) else np.nan,
            **pair_counts(pairs)}


def pair_counts(pairs: pd.DataFrame) -> dict[str, float]:
    """How many pairs the cell's CKA and mc means rest on, and what they leave out, so a mean
    over few pairs, or one that silently drops collapsed models, shows in the cell table:
    ``cka_pairs`` (finite CKA), ``cka_nan_pairs`` (both members live, CKA NaN: a constant
    output), ``mc_end_ties`` (pairs whose mc sign rounding decided,
    :func:`phasezoo.landscape.connectivity.end_tie`). NaN for a table without the columns
    (one measured before them, or a published zoo's cell means)."""
    if "cka_nan" not in pairs or "mc_end_tie" not in pairs:
        return dict.fromkeys(("cka_pairs", "cka_nan_pairs", "mc_end_ties"), np.nan)
    return {"cka_pairs": float((pairs["cka_nan"] == 0).sum()),
            "cka_nan_pairs": float((pairs["cka_nan"] == 1).sum()),
            "mc_end_ties": float((pairs["mc_end_tie"] == 1).sum())}


def _ln_mean(table: pd.DataFrame, column: str) -> float:
    """Natural log of the seed mean (NaN when the mean is not positive or the column is absent)."""
    mean = table[column].mean() if column in table else np.nan
    return float(np.log(mean)) if mean > 0 else float("nan")
