"""Baselines × tasks × splits → scores (overall and per phase), the result the report writes.

Each baseline's hyperparameters are chosen on the validation rows, then it is refit on train +
validation and scored once on the test rows (:mod:`phasezoo.wsl.fit_steps`); every split is
repeated with ``seeds`` seeds and scored as mean and standard deviation
(:mod:`phasezoo.wsl.scoring`). The tasks and baselines are :mod:`phasezoo.wsl.baselines`; the
splits and row subsets each is scored on, :mod:`phasezoo.wsl.subsets`. This module runs them:
one job per (task, baseline or method), under one progress bar, with the reason each one that
scored nothing was left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import product
from typing import Any, Callable

import numpy as np
import pandas as pd

from phasezoo.splits import Split, ZooSplits, computed_splits
from phasezoo.wsl.baselines import BASELINES, TASKS, Task
from phasezoo.wsl.features import EXTRACTORS
from phasezoo.wsl.fit_steps import (FitPredict, baseline_step, feature_baseline_step,
                                    fit_if_varied, method_step)
from phasezoo.wsl.learning_curve import (CURVE_FRACTIONS, CURVE_TASK, curve_records,
                                         nested_splits, summarize_curve)
from phasezoo.wsl.methods import MethodFactory, MethodUnsupported
from phasezoo.wsl.scoring import bootstrap_std, clip_to_fit_range, scores, summarize
from phasezoo.wsl.subsets import architecture_subsets, split_list
from phasezoo.wsl.table import ZooTable


# Why a split was not scored (:func:`_records`), as the report says it for a baseline or method
# that scored none.
TOO_FEW_CELLS = "too few cells to train, validate and test on"
ONE_TARGET = "one target value (or class) in its training cells"
NO_FEATURE = "no usable feature on the training rows"  # a baseline's fit-predict gave None
NOT_ITS_SPLITS = "the method scores none of these splits or seeds (its `splits`, `seeds`)"


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
    steps = {n: feature_baseline_step(table, task, e, f, features)
             for n, (e, f) in baselines.items()
             if (n == CURVE_BAR or f == "mlp") and n not in skipped}
    steps |= {n: method_step(factory, table, task, features) for n, factory in methods.items()
              if n not in skipped and task.name in getattr(factory, "tasks", (task.name,))}
    steps = {n: partial(fit_if_varied, step, y) for n, step in steps.items()}
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
    subset (:func:`~phasezoo.wsl.subsets.architecture_subsets`)."""
    raw = any(e == "raw_weights" for n, (e, _) in baselines.items() if n not in skipped)
    subsets = ([(label, sub, EXTRACTORS["raw_weights"](sub, ""))
                for label, sub in architecture_subsets(table)] if raw else [])
    jobs = []
    for task, (name, (extractor, family)) in product(tasks, baselines.items()):
        if name in skipped:
            continue
        if extractor == "raw_weights":
            jobs += [_Job(name, task, sub, None if label else splits,
                          partial(baseline_step, x, task.target(sub.meta), family, task.kind),
                          label)
                     for label, sub, x in subsets]
            continue
        jobs.append(_Job(name, task, table, splits,
                         partial(feature_baseline_step, table, task, extractor, family, features)))
    return jobs


def _method_jobs(table: ZooTable, tasks: tuple[Task, ...], methods: dict[str, MethodFactory],
                 splits: ZooSplits, cache: dict[str, np.ndarray]) -> list[_Job]:
    """Every method on every task it scores (its factory's ``tasks``, all when absent).
    ``cache``: the built-in features already computed, by extractor, which methods share."""
    return [_Job(name, task, table, splits, partial(method_step, factory, table, task, cache),
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
