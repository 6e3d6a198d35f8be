"""Pictures of a zoo's grid: the phase diagram, one heat map per metric and the topological
landscape profiles of one cell per phase (PNG, one per file).

The grid is drawn with one column per temperature value and one row per load value in config
order, so powers of two sit evenly spaced: a log2 axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from phasezoo.task_kinds import CLASSIFICATION, task_kind
from phasezoo.vocabulary import PHASE_COLORS, PHASES

if TYPE_CHECKING:
    from phasezoo.settings import PhaseThresholds

HEATMAP_METRICS = ("test_accuracy", "train_loss", "ln_hessian_top_eigenvalue",
                   "ln_hessian_trace", "mc", "linear_barrier", "cka", "alpha_mean",
                   "farms_alpha_mean", "topo_minima", "topo_total_persistence", "llc")
# What each heat map shows, with its unit: a reader of the picture has not seen the columns.
# "{score}" and "{loss}" take the task kind's units (phasezoo.task_kinds).
METRIC_TITLES = {
    "test_accuracy": "Test {score}",
    "train_loss": "Train loss ({loss})",
    "ln_hessian_top_eigenvalue": "ln Hessian λmax of the train loss",
    "ln_hessian_trace": "ln Hessian trace of the train loss",
    "mc": "Mode connectivity mc (train error %)",
    "linear_barrier": "Linear-path barrier (train error %)",
    "cka": "CKA between seeds' outputs (0–1)",
    "alpha_mean": "HT-SR power-law α (layer mean)",
    "farms_alpha_mean": "FARMS α (layer mean)",
    "topo_minima": "Local minima on the top-2 Hessian plane (count)",
    "topo_total_persistence": "Total 0-D persistence of that plane (loss)",
    "llc": "Local learning coefficient λ̂ (SGLD, seed mean)",
}
# Signed metrics (negative = a barrier): a diverging map centred at 0, so the sign reads at once.
SIGNED_METRICS = ("mc", "linear_barrier")
# Why a cell of each metric can be empty (besides every seed having diverged).
NAN_REASONS = {
    "cka": "CKA undefined: a seed's outputs are constant (collapsed), or < 2 live seeds",
    "mc": "no live seed pair",
    "linear_barrier": "no live seed pair",
    "ln_hessian_top_eigenvalue": "Hessian not measured, or its seed mean ≤ 0 (no log)",
    "ln_hessian_trace": "Hessian not measured, or its seed mean ≤ 0 (no log)",
    "alpha_mean": "no layer large enough for a power-law fit (< 8 eigenvalues)",
    "farms_alpha_mean": "FARMS off, or no layer large enough for a fit",
    "topo_minima": "metrics.topology off, or no live seed",
    "topo_total_persistence": "metrics.topology off, or no live seed",
    "llc": "metrics.llc_steps is 0, or every chain's loss became non-finite",
}
RULE_NAMES = {"train_error": "train err", "mc_tolerance": "mc", "cka": "CKA"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(phases: pd.DataFrame, column: str) -> pd.DataFrame:
    return phases.pivot(index="load_value", columns="temperature_value", values=column)


def _axes(ax, phases: pd.DataFrame, grid: pd.DataFrame, title: str) -> None:
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    ax.set_xlabel(f"{phases['temperature_name'].iloc[0]} (temperature-like, log2 spacing)")
    ax.set_ylabel(f"{phases['load_name'].iloc[0]} (load-like, log2 spacing)")
    ax.set_title(title)


def _save(fig, out: str | Path) -> Path:
    """Write ``fig`` as a PNG and free it (many pictures per stage)."""
    fig.savefig(out, dpi=120)
    _pyplot().close(fig)
    return Path(out)


def epoch_text(phases: pd.DataFrame) -> str:
    """"epoch 30" (or "epochs 10, 30" when cells differ): when the cells were compared."""
    if "landscape_epoch" not in phases:
        return "epoch unknown"
    epochs = sorted({int(e) for e in phases["landscape_epoch"].dropna()})
    return f"epoch{'s' if len(epochs) > 1 else ''} {', '.join(map(str, epochs))}"


def metric_title(column: str, task: str = CLASSIFICATION.name) -> str:
    """A heat map's human title: what the column measures and its unit."""
    kind = task_kind(task)
    return METRIC_TITLES.get(column, column).format(score=kind.score_unit, loss=kind.loss_unit)


def heatmap(phases: pd.DataFrame, column: str, out: str | Path, thresholds: PhaseThresholds,
            task: str = CLASSIFICATION.name) -> Path:
    """A temperature × load heat map of one per-cell column (see :func:`heatmap_figure`)."""
    return _save(heatmap_figure(phases, column, thresholds, task), out)


def heatmap_figure(phases: pd.DataFrame, column: str, thresholds: PhaseThresholds,
                   task: str = CLASSIFICATION.name):
    """The heat map of one per-cell column as a matplotlib Figure, values written in the cells.

    Titled with the metric's name, unit and the epoch it was measured at. Signed metrics
    (:data:`SIGNED_METRICS`) get a diverging map centred at 0, and mc its ±``mc_tolerance``
    band on the colour bar, so the phases' "barrier" side reads at once; CKA gets its
    threshold there. Empty cells are hatched grey, written "diverged" or "no value", and a
    note under the picture says why (:data:`NAN_REASONS`)."""
    plt = _pyplot()
    thresholds = labelled_by(phases, thresholds)
    grid = _grid(phases, column)
    values = grid.values.astype(float)
    finite = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * grid.shape[1] + 3.5),
                                    max(4.5, 1.0 * grid.shape[0] + 2.2)))
    cmap, norm = _colour_scale(column, finite, thresholds)
    im = ax.imshow(values, origin="lower", cmap=cmap, norm=norm, aspect="auto")
    diverged = _grid(phases, "phase").values == "diverged" if "phase" in phases else \
        np.zeros(values.shape, bool)
    for (r, c), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=9,
                    color=_text_colour(cmap, norm(v)))
        else:
            _hatch(ax, r, c, "grey")
            ax.text(c, r, "diverged" if diverged[r, c] else "no value", ha="center",
                    va="center", fontsize=8, color="black")
    title = f"{metric_title(column, task)}\n{epoch_text(phases)}"
    if not finite.size:  # e.g. HT-SR α of a zoo whose layers are all too small to analyse
        title += " (no finite values)"
    _axes(ax, phases, grid, f"{phases['zoo'].iloc[0]}: {title}")
    bar = fig.colorbar(im, ax=ax, label=column)
    _mark_thresholds(bar, column, thresholds)
    note = _nan_note(column, np.isnan(values) & ~diverged, np.isnan(values) & diverged)
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06 if note else 0, 1, 1))
    return fig


def _colour_scale(column: str, finite: np.ndarray, thresholds: PhaseThresholds):
    """(cmap, norm): viridis over the data, or for a signed metric a diverging map whose white
    is 0, symmetric (so equal distances read as equal colours) and wide enough to show mc's
    tolerance band even when every value is inside it. CKA's range takes in its threshold."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    if column not in SIGNED_METRICS:
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        if column == "cka":  # its threshold on the bar, even when every cell is on one side
            lo, hi = min(lo, thresholds.cka - 0.02), max(hi, thresholds.cka + 0.02)
        return "viridis", Normalize(lo, hi if hi > lo else lo + 1.0)
    reach = max([1.5 * thresholds.mc_tolerance, *np.abs(finite)])
    return "RdBu", TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)


def _text_colour(cmap: str, level: float) -> str:
    """Black on the bright part of the map, white on the dark (viridis' top, RdBu's middle)."""
    bright = level > 0.6 if cmap == "viridis" else 0.2 < level < 0.8
    return "black" if bright else "white"


def _mark_thresholds(bar, column: str, thresholds: PhaseThresholds) -> None:
    """Dashed lines and labelled ticks on the colour bar at the phase thresholds that read
    this metric (mc: the ±tolerance band, hatched; CKA: the IV-A | IV-B threshold)."""
    tol = thresholds.mc_tolerance
    marks = {"mc": {-tol: f"−{tol:g}", tol: f"+{tol:g}"},
             "cka": {thresholds.cka: f"{thresholds.cka:.3g} IV-A | IV-B"}}.get(column, {})
    lo, hi = bar.mappable.norm.vmin, bar.mappable.norm.vmax
    marks = {v: t for v, t in marks.items() if lo <= v <= hi}
    if not marks:
        return
    for value in marks:
        bar.ax.axhline(value, color="black", lw=1.2, ls="--")
    if column == "mc":
        bar.ax.axhspan(-tol, tol, facecolor="none", hatch="..", edgecolor="black", lw=0,
                       zorder=3)
        bar.set_label(f"mc (train error %)\nhatched |mc| ≤ {tol:g}: connected; < −{tol:g}: barrier",
                      fontsize=8)
    near = 0.08 * (hi - lo)  # automatic ticks this close to a threshold would overprint it
    ticks = [t for t in bar.get_ticks() if lo <= t <= hi
             and all(abs(t - v) > near for v in marks)]
    bar.set_ticks(sorted([*ticks, *marks]))
    bar.set_ticklabels([marks.get(t, f"{t:g}") for t in sorted([*ticks, *marks])])
    bar.ax.set_ylim(lo, hi)


def _hatch(ax, r: int, c: int, colour: str, fill: bool = True) -> None:
    """Hatch one grid cell (an empty one grey, a borderline one over its phase colour)."""
    plt = _pyplot()
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="#eeeeee" if fill else "none",
                               edgecolor=colour, hatch="//", lw=0, zorder=2))


def _nan_note(column: str, empty: np.ndarray, diverged: np.ndarray) -> str:
    """The sentence under a heat map that says why its hatched cells have no value."""
    parts = []
    if diverged.any():
        parts.append("diverged: every seed of the cell diverged")
    if empty.any():
        parts.append(f"no value: {NAN_REASONS.get(column, 'no live seed')}")
    return ("Hatched cells — " + "; ".join(parts) + ".") if parts else ""


def margin_text(margin: float, rule: str) -> str:
    """A label's margin as what it is: the deciding metric's distance to its threshold relative
    to the threshold, in % with two significant figures (never "±0.00" for a near-tie, which
    read as an uncertainty), and which threshold decided ("margin 17 % (mc)")."""
    if not np.isfinite(margin):
        return ""
    pct = 100.0 * float(margin)
    if pct < 0.01:
        shown = "<0.01"
    else:
        decimals = 1 - int(np.floor(np.log10(pct)))
        shown = f"{round(pct, decimals):.{max(0, decimals)}f}"
        shown = shown.rstrip("0").rstrip(".") if "." in shown else shown
    return f"margin {shown} % ({RULE_NAMES.get(rule, rule)})"


# Where the CKA split comes from, by ``phases.cka_rule`` (phasezoo.boundaries).
CKA_RULE_TEXT = {"anchor": "the protocol's fixed value", "zoo-median": "this zoo's median"}


def labelled_by(phases: pd.DataFrame, thresholds: PhaseThresholds) -> PhaseThresholds:
    """The thresholds that labelled ``phases``: the zoo's ``phases`` settings with the CKA split
    its ``cka_rule`` gives on these cells (so a zoo-median split is stated, not the anchor's)."""
    from phasezoo.boundaries import resolved_thresholds

    return resolved_thresholds(phases, thresholds)


def thresholds_text(thresholds: PhaseThresholds) -> str:
    """The phase rules with the thresholds that labelled the cells (``cka`` as its rule
    resolved it, :func:`phasezoo.boundaries.resolved_thresholds`), one line, as the phase
    diagram states them: each is a convention, so the picture names it as one."""
    rule = CKA_RULE_TEXT.get(thresholds.cka_rule, thresholds.cka_rule)
    return (f"Conventions, not measured boundaries: train error > {thresholds.train_error:g} % "
            f"= high loss (I, II); mc < −{thresholds.mc_tolerance:g} % = barrier (I, III), else "
            f"connected; connected low loss: CKA < {thresholds.cka:.3g} = IV-A, else IV-B "
            f"(CKA split: {rule}).")


def sensitivity_text(delta: float) -> str:
    """What a hatched cell of the phase diagram means (its legend entry)."""
    return f"hatched: label changes\nif one threshold moves\n{100 * delta:g} % up or down"


def phase_diagram(phases: pd.DataFrame, out: str | Path, thresholds: PhaseThresholds) -> Path:
    """The phase diagram as a PNG (see :func:`phase_diagram_figure`)."""
    return _save(phase_diagram_figure(phases, thresholds), out)


def phase_diagram_figure(phases: pd.DataFrame, thresholds: PhaseThresholds):
    """Cells coloured by phase with label and margin written in, boundaries between phases
    drawn, sensitive cells (the table's ``sensitive``: the label changes when one threshold
    alone moves by ±``thresholds.sensitivity``) hatched, and the thresholds that decided every
    label stated under the grid: a matplotlib Figure."""
    plt = _pyplot()
    thresholds = labelled_by(phases, thresholds)
    labels = _grid(phases, "phase")
    margins = _grid(phases, "margin").values.astype(float)
    rules = _grid(phases, "margin_rule").values
    sensitive = _grid(phases, "sensitive").values.astype(bool)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * labels.shape[1] + 3.5),
                                    max(4.5, 1.0 * labels.shape[0] + 2.6)))
    for (r, c), phase in np.ndenumerate(labels.values):
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color=PHASE_COLORS.get(phase, "w")))
        if sensitive[r, c]:
            _hatch(ax, r, c, "white", fill=False)
        margin = margin_text(margins[r, c], rules[r, c])
        style = {"ha": "center", "zorder": 3, "color": "black" if phase == "unlabelled" else
                 "white", "bbox": {"facecolor": PHASE_COLORS.get(phase, "w"), "lw": 0, "pad": 1}}
        ax.text(c, r, phase, va="bottom" if margin else "center", fontsize=11,
                fontweight="bold", **style)
        if margin:
            ax.text(c, r - 0.05, margin, va="top", fontsize=8, **style)
    _boundaries(ax, labels.values)
    ax.set_xlim(-0.5, labels.shape[1] - 0.5)
    ax.set_ylim(-0.5, labels.shape[0] - 0.5)
    _axes(ax, phases, labels,
          f"{phases['zoo'].iloc[0]}: loss-landscape phases, {epoch_text(phases)}")
    present = [p for p in PHASE_COLORS if p in set(labels.values.ravel())]
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in present]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="#888888", edgecolor="white",
                                 hatch="//", lw=0))
    ax.legend(handles=handles, title="phase",
              labels=[*present, sensitivity_text(thresholds.sensitivity)],
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.text(0.01, 0.01, thresholds_text(thresholds) + "\nMargin: how far the deciding metric "
             "is from its threshold, relative to that threshold (train err, mc or CKA).",
             fontsize=8, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _boundaries(ax, labels: np.ndarray) -> None:
    """Thick lines on every edge shared by two cells of different phases."""
    rows, cols = labels.shape
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols and labels[r, c] != labels[r, c + 1]:
                ax.plot([c + 0.5, c + 0.5], [r - 0.5, r + 0.5], color="black", lw=3)
            if r + 1 < rows and labels[r, c] != labels[r + 1, c]:
                ax.plot([c - 0.5, c + 0.5], [r + 0.5, r + 0.5], color="black", lw=3)


def profile_cells(phases: pd.DataFrame) -> pd.DataFrame:
    """One cell per phase present (in phase order; not diverged or unlabelled cells): the least
    borderline one (largest margin), so each picture shows its phase's typical landscape."""
    ranked = phases[phases["phase"].isin(PHASES)].sort_values("margin", ascending=False,
                                                             kind="stable")
    chosen = ranked.drop_duplicates("phase")
    order = {p: i for i, p in enumerate(PHASES)}
    return chosen.sort_values("phase", key=lambda s: s.map(order))


def landscape_profiles(profiles: list[dict], radius: float, out: str | Path,
                       empty: str = "no live checkpoint has a profile") -> Path:
    """Topological landscape profiles side by side, one column per chosen cell: the loss on the
    plane of the top two Hessian eigenvectors with its local minima marked (top), and the 0-D
    persistence diagram of that grid, minimum value vs the saddle where it merges (bottom).

    ``profiles``: dicts with ``title``, ``phase`` and ``grid`` (steps × steps losses); with none,
    the picture says ``empty``."""
    from phasezoo.persistence import persistence_pairs

    plt = _pyplot()
    n = max(1, len(profiles))
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 7.0), squeeze=False)
    for col, prof in enumerate(profiles):
        grid = np.asarray(prof["grid"], dtype=float)
        top, bottom = axes[0, col], axes[1, col]
        extent = (-radius, radius, -radius, radius)
        im = top.imshow(grid.T, origin="lower", extent=extent, cmap="viridis", aspect="equal")
        top.contour(grid.T, levels=12, extent=extent, colors="white", linewidths=0.5, alpha=0.6)
        mins = np.argwhere(_local_minima(grid))
        axis = np.linspace(-radius, radius, grid.shape[0])
        top.scatter(axis[mins[:, 0]], axis[mins[:, 1]], s=18, c="red", edgecolors="white",
                    linewidths=0.5, zorder=3)
        pairs = persistence_pairs(grid)  # the count topo_minima holds (ties merge here)
        top.set_title(f"{prof['title']}\nphase {prof['phase']}: {len(pairs)} local "
                      f"minim{'um' if len(pairs) == 1 else 'a'}",
                      fontsize=9, color=PHASE_COLORS.get(prof["phase"], "black"))
        top.set_xlabel("along v₁ (× ‖θ‖)")
        top.set_ylabel("along v₂ (× ‖θ‖)")
        fig.colorbar(im, ax=top, fraction=0.046, label="loss")
        _persistence_axes(bottom, pairs, float(grid.min()), float(grid.max()))
        top.locator_params(nbins=3)
    if not profiles:
        axes[0, 0].text(0.5, 0.5, empty, ha="center", va="center", wrap=True)
        axes[0, 0].set_axis_off()
        axes[1, 0].set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def _local_minima(grid: np.ndarray) -> np.ndarray:
    """Where a grid value is below all its axis neighbours (4-connectivity, as the persistence)."""
    padded = np.pad(grid, 1, constant_values=np.inf)
    centre = padded[1:-1, 1:-1]
    return ((centre < padded[:-2, 1:-1]) & (centre < padded[2:, 1:-1])
            & (centre < padded[1:-1, :-2]) & (centre < padded[1:-1, 2:]))


def _persistence_axes(ax, pairs: np.ndarray, lo: float, hi: float) -> None:
    """A 0-D persistence diagram over the grid's loss range [lo, hi]: each minimum at (its loss,
    the loss where it merges into a deeper basin); the global minimum, which never merges, on
    the top edge."""
    finite = np.isfinite(pairs[:, 1])
    top = hi + 0.05 * ((hi - lo) or abs(lo) or 1.0)
    ax.plot([lo, top], [lo, top], color="grey", lw=0.8)
    ax.scatter(pairs[finite, 0], pairs[finite, 1], s=16, c="tab:blue", label="merging minimum")
    ax.scatter(pairs[~finite, 0], [top] * int((~finite).sum()), marker="^", s=30,
               c="tab:red", label="global minimum (∞)")
    ax.set_xlabel("birth: minimum's loss")
    ax.set_ylabel("death: merging saddle's loss")
    total = float((pairs[finite, 1] - pairs[finite, 0]).sum())
    ax.set_title(f"0-D persistence (total {total:.3g})", fontsize=9)
    ax.set_xlim(lo - 0.05 * (top - lo), top)
    ax.set_ylim(lo - 0.05 * (top - lo), top + 0.05 * (top - lo))
    ax.ticklabel_format(useOffset=False)
    ax.locator_params(nbins=4)
    ax.legend(fontsize=7, loc="lower right")
