"""Downstream studies by phase: does a cell's phase predict how well weight averaging and
magnitude pruning work on its models?

Per cell, at the zoo's last kept epoch: the test accuracy of the seeds' average (naive, and
after aligning every seed's hidden units to the first seed's by weight matching) against the
mean accuracy of the seeds themselves, and the accuracy left after magnitude pruning at a range
of sparsities, with three allocations of the sparsity over layers: global (one threshold for
all layers), uniform (every layer pruned to the sparsity) and AlphaPruning's (from each layer's
HT-SR α, :mod:`phasezoo.wsl.alphaprune`). The per-cell numbers are summarised per phase, and a
Kruskal–Wallis test across phases says whether the phase separates them.

A study that cannot apply to a cell (AlphaPruning's allocation with one prunable layer,
TempBalance with fewer than two layers to balance, ...) is not run on it, and the report names
each study that applies to no cell with its reason (:func:`not_applicable`) instead of a table
of zeros.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from phasezoo.evaluation import evaluate
from phasezoo.recipe import Recipe
from phasezoo.rows import cell_hparams, zoo_cell_split
from phasezoo.task_kinds import score_sign, task_kind
from phasezoo.tasks import Task
from phasezoo.weights import build_model, skeleton
from phasezoo.wsl import alphaprune, symmetry
from phasezoo.wsl import regimes as three_regimes
from phasezoo.wsl.finetune import (TB_FRACTIONS, FinetuneSettings, cell_tempbalance,
                                   cell_transfer, finetuned, transfer_split)
from phasezoo.wsl.tempbalance import MIN_EIGS, tuned_layers
from phasezoo.wsl.regimes import RegimeSettings

SPARSITIES = (0.5, 0.8, 0.9, 0.95)
ALLOCATIONS = ("uniform", "alpha")  # per-layer arms beside global pruning ("pruned_*")
_WEIGHTED = (nn.Linear, nn.Conv2d)


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _WEIGHTED)]


def can_align(model: nn.Module) -> bool:
    """Whether weight matching handles the architecture: it has a permutation spec
    (:func:`phasezoo.wsl.symmetry.spec_of`; every registered architecture does)."""
    return symmetry.has_spec(model)


def weight_match(reference: nn.Module, other: nn.Module) -> nn.Module:
    """A copy of ``other`` with its hidden units permuted to best match ``reference``.

    One forward pass of weight matching (Ainsworth et al. 2023;
    :func:`phasezoo.wsl.symmetry.align_model` with ``max_sweeps=1``): each permutation group
    in turn (hidden layer, residual stream, attention heads) is assigned to ``reference``'s by
    maximal total inner product of what produces its units (incoming weights and bias,
    BatchNorm), inputs already matched (``scipy.optimize.linear_sum_assignment``). The
    function computed is unchanged.

    Raises:
        ValueError: if the architecture has no permutation spec (:func:`can_align`).
    """
    return symmetry.align_model(reference, other, max_sweeps=1)


class RunningMean:
    """Element-wise mean of models' parameters and buffers, added one model at a time: one row
    of memory for any number of seeds, where stacking them would hold every seed at once."""

    def __init__(self) -> None:
        self.total: dict[str, torch.Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def add(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if k in self.total:
                self.total[k] += v
            else:
                self.total[k] = v.detach().to(torch.float32, copy=True)
        self.count += 1

    @torch.no_grad()
    def load_into(self, model: nn.Module) -> nn.Module:
        """``model`` (same architecture) with the mean written over its values, in place."""
        if not self.count:
            raise ValueError("RunningMean: no model was added")
        for k, v in model.state_dict().items():
            v.copy_((self.total[k] / self.count).to(v.dtype))
        return model


def average(models: list[nn.Module]) -> nn.Module:
    """A copy of ``models[0]`` holding the element-wise mean of the models' values."""
    mean = RunningMean()
    for m in models:
        mean.add(m)
    return mean.load_into(copy.deepcopy(models[0]))


def magnitude_prune(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy with the ``sparsity`` fraction of smallest-magnitude weights (of the Linear and
    Conv2d weight tensors together but the output layer's, :func:`alphaprune.prunable`; biases
    kept) set to zero; ties broken by position."""
    return next(pruned_in_place(copy.deepcopy(model), [sparsity]))[1]


@torch.no_grad()
def pruned_in_place(model: nn.Module,
                    sparsities: Iterable[float]) -> Iterator[tuple[float, nn.Module]]:
    """``(sparsity, model)`` for each sparsity in ascending order, ``model`` pruned in place as
    :func:`magnitude_prune` would prune the original (each step zeroes a superset of the last).

    Why not a sort: the k-th smallest magnitude comes from one in-place ``np.partition`` of the
    magnitudes, so memory is the model plus one row, where ``argsort`` of a 376M-weight ResNet
    takes three more rows (the values and int64 indices).
    """
    weights = [m.weight for m in alphaprune.prunable(model)]
    mags = np.concatenate([w.detach().abs().reshape(-1).to("cpu", torch.float32).numpy()
                           for w in weights])
    for sparsity in sorted(sparsities):
        k = int(round(sparsity * len(mags)))
        if k:
            mags.partition(k - 1)
            alphaprune.zero_smallest(weights, float(mags[k - 1]), k)
        yield sparsity, model


def cell_study(models: Iterable[nn.Module], x: torch.Tensor, y: torch.Tensor,
               batch_size: int = 1000, task: Task | None = None,
               allocation: bool = True) -> dict[str, float]:
    """Averaging and pruning numbers of one cell's seeds (models in eval mode); "accuracy" is the
    task's score (:mod:`phasezoo.tasks`: relative L2 error for a PINN zoo). ``allocation``:
    also the per-layer pruning arms (off where they cannot differ, :func:`not_applicable`).

    ``models`` is consumed one at a time (pass a lazy sequence to build each when needed): each
    is scored, added to the running averages, pruned per layer on a copy (:func:`layer_pruned`),
    then pruned globally in place, and only its skeleton (on the ``meta`` device) is kept.
    Memory: the running averages, the first seed (the reference every other is weight-matched
    to), two models and one row of magnitudes, whatever the number of seeds.
    """
    def score(m: nn.Module) -> float:
        return evaluate(m, x, y, batch_size, task)[1]

    naive, aligned = RunningMean(), RunningMean()
    reference, last = None, None
    members, pruned = [], {s: [] for s in SPARSITIES}
    per_layer = {(arm, s): [] for arm in ALLOCATIONS for s in SPARSITIES}
    for m in models:
        members.append(score(m))
        naive.add(m)
        if can_align(m):  # the reference is kept whole: one more row
            aligned.add(m if reference is None else weight_match(reference, m))
            reference = copy.deepcopy(m) if reference is None else reference
        for key, p in (layer_pruned(m) if allocation else ()):
            per_layer[key].append(score(p))
        for s, p in pruned_in_place(m, SPARSITIES):
            pruned[s].append(score(p))
        last = m.to("meta")  # frees its values; the averages are written into it at the end
    if last is None:
        raise ValueError("cell_study: no models")
    last = last.to_empty(device="cpu")
    row = {"member_accuracy": float(np.mean(members)),
           "naive_average_accuracy": score(naive.load_into(last)),
           "aligned_average_accuracy": (score(aligned.load_into(last)) if aligned.count > 1
                                        else math.nan)}
    return (row | {f"pruned_{s:g}_accuracy": float(np.mean(pruned[s])) for s in SPARSITIES}
            | {f"{arm}_{s:g}_accuracy": float(np.mean(v)) for (arm, s), v in per_layer.items()
               if v})


def layer_pruned(model: nn.Module) -> Iterator[tuple[tuple[str, float], nn.Module]]:
    """``((arm, sparsity), pruned copy)`` for each per-layer arm (:data:`ALLOCATIONS`) and
    sparsity: one copy per arm, pruned further at each larger sparsity (every layer's share
    grows with it, so each step zeroes a superset). ``model`` is not changed."""
    sizes = alphaprune.layer_sizes(model)
    alphas = alphaprune.layer_alphas(model)  # of the unpruned weights, as AlphaPruning takes them
    for arm in ALLOCATIONS:
        work = copy.deepcopy(model)
        for s in sorted(SPARSITIES):
            shares = (np.full(len(sizes), s) if arm == "uniform"
                      else alphaprune.alpha_sparsities(alphas, sizes, s))
            yield (arm, s), alphaprune.prune_layers(work, shares)
        del work


# Each study and the measures (by_phase's, by prefix) it reports: a study that cannot apply to
# a zoo is named with its reason (:func:`not_applicable`) in place of a table of zeros or NaN.
STUDY_MEASURES = {"weight averaging": ("naive_gain",),
                  "weight matching": ("aligned_gain",),
                  "AlphaPruning allocation": ("alpha_vs_",),
                  "fine-tuning transfer": ("finetune_",),
                  "TempBalance": ("tb_gain_",)}
NO_TRANSFER = "no transfer dataset (--transfer-dataset; config studies.transfer_dataset)"


def study_limits(model: nn.Module, seeds: int) -> dict[str, int]:
    """What decides which studies can apply to one cell: its number of seeds and, of its
    architecture (a skeleton on ``meta`` will do), whether weight matching handles it, its
    hidden layers, its prunable layers (:func:`alphaprune.prunable`) and the layers
    TempBalance tunes (:func:`phasezoo.wsl.tempbalance.tuned_layers`)."""
    return {"seeds": seeds, "alignable": int(can_align(model)),
            "hidden": len(_layers(model)) - 1, "prunable": len(alphaprune.prunable(model)),
            "tuned": len(tuned_layers(model))}


def not_applicable(limits: dict[str, int], transfer_dataset: str | None) -> dict[str, str]:
    """Each study that cannot apply under ``limits`` (:func:`study_limits`; a zoo's: the
    largest over its cells) and why: its numbers would be 0 or undefined by construction."""
    def layers(n: int, what: str) -> str:
        return f"{n} {what} layer{'' if n == 1 else 's'}"

    out = {}
    if limits["seeds"] < 2:
        out["weight averaging"] = out["weight matching"] = (
            f"{limits['seeds']} model per cell: its average is the model")
    elif not limits["alignable"]:
        out["weight matching"] = ("no permutation spec for this architecture "
                                  "(phasezoo.wsl.symmetry.spec_of)")
    elif limits["hidden"] < 1:
        out["weight matching"] = "no hidden layer: no unit to permute"
    if limits["prunable"] < 2:
        out["AlphaPruning allocation"] = (
            f"{layers(limits['prunable'], 'prunable')} (all but the output layer): with fewer "
            "than 2 every allocation is the same, so every difference would be 0")
    if transfer_dataset is None:
        out["fine-tuning transfer"] = out["TempBalance"] = NO_TRANSFER
    elif limits["tuned"] < 2:
        out["TempBalance"] = (
            f"{layers(limits['tuned'], 'eligible')} (Linear/Conv2d between the first and the "
            f"last, ≥ {MIN_EIGS} eigenvalues): its rates differ only between 2 or more, so "
            "every gain would be 0")
    return out


def zoo_applicability(cell_limits: list[dict[str, int]],
                      transfer_dataset: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """``(not_applicable, partly)`` over a zoo's cells: the studies that apply to no cell (with
    why, for the cell nearest to applying: the largest limits), and those left out on some
    cells only ("k of n cells: why" of the first such cell)."""
    if not cell_limits:
        return {}, {}
    widest = {k: max(c[k] for c in cell_limits) for k in cell_limits[0]}
    nowhere = not_applicable(widest, transfer_dataset)
    per_cell = [not_applicable(c, transfer_dataset) for c in cell_limits]
    partly = {}
    for study in STUDY_MEASURES:
        missing = [na[study] for na in per_cell if study in na]
        if missing and study not in nowhere:
            partly[study] = (f"not measured on {len(missing)} of {len(per_cell)} cells "
                             f"({missing[0]}); its means are over the others")
    return nowhere, partly


class LazyModels(Sequence):
    """``n`` models as a sequence that builds model ``i`` with ``build(i)`` when indexed, so a
    caller that iterates holds one at a time (a cell's seeds from their zoo rows)."""

    def __init__(self, build: Callable[[int], nn.Module], n: int) -> None:
        self.build, self.n = build, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> nn.Module:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.build(i)



def by_phase(cells: pd.DataFrame, sign: int = 1,
             skip: Iterable[str] = ()) -> dict[str, Any]:
    """Per phase: mean ± std over cells of each study's score change; Kruskal–Wallis p-value
    across phases ("does the phase predict it?"). ``sign`` (:func:`phasezoo.task_kinds.score_sign`)
    orients the changes so that a positive gain and a positive drop mean what they say when the
    score is an error (PINN zoos: relative L2 error). ``skip``: studies (:data:`STUDY_MEASURES`)
    left out, as not applicable.

    Where no test can be made the p-value is NaN (null in the JSON) and ``kruskal_note`` says
    why: ``one phase`` (fewer than two phases with a value), ``constant`` (one value in all).
    """
    from scipy.stats import kruskal

    member = cells["member_accuracy"]
    cells = cells.assign(
        naive_gain=sign * (cells["naive_average_accuracy"] - member),
        aligned_gain=sign * (cells["aligned_average_accuracy"] - member),
        **{f"pruned_{s:g}_drop": sign * (member - cells[f"pruned_{s:g}_accuracy"])
           for s in SPARSITIES})
    measures = ["naive_gain", "aligned_gain", *[f"pruned_{s:g}_drop" for s in SPARSITIES]]
    if f"alpha_{SPARSITIES[0]:g}_accuracy" in cells:  # α allocation against the other two
        for s in SPARSITIES:
            alpha = cells[f"alpha_{s:g}_accuracy"]
            cells[f"alpha_vs_uniform_{s:g}"] = sign * (alpha - cells[f"uniform_{s:g}_accuracy"])
            cells[f"alpha_vs_global_{s:g}"] = sign * (alpha - cells[f"pruned_{s:g}_accuracy"])
        measures += [f"alpha_vs_{o}_{s:g}" for o in ("uniform", "global") for s in SPARSITIES]
    if "finetune_gain" in cells:
        measures += ["finetune_accuracy", "finetune_gain"]
    measures += [f"tb_gain_{f:g}" for f in TB_FRACTIONS if f"tb_gain_{f:g}" in cells]
    dropped = tuple(p for study in skip for p in STUDY_MEASURES[study])
    measures = [m for m in measures if not m.startswith(dropped)]
    out: dict[str, Any] = {"per_phase": {}, "kruskal_p": {}, "kruskal_note": {}}
    for phase, g in cells.groupby("phase"):
        out["per_phase"][phase] = {"cells": int(len(g)), **{
            m: {"mean": float(g[m].mean()), "std": float(g[m].std(ddof=1)) if len(g) > 1
                else math.nan} for m in measures}}
    for m in measures:
        groups = [g[m].dropna().to_numpy() for _, g in cells.groupby("phase")]
        groups = [v for v in groups if len(v)]
        note = kruskal_problem(groups)
        out["kruskal_p"][m] = math.nan if note else float(kruskal(*groups).pvalue)
        if note:
            out["kruskal_note"][m] = note
    return out


def kruskal_problem(groups: list[np.ndarray]) -> str | None:
    """Why a Kruskal–Wallis test across these groups (one per phase, no NaN) means nothing, or
    None: with fewer than two groups there is nothing to compare, and over one value in all
    the statistic is 0/0."""
    if len(groups) < 2:
        return "one phase"
    if len({float(x) for v in groups for x in v}) < 2:
        return "constant"
    return None


def run_studies(zoo: str, data_root: str = "data", progress: bool = True,
                transfer_dataset: str | None = None,
                finetune: FinetuneSettings | None = None,
                allow_download: bool = False, allow_local: bool = False,
                regimes: RegimeSettings | None = None) -> dict[str, Any]:
    """Every cell of a zoo (folder or hub id) at its last kept epoch, then the per-phase summary.

    Each cell's test split is rebuilt from its ``hp_*`` columns through the dataset registry
    (:func:`zoo_cell_split`: from ``data_root`` or a package, downloaded only with
    ``allow_download``, a local file the zoo names only with ``allow_local``); cells that share their
    data (all but a PINN zoo's, whose β is the load) share one split. With ``transfer_dataset``,
    every model is also fine-tuned on that dataset against a from-scratch baseline
    (:mod:`phasezoo.wsl.finetune`). ``regimes``: the three-regime study's densities and
    retraining budget (:mod:`phasezoo.wsl.regimes`; its section ``regimes`` of the result).
    """
    import json

    from tqdm.auto import tqdm

    from phasezoo.wsl.table import load_zoo

    table = load_zoo(zoo, weights=False)  # one cell's models in memory at a time
    missing = [c for c in ("hp_dataset", "hp_normalize") if c not in table.meta]
    if missing:
        raise ValueError(f"{zoo}: column '{missing[0]}' is missing (needed to rebuild the test data)")
    if not len(table):
        raise ValueError(f"{zoo}: no checkpoint to study (every row diverged)")
    last = table.meta["epoch"] == table.meta["epoch"].max()
    rows, splits, limits = [], {}, []
    # Built before any cell is studied: an unknown dataset or a non-image zoo fails at once.
    second = (transfer_split(transfer_dataset, data_root,
                             tuple(table.layouts[0]["architecture"]["kwargs"]["input_shape"]))
              if transfer_dataset else None)
    finetune = finetune or FinetuneSettings()
    regimes, points = regimes or RegimeSettings(), []
    protocol, no_regimes = three_regimes.zoo_protocol_or_reason(zoo)
    for cell, g in tqdm(table.meta[last].groupby("cell", sort=False), desc="studies",
                        disable=not progress):
        hp = cell_hparams(g.iloc[0])
        key = json.dumps({k: hp.get(k) for k in ("dataset", "normalize", "dataset_options", "beta")},
                         sort_keys=True)
        idx, seeds = list(g.index), [int(s) for s in g["seed"]]
        if key not in splits:
            shape = table.layouts[idx[0]]["architecture"]["kwargs"].get("input_shape")
            try:
                splits[key] = zoo_cell_split(hp, data_root, shape, allow_download, allow_local)
            except ValueError as e:
                raise ValueError(f"{zoo}: cell {cell}: {e}") from None
        test = splits[key]
        models = LazyModels(lambda j, idx=idx: build_model(table.layouts[idx[j]],
                                                           table.reader(idx[j])), len(idx))
        limits.append(study_limits(skeleton(table.layouts[idx[0]]), len(idx)))
        skip = not_applicable(limits[-1], transfer_dataset)  # not run: 0 or NaN by construction
        row = {"cell": cell, "phase": g["phase"].iloc[0],
               **cell_study(models, test.x_test, test.y_test, task=test.task,
                            allocation="AlphaPruning allocation" not in skip)}
        if second is not None:
            fresh = LazyModels(lambda j, idx=idx, seeds=seeds: _fresh(table.layouts[idx[j]],
                                                                      seeds[j]), len(idx))
            tuned = finetuned(models, second, finetune, seeds)  # both studies' uniform arm
            row |= cell_transfer(models, fresh, second, finetune, seeds, tuned=tuned)
            if "TempBalance" not in skip:
                row |= cell_tempbalance(models, second, finetune, seeds, uniform_full=tuned)
        if protocol is not None and limits[-1]["prunable"]:
            points += three_regimes.cell_points(models, seeds, test, three_regimes.coordinates(g),
                                                regimes, protocol,
                                                Recipe.from_record(hp).train.augment)
        rows.append(row)
    cells = pd.DataFrame(rows)
    kind = next(iter(splits.values())).task.kind
    nowhere, partly = zoo_applicability(limits, transfer_dataset)
    return {"zoo": sorted(table.meta["zoo"].unique()), "epoch": int(table.meta["epoch"].max()),
            "task": kind, "score": task_kind(kind).score, "transfer_dataset": transfer_dataset,
            "sparsities": list(SPARSITIES), "not_applicable": nowhere,
            "partly_applicable": partly, "cells": cells.to_dict(orient="records"),
            **by_phase(cells, score_sign(kind), skip=nowhere),
            "regimes": three_regimes.finish(points, max(c["prunable"] for c in limits), protocol,
                                            no_regimes, regimes, kind)}


def _fresh(layout: dict, seed: int) -> nn.Module:
    """The layout's architecture freshly initialised with ``seed`` (the from-scratch baseline)."""
    from phasezoo.models import create_model
    from phasezoo.runtime import seeded

    arch = layout["architecture"]
    with seeded(int(seed)):
        return create_model(arch["name"], **arch["kwargs"])
