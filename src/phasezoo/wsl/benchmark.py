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
from functools import partial
from itertools import product
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.exceptions import ConvergenceWarning

from phasezoo.wsl.features import EXTRACTORS
from phasezoo.wsl.learning_curve import (CURVE_FRACTIONS, CURVE_TASK, curve_records,
                                         nested_splits, summarize_curve)
from phasezoo.wsl.methods import MethodFactory, MethodUnsupported, Rows
from phasezoo.wsl.neuron_sets import NeuronSetMethod
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
        # R² of one target value is undefined (as in :func:`scores`): a resample of cells that
        # share it (e.g. all at one learning rate) is skipped, not scored as R² ≈ −10³⁰ from
        # the rounding of its mean.
        if len(rows) > 1 and (kind != "regression" or np.ptp(y[rows]) > 0):
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
# Why a split was not scored (:func:`_records`), as the report says it for a baseline or method
# that scored none.
TOO_FEW_CELLS = "too few cells to train, validate and test on"
ONE_TARGET = "one target value (or class) in its training cells"
NO_FEATURE = "no usable feature on the training rows"  # a baseline's fit-predict gave None
NOT_ITS_SPLITS = "the method scores none of these splits or seeds (its `splits`, `seeds`)"


def split_list(meta: pd.DataFrame, task: Task, seed: int, zoo_splits: ZooSplits | None,
               train_zoo: str | None) -> list[Split]:
    """The splits one seed scores: zoo transfer with ``train_zoo``, one random split for a
    fixed-architecture subset (``zoo_splits`` None), else the zoo's splits for the task."""
    if train_zoo is not None:
        return [zoo_transfer(meta, train_zoo, seed)]
    if zoo_splits is None:
        return [random_split(meta, seed)]
    return splits_for(zoo_splits, meta, task, seed)


def _records(table: ZooTable, task: Task, name: str, fit_predict: FitPredict, seeds: int,
             zoo_splits: ZooSplits | None, label: str = "", train_zoo: str | None = None,
             tick: Callable[[], object] = lambda: None, misses: list[str] | None = None,
             unfit: str = NO_FEATURE) -> list[dict]:
    """Scores of one baseline or method on one task, every split and seed (``zoo_splits``
    None: a fixed-architecture subset, scored on its own random split). ``fit_predict(split,
    seed)`` returns the test rows' predictions, or None when it has nothing to fit on.
    ``tick()`` runs after every split (the progress bar); each split not scored adds its
    reason to ``misses`` (``unfit`` where ``fit_predict`` gave None)."""
    meta, y, out = table.meta, task.target(table.meta), []
    misses = [] if misses is None else misses
    for seed in range(seeds):
        for split in split_list(meta, task, seed, zoo_splits, train_zoo):
            if min(len(split.train), len(split.val), len(split.test)) == 0:
                misses.append(TOO_FEW_CELLS)  # e.g. a one-cell zoo
            elif len(np.unique(y[split.train])) < 2:
                misses.append(ONE_TARGET)  # nothing to learn
            elif (pred := fit_predict(split, seed)) is None:
                misses.append(unfit)
            else:
                out.append(_record(task, name, split, seed, label, meta, y, np.asarray(pred)))
            tick()
    return out


def _record(task: Task, name: str, split: Split, seed: int, label: str, meta: pd.DataFrame,
            y: np.ndarray, pred: np.ndarray) -> dict:
    """One scored split: overall, per phase, and the bootstrap spread over test cells."""
    if len(pred) != len(split.test):
        raise ValueError(f"{name}: {len(pred)} predictions for {len(split.test)} test rows")
    pred, clipped = clip_to_fit_range(task.kind, pred, y[np.concatenate([split.train, split.val])])
    phases = meta["phase"].to_numpy()[split.test]
    per_phase = {p: scores(task.kind, y[split.test][phases == p], pred[phases == p])
                 for p in np.unique(phases)}
    cells = meta["cell"].to_numpy()[split.test]
    fit_cells = meta["cell"].to_numpy()[np.concatenate([split.train, split.val])]
    return {"task": task.name, "split": split.name + label, "baseline": name, "seed": seed,
            "n_test": int(len(split.test)), "test_cells": int(len(np.unique(cells))),
            "train_cells": int(len(np.unique(fit_cells))), "clipped": clipped,
            **scores(task.kind, y[split.test], pred),
            "bootstrap_std": bootstrap_std(task.kind, y[split.test], pred, cells, seed),
            "per_phase": per_phase}


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
                  methods: dict[str, MethodFactory] | None = None,
                  progress: bool = False, curve: bool = False) -> dict[str, Any]:
    """Every baseline on every task and split; per-seed scores summarised as mean ± std.

    ``methods``: user or learned methods (:mod:`phasezoo.wsl.methods`) by name, scored like
    the baselines; one that raises MethodUnsupported is listed as skipped with its reason, as
    is every baseline or method that scored no split (with why: too few cells, ...).
    ``splits``: the zoo's shipped splits (:func:`phasezoo.wsl.table.zoo_splits_of`); by default
    computed from the table's cells the same way. ``progress``: a bar over every (task,
    baseline or method, split, seed) fit. ``curve``: add the learned baselines' learning curve
    (:func:`learning_curve`) under ``learning_curve``.

    ``raw+linear`` runs on each fixed-architecture subset (random split only: one width's
    cells are too few to hold out a phase or a scale). With ``train_zoo`` (a table of several
    zoos, :func:`~phasezoo.wsl.table.concat`) the only split is zoo transfer: fit on that zoo,
    test on the others.
    """
    splits = splits or computed_splits(table.meta)
    skipped: dict[str, str] = {}
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
    jobs = (_baseline_jobs(table, tasks, baselines, splits, features, skipped)
            + _method_jobs(table, tasks, methods or {}, splits, features))
    records = _run_jobs(jobs, seeds, train_zoo, skipped, progress)
    result = {"zoo": sorted(table.meta["zoo"].unique()), "n_checkpoints": len(table),
              "seeds": seeds, "splits": f"zoo transfer from {train_zoo}" if train_zoo
              else splits.source, "skipped_baselines": skipped,
              "summary": summarize(records), "runs": records}
    if curve and train_zoo is None:
        result["learning_curve"] = learning_curve(table, splits, seeds, baselines, methods or {},
                                                  features, skipped, progress)
    return result


CURVE_BAR = "hparams+gbm"  # drawn beside the learned baselines: the bar they must beat


def learning_curve(table: ZooTable, splits: ZooSplits, seeds: int, baselines: dict,
                   methods: dict[str, MethodFactory], features: dict[str, np.ndarray],
                   skipped: dict[str, str], progress: bool = False) -> dict[str, Any]:
    """R² on :data:`CURVE_TASK` against the number of training cells (random split, nested
    subsets of its training cells, :mod:`phasezoo.wsl.learning_curve`) for the learned ones:
    the neural-network baselines (family ``mlp``) and every method, with the hyperparameter
    bar beside them. Baselines and methods in ``skipped`` are left out."""
    from tqdm.auto import tqdm

    task = next(t for t in TASKS if t.name == CURVE_TASK)
    meta, y = table.meta, task.target(table.meta)
    steps = {n: _feature_baseline(table, task, e, f, features) for n, (e, f) in baselines.items()
             if (n == CURVE_BAR or f == "mlp") and n not in skipped}
    steps |= {n: _method(factory, table, task, features) for n, factory in methods.items()
              if n not in skipped and task.name in getattr(factory, "tasks", (task.name,))}
    steps = {n: partial(_fit_if_varied, step, y) for n, step in steps.items()}
    randoms = {seed: s for seed in range(seeds) for s in splits.for_seed(meta, seed)
               if s.name == "random"}
    total = sum(len(nested_splits(meta, s, seed)) for seed, s in randoms.items()) * len(steps)
    with tqdm(total=total, desc="learning curve", unit="fit", disable=not progress) as bar:
        runs = curve_records(meta, randoms, steps, lambda split, seed, pred: _record(
            task, "", split, seed, "", meta, y, pred), bar.update)
    return {"task": task.name, "split": "random", "fractions": list(CURVE_FRACTIONS),
            "points": summarize_curve(runs),
            "runs": [{k: r[k] for k in ("baseline", "seed", "train_cells", "r2",
                                        "bootstrap_std")} for r in runs]}


def _fit_if_varied(step: FitPredict, y: np.ndarray, split: Split, seed: int) -> np.ndarray | None:
    """``step``'s predictions, or None when the training rows hold one target value."""
    return None if len(np.unique(y[split.train])) < 2 else step(split, seed)


@dataclass(frozen=True)
class _Job:
    """One baseline or method on one task: its table (a fixed-architecture subset for
    raw+linear, ``label`` naming it), its splits (None: a random split), and its fit-predict
    step, built when the job runs (a task's own features are computed then)."""

    name: str
    task: Task
    table: ZooTable
    splits: ZooSplits | None
    make: Callable[[], FitPredict]
    label: str = ""
    unfit: str = NO_FEATURE  # why its fit-predict step gave None


def _baseline_jobs(table: ZooTable, tasks: tuple[Task, ...], baselines: dict, splits: ZooSplits,
                   features: dict[str, np.ndarray], skipped: dict[str, str]) -> list[_Job]:
    """Every (task, baseline) not skipped, task by task; raw+linear once per fixed-architecture
    subset (:func:`architecture_subsets`)."""
    raw = any(e == "raw_weights" for n, (e, _) in baselines.items() if n not in skipped)
    subsets = ([(label, sub, EXTRACTORS["raw_weights"](sub, ""))
                for label, sub in architecture_subsets(table)] if raw else [])
    jobs = []
    for task, (name, (extractor, family)) in product(tasks, baselines.items()):
        if name in skipped:
            continue
        if extractor == "raw_weights":
            jobs += [_Job(name, task, sub, None if label else splits,
                          partial(_baseline, x, task.target(sub.meta), family, task.kind), label)
                     for label, sub, x in subsets]
            continue
        jobs.append(_Job(name, task, table, splits,
                         partial(_feature_baseline, table, task, extractor, family, features)))
    return jobs


def _feature_baseline(table: ZooTable, task: Task, extractor: str, family: str,
                      features: dict[str, np.ndarray]) -> FitPredict:
    """A baseline on the zoo's shared features, or on the hyperparameters less the task's own
    grid column (computed per task)."""
    x = (EXTRACTORS[extractor](table, task.name) if extractor == "hyperparameters"
         else features[extractor])
    return _baseline(x, task.target(table.meta), family, task.kind)


def _method_jobs(table: ZooTable, tasks: tuple[Task, ...], methods: dict[str, MethodFactory],
                 splits: ZooSplits, cache: dict[str, np.ndarray]) -> list[_Job]:
    """Every method on every task it scores (its factory's ``tasks``, all when absent).
    ``cache``: the built-in features already computed, by extractor, which methods share."""
    return [_Job(name, task, table, splits, partial(_method, factory, table, task, cache),
                 unfit=NOT_ITS_SPLITS)
            for name, factory in methods.items() for task in tasks
            if task.name in getattr(factory, "tasks", (task.name,))]


def _run_jobs(jobs: list[_Job], seeds: int, train_zoo: str | None, skipped: dict[str, str],
              progress: bool) -> list[dict]:
    """The records of every job, under one progress bar over all their (split, seed) fits.

    A method that raises MethodUnsupported is added to ``skipped`` with its reason and its
    records dropped; so is any job's name that scored no split, with the commonest reason.
    """
    from collections import Counter

    from tqdm.auto import tqdm

    units = [sum(len(split_list(j.table.meta, j.task, s, j.splits, train_zoo))
                 for s in range(seeds)) for j in jobs]
    records: list[dict] = []
    misses: dict[str, list[str]] = {}
    with tqdm(total=sum(units), desc="benchmark", unit="fit", disable=not progress) as bar:
        for job, n in zip(jobs, units, strict=True):
            start = bar.n
            if job.name not in skipped:
                bar.set_postfix_str(f"{job.task.name} {job.name}{job.label}", refresh=False)
                try:
                    records += _records(job.table, job.task, job.name, job.make(), seeds,
                                        job.splits, job.label, train_zoo, bar.update,
                                        misses.setdefault(job.name, []), job.unfit)
                except MethodUnsupported as err:
                    skipped[job.name] = str(err)
                    records = [r for r in records if r["baseline"] != job.name]
            bar.update(n - (bar.n - start))  # what was not run counts as done
    scored = {r["baseline"] for r in records}
    for name, why in misses.items():
        if name not in scored and name not in skipped:
            skipped[name] = ("no split was scored: " + Counter(why).most_common(1)[0][0]
                             if why else "no split to score")
    return records


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

