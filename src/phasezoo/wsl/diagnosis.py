"""Model diagnosis (the MD tree's tasks): from a configuration's metrics, say whether its
temperature is too small or too large, and whether the load (width or data) or the batch size
is the failure source.

Frames use the MD tree's published column names (``train_error`` and ``test_error`` in %,
``mode_connectivity_peak``, ``hessian_t``, ``hessian_e``, ``CKA``, ``bs``, ``width``, ``data``,
``log_data_amount``, ``log_para_amount``, …): its dataframe is accepted as it is, and
:func:`phasezoo.wsl.diagnosis_frame.diagnosis_frame` builds the same columns from a phasezoo
zoo (plus the HT-SR columns ``alpha_mean`` and ``farms_alpha_mean``, which the MD tree does not
use).

Labels come from "room for improvement" (RFI) on the grid, as the MD tree's
``generate_data.py`` defines it: for an operation, the best test score over the cells that
operation reaches with the other axes fixed (the cell itself included) minus the cell's score.
``bs_failure``: ``small`` when raising the temperature (smaller batch, larger learning rate)
helps more than lowering it, ``large`` when less; **the class names the temperature**, so
``large`` means a batch that is too small. ``width_vs_batch`` / ``data_vs_batch``: ``width`` /
``data`` when growing the load helps more than the best temperature change, else ``batch``.
Ties are ``optimal`` and are dropped from fitting and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from phasezoo.wsl import mdtree

TASKS = ("bs_failure", "width_vs_batch", "data_vs_batch")
OPTIMAL = "optimal"
LOAD_OF_TASK = {"width_vs_batch": "width", "data_vs_batch": "data"}
# Temperature axis → which way is hotter (larger noise scale): +1 = larger values.
HOTTER = {"bs": -1, "batch_size": -1, "lr": 1}

# Decision-tree feature sets of the MD tree's baselines (``method/baseline_dt.py`` scripts),
# and the HT-SR sets this project adds. Hyperparameter features leave out the batch size, as
# the paper's baseline does: the question is whether the grid position alone transfers.
HYPER = {"bs_failure": ["log_data_amount", "log_para_amount"],
         "width_vs_batch": ["log_data_amount"], "data_vs_batch": ["log_para_amount"]}
VALIDATION = ["train_error", "train_loss", "test_loss", "test_error"]
METRICS = ["train_error", "mode_connectivity_peak", "CKA", "hessian_t"]
HTSR = ["alpha_mean", "farms_alpha_mean"]
DT_FEATURES = {"hyper+dt": HYPER, "val+dt": VALIDATION, "metrics+dt": METRICS,
               "htsr+dt": ["train_error", *HTSR], "metrics+htsr+dt": METRICS + HTSR}
MD_TREES = {"md_tree": "sweep", "md_tree[exhaustive]": "exhaustive"}
METHODS = (*MD_TREES, "md_tree[cka]", *DT_FEATURES)
DT_DEPTH, DT_SEED = 4, 42  # the reference's DecisionTreeClassifier(max_depth=4, random_state=42)


class DiagnosisUnsupported(ValueError):
    """A method that cannot run on a frame (a column it needs is absent or all NaN)."""


def room_for_improvement(frame: pd.DataFrame, axis: str, direction: int,
                         score: str = "test_acc", within: tuple[str, ...] = ()) -> np.ndarray:
    """Per row: the best ``score`` over the rows that share every column of ``within`` and
    whose ``axis`` value is on the ``direction`` side (+1: ≥, −1: ≤) of the row's, minus the
    row's own score (≥ 0)."""
    out = np.zeros(len(frame))
    keys = list(within) or (lambda _: 0)
    for _, group in frame.groupby(keys, sort=False):
        order = group.sort_values(axis, ascending=direction < 0, kind="stable")
        best = order[score].cummax().to_numpy()
        # equal axis values share the best of them all
        best = pd.Series(best).groupby(order[axis].to_numpy()).transform("max").to_numpy()
        out[frame.index.get_indexer(order.index)] = best - order[score].to_numpy()
    return out


def add_labels(frame: pd.DataFrame, temperature: str = "bs",
               loads: tuple[str, ...] = ("width", "data"), fixed: tuple[str, ...] = (),
               score: str = "test_acc") -> pd.DataFrame:
    """A copy of ``frame`` with ``rfi_*`` columns and the labels of every task its axes allow
    (``bs_failure`` always; ``<load>_vs_batch`` for each load axis in ``loads``).

    Args:
        temperature: the temperature column (``bs``, or ``lr``: hotter = larger).
        loads: the load columns (``width`` and/or ``data``): each gets a task, and each is
            held fixed while the others move.
        fixed: other grid columns, only held fixed (e.g. a PINN's ``beta``, which is the
            problem, not a knob to turn).
        score: higher is better (use a negated error for tasks scored by an error).
    """
    axes = (temperature, *loads, *fixed)
    missing = [c for c in (*axes, score) if c not in frame]
    if missing:
        raise ValueError(f"diagnosis labels: column '{missing[0]}' is missing")
    out = frame.reset_index(drop=True).copy()
    rest = lambda a: tuple(x for x in axes if x != a)  # noqa: E731
    hot = HOTTER[temperature]
    out["rfi_inc_temp"] = room_for_improvement(out, temperature, hot, score, rest(temperature))
    out["rfi_dec_temp"] = room_for_improvement(out, temperature, -hot, score, rest(temperature))
    out["bs_failure"] = _compare(out["rfi_inc_temp"], out["rfi_dec_temp"], "small", "large")
    temp = np.maximum(out["rfi_inc_temp"], out["rfi_dec_temp"])
    for load in loads:
        out[f"rfi_{load}"] = room_for_improvement(out, load, 1, score, rest(load))
        out[f"{load}_vs_batch"] = _compare(out[f"rfi_{load}"], temp, load, "batch")
    return out


def _compare(a: pd.Series, b: pd.Series, above: str, below: str) -> np.ndarray:
    """``above`` where a > b, ``below`` where a < b, ``optimal`` on ties (strict, as the
    reference compares floats)."""
    return np.where(a > b, above, np.where(a < b, below, OPTIMAL)).astype(object)


@dataclass(frozen=True)
class Diagnosis:
    """A fitted diagnosis: ``predict`` names a class per row; ``score`` is its accuracy on the
    rows of a labelled frame whose label is not ``optimal``."""

    task: str
    method: str
    features: tuple[str, ...]
    n_train: int
    thresholds: tuple[float, ...] = ()  # MD trees
    model: Any = None  # decision trees

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The predicted class of every row of ``frame``."""
        _require(frame, self.features, self.method)
        if self.model is not None:
            return self.model.predict(frame[list(self.features)].to_numpy(float)).astype(object)
        return mdtree.predict(_spec(self.task, self.method).root, frame,
                              np.array(self.thresholds))

    def score(self, frame: pd.DataFrame) -> float:
        """Accuracy on the non-optimal rows of ``frame`` (NaN when there are none)."""
        rows = labelled(frame, self.task)
        return float(np.mean(self.predict(rows) == rows[self.task].to_numpy())) if len(rows) \
            else float("nan")


def labelled(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    """The rows of ``frame`` that a ``task`` fits and scores: its label present, not optimal."""
    if task not in TASKS:
        raise ValueError(f"diagnosis task '{task}' is not one of {list(TASKS)}")
    if task not in frame:
        raise DiagnosisUnsupported(f"the frame has no '{task}' label (its grid lacks that axis)")
    return frame[frame[task].astype(str) != OPTIMAL].reset_index(drop=True)


def features_of(task: str, method: str) -> list[str]:
    """The columns ``method`` reads for ``task``."""
    if method not in METHODS:
        raise ValueError(f"diagnosis method '{method}' is not one of {list(METHODS)}")
    if method in DT_FEATURES:
        f = DT_FEATURES[method]
        return list(f[task] if isinstance(f, dict) else f)
    return _spec(task, method).features()


def _spec(task: str, method: str) -> mdtree.TreeSpec:
    if method == "md_tree[cka]":
        if task != "bs_failure":
            raise DiagnosisUnsupported("md_tree[cka] diagnoses bs_failure only")
        return mdtree.TEMP_CKA
    return mdtree.TREES[task]


def _require(frame: pd.DataFrame, columns, method: str) -> None:
    for c in columns:
        if c not in frame or not np.isfinite(frame[c].to_numpy(float)).any():
            raise DiagnosisUnsupported(f"{method} needs column '{c}', which the frame "
                                       f"{'lacks' if c not in frame else 'has only as NaN'}")


def fit_diagnosis(frame: pd.DataFrame, task: str = "bs_failure",
                  method: str = "md_tree") -> Diagnosis:
    """Fit ``method`` (one of :data:`METHODS`) to the ``task`` labels of ``frame``.

    ``md_tree`` is the paper's tree fitted as its code fits it; ``md_tree[exhaustive]`` the same
    shape with every threshold searched exhaustively; ``md_tree[cka]`` its CKA variant; the
    ``*+dt`` methods are scikit-learn decision trees of depth 4 (random_state 42) on the feature
    sets of :data:`DT_FEATURES` (NaN features are taken as missing).

    Raises:
        ValueError: an unknown task or method, or no labelled row to fit.
        DiagnosisUnsupported: a column the method needs is absent.
    """
    features = features_of(task, method)
    rows = labelled(frame, task)
    if not len(rows):
        raise ValueError(f"fit_diagnosis: no row with a {task} label other than optimal")
    _require(rows, features, method)
    y = rows[task].astype(str).to_numpy()
    if method in DT_FEATURES:
        from sklearn.tree import DecisionTreeClassifier

        model = DecisionTreeClassifier(max_depth=DT_DEPTH, random_state=DT_SEED)
        model.fit(rows[features].to_numpy(float), y)
        return Diagnosis(task, method, tuple(features), len(rows), model=model)
    search = MD_TREES.get(method, "sweep")
    t = mdtree.fit_thresholds(_spec(task, method), rows, y, search)
    return Diagnosis(task, method, tuple(features), len(rows), thresholds=tuple(map(float, t)))
