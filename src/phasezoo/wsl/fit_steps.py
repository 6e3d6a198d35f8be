"""The fit-predict steps a benchmark job runs on each split: a baseline's grid search (choose
the grid point on the validation rows, refit on train + validation, predict the test rows once)
and a method's fit, both as a :data:`FitPredict` ``(split, seed) → test predictions or None``.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from phasezoo.splits import Split
from phasezoo.wsl.baselines import GRIDS, Task, estimator
from phasezoo.wsl.features import EXTRACTORS
from phasezoo.wsl.methods import MethodFactory, Rows
from phasezoo.wsl.scoring import headline, scores
from phasezoo.wsl.table import ZooTable


# (split, seed) → the test rows' predictions, or None when there is nothing to fit on
FitPredict = Callable[[Split, int], "np.ndarray | None"]


def fit_select_score(x: np.ndarray, y: np.ndarray, split: Split, family: str, kind: str,
                     seed: int) -> np.ndarray | None:
    """Choose the grid point with the best validation score, refit on train + val, predict test.

    Feature columns that are NaN on every training row (e.g. HT-SR α of layers too small to
    analyse) are dropped; None if no feature is left.
    """
    with warnings.catch_warnings():  # an MLP stopped at max_iter is still scored as it is
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        return _fit_select_score(x, y, split, family, kind, seed)


def _fit_select_score(x: np.ndarray, y: np.ndarray, split: Split, family: str, kind: str,
                      seed: int) -> np.ndarray | None:
    usable = ~np.isnan(x[split.train]).all(axis=0)
    if not usable.any():
        return None
    x = x[:, usable]
    key = headline(kind)
    best, best_params = -math.inf, GRIDS[family][0]
    for params in GRIDS[family]:
        model = estimator(family, kind, params, seed).fit(x[split.train], y[split.train])
        s = scores(kind, y[split.val], model.predict(x[split.val]))[key]
        if np.isfinite(s) and s > best:
            best, best_params = s, params
    fit_rows = np.concatenate([split.train, split.val])
    return estimator(family, kind, best_params, seed).fit(x[fit_rows], y[fit_rows]).predict(
        x[split.test])


def baseline_step(x: np.ndarray, y: np.ndarray, family: str, kind: str) -> FitPredict:
    """A baseline on features ``x`` as a fit-predict step (:func:`fit_select_score`)."""
    return lambda split, seed: fit_select_score(x, y, split, family, kind, seed)


def feature_baseline_step(table: ZooTable, task: Task, extractor: str, family: str,
                          features: dict[str, np.ndarray]) -> FitPredict:
    """A baseline on the zoo's shared features, or on the hyperparameters less the task's own
    grid column (computed per task)."""
    x = (EXTRACTORS[extractor](table, task.name) if extractor == "hyperparameters"
         else features[extractor])
    return baseline_step(x, task.target(table.meta), family, task.kind)


def method_step(factory: MethodFactory, table: ZooTable, task: Task,
                cache: dict[str, np.ndarray]) -> FitPredict:
    """A user's (or a built-in learned) method as a fit-predict step: a fresh instance per
    split, fit on the training rows with the validation rows for its own model selection."""
    y = task.target(table.meta)
    hidden = (task.name,) if task.name in ("temperature_value", "load_value") else ()

    def rows(index: np.ndarray) -> Rows:
        return Rows(table, index, hidden, cache)

    allowed = getattr(factory, "splits", None)  # a method may score only some splits
    max_seeds = getattr(factory, "seeds", None)  # ... and seeds

    def fit_predict(split: Split, seed: int) -> np.ndarray | None:
        if ((allowed is not None and not split.name.startswith(tuple(allowed)))
                or (max_seeds is not None and seed >= max_seeds)):
            return None
        method = factory()
        method.fit(rows(split.train), y[split.train], rows(split.val), y[split.val], task.kind,
                   seed)
        return method.predict(rows(split.test))
    return fit_predict


def fit_if_varied(step: FitPredict, y: np.ndarray, split: Split, seed: int) -> np.ndarray | None:
    """``step``'s predictions, or None when the training rows hold one target value."""
    return None if len(np.unique(y[split.train])) < 2 else step(split, seed)
