"""What the benchmark predicts and with what: its tasks, its baselines (a feature extractor and
an estimator family each), the families' hyperparameter grids and estimators, and the learned
methods the CLI runs beside them.

Estimators are scikit-learn's: ``HistGradientBoosting*`` (takes NaN features as missing) and
ridge regression / ridge classification on standardized features for the linear probes; the
``mlp`` family is StatNN's network on per-layer statistics. How a baseline is fit and its grid
point chosen is :mod:`phasezoo.wsl.fit_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from phasezoo.wsl.neuron_sets import NeuronSetMethod
from phasezoo.wsl.nfn import NFNMethod


@dataclass(frozen=True)
class Task:
    """What to predict: a target column (or a function of the metadata) and its kind."""

    name: str
    kind: str  # "regression" or "classification"

    def target(self, meta: pd.DataFrame) -> np.ndarray:
        if self.name == "generalization_gap":
            return (meta["train_accuracy"] - meta["test_accuracy"]).to_numpy(float)
        if self.name in ("temperature_value", "load_value"):
            return np.log2(meta[self.name].to_numpy(float))
        if self.kind == "classification":
            return meta[self.name].astype(str).to_numpy()
        return meta[self.name].to_numpy(float)


TASKS = (Task("test_accuracy", "regression"), Task("generalization_gap", "regression"),
         Task("phase", "classification"), Task("temperature_value", "regression"),
         Task("load_value", "regression"))
# baseline name → (feature extractor, estimator family)
BASELINES = {"hparams+gbm": ("hyperparameters", "gbm"),
             "quintiles+linear": ("layer_quintiles", "linear"),
             "stats+gbm": ("layer_statistics", "gbm"),
             "htsr+gbm": ("htsr", "gbm"),
             "raw+linear": ("raw_weights", "linear"),
             # StatNN (Unterthiner et al. 2020): a neural network on per-layer statistics
             "stats+mlp": ("layer_statistics", "mlp")}
GRIDS = {"gbm": [{"learning_rate": lr, "max_leaf_nodes": m} for lr, m in product((0.05, 0.1),
                                                                                 (7, 31))],
         "linear": [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
         "mlp": [{"alpha": a} for a in (0.1, 10.0)],
         "gbm-large": [{"learning_rate": lr, "max_iter": n} for lr, n in product(
             (0.01, 0.05), (500, 2000))]}
# Unterthiner et al. (2020)'s configuration (``phasezoo benchmark --unterthiner``): their
# statistics and a larger boosted model (500 or 2,000 trees, chosen on the validation cells like
# every baseline's settings), on the final checkpoint of every run
# (:func:`phasezoo.wsl.subsets.final_checkpoints`).
# Learned methods the CLI runs beside the baselines (phasezoo.wsl.methods protocol): nfn on
# chains of Linear/Conv2d layers, neuron_sets on every architecture.
LEARNED = {"nfn": NFNMethod, "neuron_sets": NeuronSetMethod}
UNTERTHINER = {"stats+gbm[unterthiner]": ("unterthiner_statistics", "gbm-large")}


def estimator(family: str, kind: str, params: dict, seed: int) -> Any:
    """A fresh scikit-learn estimator of ``family`` for a task ``kind``."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge, RidgeClassifier
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if family in ("gbm", "gbm-large"):
        cls = (HistGradientBoostingRegressor if kind == "regression"
               else HistGradientBoostingClassifier)
        if family == "gbm-large":  # no internal early stopping: its hold-out fails on few rows
            return cls(early_stopping=False, random_state=seed, **params)
        return cls(max_iter=100, random_state=seed, **params)
    if family == "mlp":  # one hidden layer of 32; L-BFGS, the solver for a few hundred rows
        cls = MLPRegressor if kind == "regression" else MLPClassifier
        net = cls(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=500, random_state=seed,
                  **params)
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                             StandardScaler(), net)
    # Ridge for both kinds: closed form, so a probe on 100k raw weights takes a second (logistic
    # regression took 37 s per fit there).
    linear = (Ridge(alpha=1.0 / params["C"]) if kind == "regression"
              else RidgeClassifier(alpha=1.0 / params["C"]))
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         StandardScaler(), linear)
