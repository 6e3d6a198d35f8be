"""How a split's predictions become scores: R² and Kendall τ or accuracy and macro-F1, the
bootstrap spread over test cells, regression predictions clipped to the fitted range, and the
per-seed scores summarised as mean ± standard deviation.

Uncertainty: every split is repeated with several seeds (cell shuffles, validation cells,
estimator seeds), so :func:`summarize` reports each score's mean and standard deviation over
seeds, beside :func:`bootstrap_std`, the spread one split's score has from its finite test cells.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import kendalltau


def scores(kind: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R² and Kendall τ (regression); accuracy and macro-F1 (classification)."""
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if kind == "regression":
        if len(y) < 2 or np.ptp(y) == 0:  # one target value: R² and τ are undefined
            return {"r2": math.nan, "kendall_tau": math.nan}
        return {"r2": float(r2_score(y, pred)), "kendall_tau": float(kendalltau(y, pred).statistic)}
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro"))}


BOOTSTRAP_SAMPLES = 100  # resampled test sets per bootstrap spread


def headline(kind: str) -> str:
    """The score a table shows: R² for regression, accuracy for classification."""
    return "r2" if kind == "regression" else "accuracy"


def bootstrap_std(kind: str, y: np.ndarray, pred: np.ndarray, cells: np.ndarray,
                  seed: int) -> float:
    """Standard deviation of the headline score over test sets resampled by cell (with
    replacement): the uncertainty of one split's score from its finite test cells."""
    from sklearn.metrics import accuracy_score, r2_score

    score = r2_score if kind == "regression" else accuracy_score
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(cells == c) for c in np.unique(cells)]
    if len(groups) < 2:
        return math.nan
    vals = []
    for _ in range(BOOTSTRAP_SAMPLES):
        rows = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        # R² of one target value is undefined (as in :func:`scores`): a resample of cells that
        # share it (e.g. all at one learning rate) is skipped, not scored as R² ≈ −10³⁰ from
        # the rounding of its mean.
        if len(rows) > 1 and (kind != "regression" or np.ptp(y[rows]) > 0):
            vals.append(score(y[rows], pred[rows]))
    return float(np.std(vals)) if vals else math.nan


def clip_to_fit_range(kind: str, pred: np.ndarray, fitted: np.ndarray) -> tuple[np.ndarray, int]:
    """Regression predictions clipped to the range of the targets the model was fit on, and how
    many were clipped (classification: unchanged, 0).

    Why: every regression target here is bounded (an accuracy, a gap, log2 of a grid value),
    and a linear model or MLP extrapolating on weights far outside its training rows (a hot
    learning rate's grown weights) predicted values of ±10^19, an R² of −10^19 that says nothing
    about the method but its extrapolation. Applied to every baseline and method alike; the
    record keeps the count (``clipped``).
    """
    if kind != "regression" or not len(fitted):
        return pred, 0
    pred = np.asarray(pred, dtype=np.float64)
    low, high = np.nanmin(fitted), np.nanmax(fitted)
    outside = int(np.sum((pred < low) | (pred > high)))
    return np.clip(pred, low, high), outside


def summarize(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every (task, split, baseline) score."""
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "per_phase"} for r in records])
    if df.empty:
        return []
    metrics = [c for c in ("r2", "kendall_tau", "accuracy", "macro_f1") if c in df]
    out = []
    for (task, split, baseline), g in df.groupby(["task", "split", "baseline"], sort=False):
        entry = {"task": task, "split": split, "baseline": baseline,
                 "n_test": int(g["n_test"].iloc[0]),
                 # the fewest over seeds: a warning about few cells holds for every seed
                 "test_cells": int(g["test_cells"].min()),
                 "train_cells": int(g["train_cells"].min())}
        for m in metrics:
            vals = g[m].dropna()
            if len(vals):
                entry[m] = {"mean": float(vals.mean()),
                            "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan}
        entry["bootstrap_std"] = float(g["bootstrap_std"].mean())
        out.append(entry)
    return out
