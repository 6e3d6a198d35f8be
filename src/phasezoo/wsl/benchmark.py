"""Baselines × tasks × splits → scores (overall and per phase), as JSON and a markdown table.

Estimators are scikit-learn's: ``HistGradientBoosting*`` (takes NaN features as missing) and
ridge regression / ridge classification on standardized features for the linear probes. Each baseline's
hyperparameters are chosen on the validation rows, then it is refit on train + validation and
scored once on the test rows. Uncertainty: every split is repeated with ``seeds`` seeds (cell
shuffles, validation cells, estimator seeds); scores are reported as mean and standard deviation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import product
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.exceptions import ConvergenceWarning

from phasezoo.wsl.features import EXTRACTORS
from phasezoo.wsl.methods import MethodFactory, MethodUnsupported, Rows
from phasezoo.wsl.nfn import NFNMethod
from phasezoo.splits import Split, ZooSplits, computed_splits, random_split, zoo_transfer
from phasezoo.wsl.table import ZooTable


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
# every baseline's settings), on the final checkpoint of every run (:func:`final_checkpoints`).
# Learned methods the CLI runs beside the baselines (phasezoo.wsl.methods protocol).
LEARNED = {"nfn": NFNMethod}
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
        cls = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
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


def scores(kind: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R² and Kendall τ (regression); accuracy and macro-F1 (classification)."""
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if kind == "regression":
        if len(y) < 2 or np.ptp(y) == 0:  # one target value: R² and τ are undefined
            return {"r2": math.nan, "kendall_tau": math.nan}
        return {"r2": float(r2_score(y, pred)), "kendall_tau": float(kendalltau(y, pred).statistic)}
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro"))}


BOOTSTRAP_SAMPLES = 100


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
        if len(rows) > 1:
            vals.append(score(y[rows], pred[rows]))
    return float(np.std(vals)) if vals else math.nan


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


def splits_for(splits: ZooSplits, meta: pd.DataFrame, task: Task, seed: int) -> list[Split]:
    """The splits a task is scored on (leave-phase-out is skipped for the phase task itself)."""
    out = splits.for_seed(meta, seed)
    return [s for s in out if not (task.name == "phase" and s.name.startswith("leave_phase_out"))]


def _subtable(table: ZooTable, rows: np.ndarray) -> ZooTable:
    """The table's ``rows``, every column and the row reader following them."""
    read = table.reader
    return ZooTable(table.meta.iloc[rows].reset_index(drop=True),
                    None if table.weights is None else [table.weights[i] for i in rows],
                    [table.layouts[i] for i in rows],
                    {k: [v[i] for i in rows] for k, v in table.layer_columns.items()},
                    {p: v[rows] for p, v in table.statistics.items()}, table.note,
                    table.statistics_error,
                    None if read is None else (lambda i: read(int(rows[i]))))


def final_checkpoints(table: ZooTable) -> ZooTable:
    """The last kept checkpoint of every run (model), as Unterthiner et al. (2020) use."""
    meta = table.meta
    last = meta.groupby("model_id")["epoch"].transform("max").to_numpy()
    return _subtable(table, np.flatnonzero(meta["epoch"].to_numpy() == last))


def architecture_subsets(table: ZooTable) -> list[tuple[str, ZooTable]]:
    """The whole table if every row has one weight length, else one sub-table per length (a
    fixed-architecture subset, labelled by its load value) with at least 5 cells."""
    lengths = np.array([len(w) for w in table.weights])
    if len(set(lengths)) == 1:
        return [("", table)]
    out = []
    for n in sorted(set(lengths)):
        rows = np.flatnonzero(lengths == n)
        sub = _subtable(table, rows)
        if sub.meta["cell"].nunique() >= 5:
            load = sub.meta["load_value"].iloc[0]
            out.append((f"[{sub.meta['load_name'].iloc[0]}={load:g}]", sub))
    return out


FitPredict = Callable[[Split, int], "np.ndarray | None"]


def _records(table: ZooTable, task: Task, name: str, fit_predict: FitPredict, seeds: int,
             zoo_splits: ZooSplits | None, label: str = "",
             train_zoo: str | None = None) -> list[dict]:
    """Scores of one baseline or method on one task, every split and seed (``zoo_splits``
    None: a fixed-architecture subset, scored on its own random split). ``fit_predict(split,
    seed)`` returns the test rows' predictions, or None when it has nothing to fit on."""
    meta, y, out = table.meta, task.target(table.meta), []
    for seed in range(seeds):
        if train_zoo is not None:
            splits = [zoo_transfer(meta, train_zoo, seed)]
        elif zoo_splits is None:
            splits = [random_split(meta, seed)]
        else:
            splits = splits_for(zoo_splits, meta, task, seed)
        for split in splits:
            if min(len(split.train), len(split.val), len(split.test)) == 0:
                continue  # too few cells for this split (e.g. a one-cell zoo)
            if len(np.unique(y[split.train])) < 2:
                continue  # nothing to learn: one target value (or class) in training
            pred = fit_predict(split, seed)
            if pred is None:
                continue  # no usable feature on this split's training rows
            out.append(_record(task, name, split, seed, label, meta, y, np.asarray(pred)))
    return out


def _record(task: Task, name: str, split: Split, seed: int, label: str, meta: pd.DataFrame,
            y: np.ndarray, pred: np.ndarray) -> dict:
    """One scored split: overall, per phase, and the bootstrap spread over test cells."""
    if len(pred) != len(split.test):
        raise ValueError(f"{name}: {len(pred)} predictions for {len(split.test)} test rows")
    phases = meta["phase"].to_numpy()[split.test]
    per_phase = {p: scores(task.kind, y[split.test][phases == p], pred[phases == p])
                 for p in np.unique(phases)}
    cells = meta["cell"].to_numpy()[split.test]
    return {"task": task.name, "split": split.name + label, "baseline": name, "seed": seed,
            "n_test": int(len(split.test)), **scores(task.kind, y[split.test], pred),
            "bootstrap_std": bootstrap_std(task.kind, y[split.test], pred, cells, seed),
            "per_phase": per_phase}


def _baseline(x: np.ndarray, y: np.ndarray, family: str, kind: str) -> FitPredict:
    return lambda split, seed: fit_select_score(x, y, split, family, kind, seed)


def _method(factory: MethodFactory, table: ZooTable, task: Task,
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


def run_benchmark(table: ZooTable, seeds: int = 3, baselines: dict = BASELINES,
                  tasks: tuple[Task, ...] = TASKS, train_zoo: str | None = None,
                  splits: ZooSplits | None = None,
                  methods: dict[str, MethodFactory] | None = None) -> dict[str, Any]:
    """Every baseline on every task and split; per-seed scores summarised as mean ± std.

    ``methods``: user or learned methods (:mod:`phasezoo.wsl.methods`) by name, scored like
    the baselines; one that raises MethodUnsupported is listed as skipped with its reason.
    ``splits``: the zoo's shipped splits (:func:`phasezoo.wsl.table.zoo_splits_of`); by default
    computed from the table's cells the same way.

    ``raw+linear`` runs on each fixed-architecture subset (random split only: one width's
    cells are too few to hold out a phase or a scale). With ``train_zoo`` (a table of several
    zoos, :func:`~phasezoo.wsl.table.concat`) the only split is zoo transfer: fit on that zoo,
    test on the others.
    """
    splits = splits or computed_splits(table.meta)
    records, skipped = [], {}
    features: dict[str, np.ndarray] = {}
    for name, (extractor, _) in baselines.items():
        if extractor in ("hyperparameters", "raw_weights"):
            continue
        try:
            features[extractor] = EXTRACTORS[extractor](table, "")
        except ValueError as err:
            skipped[name] = str(err)
    raw = [name for name, (e, _) in baselines.items() if e == "raw_weights"]
    if raw and table.weights is None:  # a streamed zoo over the raw budget
        skipped |= dict.fromkeys(raw, table.note)
    subsets = ([(label, sub, EXTRACTORS["raw_weights"](sub, ""))
                for label, sub in architecture_subsets(table)]
               if raw and table.weights is not None else [])
    for task, (name, (extractor, family)) in product(tasks, baselines.items()):
        if name in skipped:
            continue
        if extractor == "raw_weights":
            for label, sub, x in subsets:
                records += _records(sub, task, name, _baseline(x, task.target(sub.meta), family,
                                                               task.kind),
                                    seeds, None if label else splits, label, train_zoo=train_zoo)
            continue
        x = (EXTRACTORS[extractor](table, task.name) if extractor == "hyperparameters"
             else features[extractor])
        records += _records(table, task, name, _baseline(x, task.target(table.meta), family,
                                                         task.kind),
                            seeds, splits, train_zoo=train_zoo)
    records += _method_records(table, tasks, methods or {}, seeds, splits, train_zoo, skipped,
                               features)
    return {"zoo": sorted(table.meta["zoo"].unique()), "n_checkpoints": len(table),
            "seeds": seeds, "splits": f"zoo transfer from {train_zoo}" if train_zoo
            else splits.source, "skipped_baselines": skipped,
            "summary": summarize(records), "runs": records}


def _method_records(table: ZooTable, tasks: tuple[Task, ...], methods: dict[str, MethodFactory],
                    seeds: int, splits: ZooSplits, train_zoo: str | None,
                    skipped: dict[str, str], cache: dict[str, np.ndarray]) -> list[dict]:
    """Every method on every task and split; a method that refuses the zoo is skipped.
    ``cache``: the built-in features already computed, by extractor, which methods share."""
    out = []
    for name, factory in methods.items():
        try:
            for task in tasks:
                if task.name not in getattr(factory, "tasks", (task.name,)):
                    continue  # the method scores only some tasks
                out += _records(table, task, name, _method(factory, table, task, cache), seeds,
                                splits, train_zoo=train_zoo)
        except MethodUnsupported as err:
            skipped[name] = str(err)
            out = [r for r in out if r["baseline"] != name]
    return out


def summarize(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every (task, split, baseline) score."""
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "per_phase"} for r in records])
    if df.empty:
        return []
    metrics = [c for c in ("r2", "kendall_tau", "accuracy", "macro_f1") if c in df]
    out = []
    for (task, split, baseline), g in df.groupby(["task", "split", "baseline"], sort=False):
        entry = {"task": task, "split": split, "baseline": baseline, "n_test": int(g["n_test"].iloc[0])}
        for m in metrics:
            vals = g[m].dropna()
            if len(vals):
                entry[m] = {"mean": float(vals.mean()),
                            "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan}
        entry["bootstrap_std"] = float(g["bootstrap_std"].mean())
        out.append(entry)
    return out


# The report (markdown table, figure, files), re-exported where callers have always found it.
from phasezoo.wsl.benchmark_report import markdown, plot, write_report  # noqa: E402,F401
