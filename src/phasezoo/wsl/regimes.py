"""The three-regime model of pruning (Zhou, Yang, Chang, Mahoney, ICML 2023) on a zoo.

The paper's question: the dense model's temperature (here the zoo's temperature axis) and the
pruned model's load (its density) partition pruning outcomes into three regimes of the
post-pruning loss landscape. Regime I: the pruned-and-retrained models are poorly connected;
II-A: connected but dissimilar; II-B: connected and similar. Raising the dense temperature
should help in regime I and hurt in II-B (the "dichotomous effect").

Per cell, per seed (the dense model) and per density: prune every prunable layer to the
density by magnitude (uniform, the reference's ``unif``), retrain the pruned model with its mask
fixed from two retraining seeds, and measure the pair's connectivity (linear path, the zoo's
``linear_barrier``) and CKA (the zoo's CKA recipe) as the zoo's metric protocol measures them;
means over seeds label each (temperature, load, density) point. The reference's protocol, read
line by line, and every deviation: ``docs/three-regime-protocol.md``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from phasezoo.data import Split
from phasezoo.config_checks import zoo_default
from phasezoo.evaluation import evaluate
from phasezoo.landscape.connectivity import interpolation_barrier
from phasezoo.landscape.pairs import cell_seed
from phasezoo.landscape.similarity import cka_batches, pair_cka
from phasezoo.optim import SGD
from phasezoo.runtime import stream_seed
from phasezoo.settings import MetricsSettings, PhaseThresholds, TrainSettings
from phasezoo.train import Member, constant_rate, train_epoch
from phasezoo.wsl import alphaprune

REGIMES = ("I", "II-A", "II-B")
UNLABELLED = "unlabelled"
# Connected, but a retrained copy's output is constant on the CKA batch (the pruned model has
# collapsed, typically to chance accuracy at a low density): CKA is 0/0, so II-A vs II-B is
# undefined. Named, not left unlabelled: it is an outcome of pruning, not a missing value.
COLLAPSED = "collapsed"
OUTCOMES = (*REGIMES, COLLAPSED, UNLABELLED)
REGIME_COLORS = {"I": "#d62728", "II-A": "#2ca02c", "II-B": "#1f77b4", COLLAPSED: "#9e9e9e",
                 UNLABELLED: "#ffffff"}
EVAL_BATCH_SIZE = 1000


@dataclass(frozen=True)
class RegimeSettings:
    """Densities and the retraining budget of the study (the reference's recipe but its length:
    SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, two retraining seeds; it retrains
    160 epochs with step decays, the zoo's studies job one constant-rate epoch by default).

    Raises:
        ValueError: naming the setting no run can use.
    """

    # The config schema's studies.regime_* defaults: one home, which the CLI's options read too.
    densities: tuple[float, ...] = tuple(zoo_default("studies", "regime_densities"))
    epochs: int = zoo_default("studies", "regime_epochs")
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    retrain_seeds: int = zoo_default("studies", "regime_retrain_seeds")
    dense_seeds: int = zoo_default("studies", "regime_dense_seeds")

    def __post_init__(self) -> None:
        if not self.densities or any(not 0 < d <= 1 for d in self.densities):
            raise ValueError(f"regimes: densities must be in (0, 1], got {self.densities!r}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"regimes: {name} must be an integer >= 1")
        if not isinstance(self.dense_seeds, int) or self.dense_seeds < 1:
            raise ValueError("regimes: dense_seeds must be an integer >= 1")
        if self.retrain_seeds < 2:
            raise ValueError("regimes: retrain_seeds must be >= 2 (connectivity needs a pair)")
        if not (math.isfinite(self.lr) and self.lr > 0 and 0 <= self.momentum < 1
                and self.weight_decay >= 0):
            raise ValueError("regimes: lr must be > 0, momentum in [0, 1), weight_decay >= 0")

    def training(self, augment: Mapping[str, Any] | None = None) -> TrainSettings:
        """What :func:`phasezoo.train.train_epoch` retrains with: a constant rate, and the
        zoo's training augmentation (the reference retrains on its augmented loader)."""
        return constant_rate(self.batch_size, self.lr, augment)


@dataclass(frozen=True)
class ZooProtocol:
    """How the zoo measured its pairs and where its phase thresholds sit (from its card)."""

    metrics: MetricsSettings
    phases: PhaseThresholds


def zoo_protocol(folder: str | Path) -> ZooProtocol:
    """The metric protocol and phase thresholds a zoo's card records (its "Training and metric
    settings" JSON, the block :func:`phasezoo.rows.zoo_metrics_settings` reads), both sections
    validated against the config schema: a downloaded card is untrusted, and its CKA and path
    settings size the study's runs (types, bounds, no NaN).

    Raises:
        ValueError: one line naming the card and what is wrong.
    """
    from phasezoo.zoo_folder import MAX_CARD_BYTES
    from phasezoo.config_checks import schema
    from phasezoo.rows import _SETTINGS_BLOCK  # the card's settings block: one pattern

    card = Path(folder) / "README.md"
    if not card.is_file() or card.stat().st_size > MAX_CARD_BYTES:
        raise ValueError(f"{card}: no zoo card (or more than {MAX_CARD_BYTES:,} bytes)")
    match = _SETTINGS_BLOCK.search(card.read_text(encoding="utf-8", errors="replace"))
    try:
        recorded = json.loads(match.group(1), parse_constant=_no_constant)
        sections = {"metrics": recorded["metrics"], "phases": recorded["phase_thresholds"]}
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{card}: no readable 'Training and metric settings' JSON ({e})") from None
    for key, value in sections.items():
        _validate_section(card, key, value, schema()["$defs"])
    return ZooProtocol(MetricsSettings.of(sections["metrics"]),
                       PhaseThresholds.of(sections["phases"]))


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _validate_section(card: Path, key: str, value: Any, defs: dict[str, Any]) -> None:
    """``value`` against the schema's ``$defs[key]``, every key present (the card holds the
    validated section whole)."""
    import jsonschema

    sub = {"$defs": defs, "$ref": f"#/$defs/{key}"}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(sub).iter_errors(value))
    if error is not None:
        raise ValueError(f"{card}: {key}.{'.'.join(map(str, error.absolute_path))}: "
                         f"{error.message[:200]}")
    missing = set(defs[key]["properties"]) - set(value)
    if missing:
        raise ValueError(f"{card}: {key}.{sorted(missing)[0]} is missing")


def uniform_prune(model: nn.Module, density: float) -> nn.Module:
    """A copy with each prunable layer (every Linear/Conv2d weight but the output layer's,
    :func:`phasezoo.wsl.alphaprune.prunable`) keeping its ``density`` fraction of largest
    magnitudes: the reference's uniform layer-wise L1 pruning (``round(p·numel)`` zeroed)."""
    out = copy.deepcopy(model)
    return alphaprune.prune_layers(out, np.full(len(alphaprune.prunable(out)), 1.0 - density))


def retrain(model: nn.Module, split: Split, cfg: RegimeSettings, seed: int,
            augment: Any = None) -> nn.Module | None:
    """``model`` (pruned) retrained in place with its zeros kept, as the reference's
    ``custom_from_mask``: every prunable weight's gradient is masked, so with momentum and
    weight decay a zero stays exactly zero. ``seed`` orders the batches (and draws the
    augmentations). None if the run diverged (a non-finite loss or weight)."""
    masks = [(m.weight, m.weight != 0) for m in alphaprune.prunable(model)]
    hooks = [w.register_hook(lambda g, keep=keep: g * keep) for w, keep in masks]
    member = Member(seed, model, SGD(model.parameters(), momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay))
    try:
        ok = all(train_epoch(member, split, cfg.training(augment), e)
                 for e in range(1, cfg.epochs + 1))
    finally:
        for h in hooks:
            h.remove()
    return model.eval() if ok else None


def retrain_seed(seed: int, density: float, run: int) -> int:
    """The seed of a dense model's ``run``-th retraining at ``density`` (the reference's
    ``retrain_seed``): apart from every other run, and the same in every process."""
    return stream_seed("regime-retrain", int(seed), float(density), int(run))


def point_measures(dense: nn.Module, split: Split, density: float, seed: int,
                   cfg: RegimeSettings, protocol: ZooProtocol, cka_inputs: list[torch.Tensor],
                   augment: Any = None) -> dict[str, float]:
    """One dense model at one density: the mean test score of its pruned-and-retrained copies,
    and the mean connectivity (train error %, mc convention) and CKA of their pairs. NaN where
    a retraining diverged."""
    runs = [retrain(uniform_prune(dense, density), split, cfg, retrain_seed(seed, density, r),
                    augment) for r in range(cfg.retrain_seeds)]
    live = [m for m in runs if m is not None]
    scores = [evaluate(m, split.x_test, split.y_test, EVAL_BATCH_SIZE, split.task)[1]
              for m in live]
    pairs = [(a, b) for i, a in enumerate(live) for b in live[i + 1:]]
    points = protocol.metrics.interpolation_points
    mc = [interpolation_barrier(a, b, split, points, EVAL_BATCH_SIZE)["linear_barrier"]
          for a, b in pairs]
    cka = [pair_cka(a, b, split, cka_inputs, protocol.metrics, EVAL_BATCH_SIZE)
           for a, b in pairs]
    return {"score": _mean(scores), "mc": _mean(mc), "cka": _mean(cka),
            "diverged": float(len(runs) - len(live))}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def cell_points(models: Sequence[nn.Module], seeds: Sequence[int], split: Split,
                cell: dict[str, Any], cfg: RegimeSettings, protocol: ZooProtocol,
                augment: Any = None) -> list[dict[str, Any]]:
    """One row per density of one cell: its coordinates (``cell``: id, phase, temperature and
    load), the dense models' mean test score, and the seed means of :func:`point_measures`.
    The models are built one at a time (a lazy sequence)."""
    inputs = cka_batches(split, protocol.metrics, cell_seed(protocol.metrics.mc_seed, cell["cell"]))
    per = {d: [] for d in cfg.densities}
    dense_scores = []
    dense = min(cfg.dense_seeds, len(seeds))  # the first seeds: the models are built lazily
    for i in range(dense):
        model, seed = models[i].to(split.x_train.device).eval(), seeds[i]
        dense_scores.append(evaluate(model, split.x_test, split.y_test, EVAL_BATCH_SIZE,
                                     split.task)[1])
        for d in cfg.densities:
            per[d].append(point_measures(model, split, d, int(seed), cfg, protocol, inputs,
                                         augment))
    return [{**cell, "density": d, "dense_score": _mean(dense_scores),
             **{k: _nanmean([r[k] for r in rows]) for k in ("score", "mc", "cka")},
             "diverged_runs": float(sum(r["diverged"] for r in rows))}
            for d, rows in per.items()]


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def label_regime(mc: float, cka: float, mc_tolerance: float, cka_split: float) -> str:
    """The paper's taxonomy on the zoo's scales: poorly connected (mc < −``mc_tolerance``, train
    error %: the zoo's barrier threshold) is regime I; otherwise CKA below ``cka_split`` is
    II-A (dissimilar), else II-B; ``collapsed`` when connected but CKA is undefined (a constant
    output: :data:`COLLAPSED`); ``unlabelled`` when mc is not finite (every retraining
    diverged)."""
    if not math.isfinite(mc):
        return UNLABELLED
    if mc < -mc_tolerance:
        return "I"
    if not math.isfinite(cka):
        return COLLAPSED
    return "II-A" if cka < cka_split else "II-B"


def cka_split(points: list[dict[str, Any]], phases: PhaseThresholds) -> tuple[float, str]:
    """The II-A | II-B split and where it comes from: the zoo's phase CKA threshold, or under
    ``phases.cka_rule: zoo-median`` the median CKA of the connected points when there are at
    least ``cka_rule_min_cells`` of them (the paper's "relatively" similar)."""
    if phases.cka_rule == "zoo-median":
        connected = [p["cka"] for p in points
                     if p["mc"] >= -phases.mc_tolerance and math.isfinite(p["cka"])]
        if len(connected) >= phases.cka_rule_min_cells:
            return float(np.median(connected)), "median of the connected points"
    return phases.cka, "the zoo's phase threshold (phases.cka)"


def temperature_effect(points: list[dict[str, Any]], hotter: int,
                       sign: int) -> dict[str, dict[str, Any]]:
    """Per regime: how the pruned model's test score changes when the dense temperature is
    raised one grid step at fixed load and density, counted from the colder point's regime
    (``hotter``: +1 when larger axis values are hotter; ``sign``: +1 when a larger score is
    better). ``answer``: helps, hurts, mixed (as many of each), or why there is no step."""
    steps: dict[str, list[float]] = {r: [] for r in OUTCOMES}
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault((p["load_value"], p["density"]), []).append(p)
    for group in groups.values():
        ordered = sorted(group, key=lambda p: hotter * p["temperature_value"])
        for cold, hot in zip(ordered, ordered[1:]):
            change = sign * (hot["score"] - cold["score"])
            if math.isfinite(change):
                steps[cold["regime"]].append(change)
    single = len({p["temperature_value"] for p in points}) < 2
    return {r: _effect(v, single) for r, v in steps.items() if v or r in REGIMES}


def _effect(changes: list[float], single_temperature: bool) -> dict[str, Any]:
    """One regime's temperature steps summarised (see :func:`temperature_effect`)."""
    helps, hurts = sum(c > 0 for c in changes), sum(c < 0 for c in changes)
    if not changes:
        answer = ("no step: the zoo has one temperature value" if single_temperature else
                  "no step: no point of this regime has a hotter neighbour")
    else:
        answer = "helps" if helps > hurts else "hurts" if hurts > helps else "mixed"
    return {"steps": len(changes), "helps": helps, "hurts": hurts,
            "mean_change": _mean(changes), "answer": answer}


def phase_vs_regime(points: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts of points per (dense cell's phase, regime): does the phase predict the regime?"""
    table: dict[str, dict[str, int]] = {}
    for p in points:
        row = table.setdefault(p["phase"], {})
        row[p["regime"]] = row.get(p["regime"], 0) + 1
    return table


def summarise(points: list[dict[str, Any]], protocol: ZooProtocol, cfg: RegimeSettings,
              hotter: int, sign: int) -> dict[str, Any]:
    """The study's JSON section: the labelled points, the split used, the answers."""
    split, source = cka_split(points, protocol.phases)
    tol = protocol.phases.mc_tolerance
    for p in points:
        p["regime"] = label_regime(p["mc"], p["cka"], tol, split)
    return {"densities": list(cfg.densities), "retrain_epochs": cfg.epochs,
            "retrain_seeds": cfg.retrain_seeds, "dense_seeds": cfg.dense_seeds,
            "mc_tolerance": tol, "cka_split": split,
            "cka_split_source": source, "protocol": protocol.metrics.protocol,
            "points": points, "temperature_effect": temperature_effect(points, hotter, sign),
            "phase_vs_regime": phase_vs_regime(points), "not_applicable": None}


def not_applicable(prunable: int) -> str | None:
    """Why the study cannot apply to a zoo whose models have ``prunable`` prunable layers."""
    if prunable < 1:
        return "no prunable layer (every Linear/Conv2d weight but the output layer's): nothing to prune"
    return None


def zoo_folder(path_or_id: str) -> Path:
    """The folder of a zoo that :func:`phasezoo.wsl.table.load_zoo` has verified: the local
    folder, or a hub id's verified download."""
    from phasezoo.zoo_folder import hub_folder

    local = Path(path_or_id)
    return local if local.is_dir() else hub_folder(str(path_or_id))


def zoo_protocol_or_reason(path_or_id: str) -> tuple[ZooProtocol | None, str | None]:
    """:func:`zoo_protocol` of a zoo, or None and why (a card without the settings block, as
    cards written before it had, makes the study not applicable rather than the job fail)."""
    try:
        return zoo_protocol(zoo_folder(path_or_id)), None
    except ValueError as e:
        return None, f"the zoo's metric protocol cannot be read: {e}"


def coordinates(rows: Any) -> dict[str, Any]:
    """A cell's id, phase and grid position from its zoo rows (a DataFrame of one cell)."""
    first = rows.iloc[0]
    return {"cell": str(first["cell"]), "phase": str(first["phase"]),
            "temperature_name": str(first["temperature_name"]),
            "temperature_value": float(first["temperature_value"]),
            "load_name": str(first["load_name"]), "load_value": float(first["load_value"])}


def finish(points: list[dict[str, Any]], prunable: int, protocol: ZooProtocol | None,
           reason: str | None, cfg: RegimeSettings, kind: str) -> dict[str, Any]:
    """The study's section of ``studies.json``: :func:`summarise` of the points, or why the
    study applies to no cell (never an empty table)."""
    from phasezoo.task_kinds import score_sign
    from phasezoo.wsl.diagnosis import HOTTER

    reason = reason or not_applicable(prunable)
    if reason or protocol is None or not points:
        return {"not_applicable": reason or "no cell was studied", "points": []}
    hotter = HOTTER.get(points[0]["temperature_name"], 1)
    return summarise(points, protocol, cfg, hotter, score_sign(kind))


def markdown(section: dict[str, Any], score: str) -> list[str]:
    """The report's three-regime section: rules, the per-point table, the two answers."""
    lines = ["", "## Three-regime model of pruning", ""]
    if section.get("not_applicable"):
        return lines + [f"Not applicable to this zoo: {section['not_applicable']}."]
    lines += [f"Each point: the cell's first {section.get('dense_seeds', 'every')} seed(s) "
              f"pruned to the density (uniform per layer), retrained "
              f"{section['retrain_epochs']} epoch(s) from {section['retrain_seeds']} seeds with "
              f"its mask fixed; mc = linear-path connectivity of the retrained copies (train "
              f"error %), CKA as the zoo's `{section['protocol']}` protocol. Regime I: mc < "
              f"−{section['mc_tolerance']:g}; else II-A: CKA < {section['cka_split']:.3g} "
              f"({section['cka_split_source']}); else II-B; `collapsed`: connected, but a "
              f"retrained copy's output is constant, so CKA is undefined; `unlabelled`: every "
              f"retraining diverged. `score`: pruned-retrained test "
              f"{score}; `dense`: the cell's own.", "",
              "| temperature | load | density | phase | mc | CKA | score | dense | regime |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in section["points"]:
        lines.append(f"| {p['temperature_name']} {p['temperature_value']:g} | {p['load_name']} "
                     f"{p['load_value']:g} | {p['density']:g} | {p['phase']} | {_num(p['mc'])} | "
                     f"{_num(p['cka'])} | {_num(p['score'])} | {_num(p['dense_score'])} | "
                     f"**{p['regime']}** |")
    lines += ["", "Raising the dense temperature one grid step (same load and density), counted "
              "from the colder point's regime: does the pruned model's score improve?", "",
              "| regime | steps | helps | hurts | mean change | answer |", "|---|---|---|---|---|---|"]
    for r, e in section["temperature_effect"].items():
        lines.append(f"| {r} | {e['steps']} | {e['helps']} | {e['hurts']} | "
                     f"{_num(e['mean_change'])} | {e['answer']} |")
    regimes = [r for r in OUTCOMES
               if any(r in row for row in section["phase_vs_regime"].values())]
    lines += ["", "Dense cell's phase × regime (points): does the phase predict the regime?", "",
              "| phase | " + " | ".join(regimes) + " |", "|---|" + "---|" * len(regimes)]
    for phase, row in section["phase_vs_regime"].items():
        lines.append(f"| {phase} | " + " | ".join(str(row.get(r, 0)) for r in regimes) + " |")
    return lines


def _num(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.3f}"


def diagram(section: dict[str, Any], out: str | Path, title: str) -> Path:
    """Temperature × density, one panel per load value, each point coloured by its regime
    (mc and CKA written in), boundaries between regimes drawn, as the phase diagram
    (:func:`phasezoo.plots.phase_diagram_figure`); a panel saying why when not applicable."""
    from phasezoo.plots import _boundaries, _pyplot, _save

    plt = _pyplot()
    points = section.get("points") or []
    loads = sorted({p["load_value"] for p in points}) or [None]
    fig, axes = plt.subplots(1, len(loads), figsize=(4.5 * len(loads) + 1.5, 4.5), squeeze=False)
    for ax, load in zip(axes[0], loads):
        if load is None:
            ax.text(0.5, 0.5, f"not applicable:\n{section.get('not_applicable')}",
                    ha="center", va="center", wrap=True)
            ax.set_axis_off()
            continue
        _panel(ax, [p for p in points if p["load_value"] == load], plt, _boundaries)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, ec="black") for c in REGIME_COLORS.values()]
    fig.legend(handles, list(REGIME_COLORS), title="regime", loc="center right")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return _save(fig, out)


def _panel(ax, points: list[dict[str, Any]], plt, boundaries) -> None:
    """One load value's temperature × density grid."""
    temps = sorted({p["temperature_value"] for p in points})
    dens = sorted({p["density"] for p in points})
    labels = np.full((len(temps), len(dens)), UNLABELLED, dtype=object)
    for p in points:
        r, c = temps.index(p["temperature_value"]), dens.index(p["density"])
        labels[r, c] = p["regime"]
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color=REGIME_COLORS[p["regime"]]))
        ax.text(c, r, f"{p['regime']}\nmc {_num(p['mc'])}\nCKA {_num(p['cka'])}",
                ha="center", va="center", fontsize=8)
    boundaries(ax, labels)
    ax.set_xlim(-0.5, len(dens) - 0.5)
    ax.set_ylim(-0.5, len(temps) - 0.5)
    ax.set_xticks(range(len(dens)), [f"{d:g}" for d in dens])
    ax.set_yticks(range(len(temps)), [f"{t:g}" for t in temps])
    ax.set_xlabel("density (load of the pruned model)")
    ax.set_ylabel(f"{points[0]['temperature_name']} (dense temperature)")
    ax.set_title(f"{points[0]['load_name']} {points[0]['load_value']:g}")
