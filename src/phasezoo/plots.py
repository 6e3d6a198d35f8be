"""Pictures of a zoo's grid: the phase diagram, one heat map per metric and the topological
landscape profiles of one cell per phase (PNG, one per file).

The grid is drawn with one column per temperature value and one row per load value in config
order, so powers of two sit evenly spaced: a log2 axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HEATMAP_METRICS = ("test_accuracy", "train_loss", "ln_hessian_top_eigenvalue",
                   "ln_hessian_trace", "mc", "linear_barrier", "cka", "alpha_mean",
                   "farms_alpha_mean", "topo_minima", "topo_total_persistence")
PHASE_COLORS = {"I": "#d62728", "II": "#ff7f0e", "III": "#9467bd", "IV-A": "#2ca02c",
                "IV-B": "#1f77b4", "diverged": "#7f7f7f", "unlabelled": "#dddddd"}


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


def heatmap(phases: pd.DataFrame, column: str, out: str | Path) -> Path:
    """A temperature × load heat map of one per-cell column, values written in the cells."""
    plt = _pyplot()
    grid = _grid(phases, column)
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2, 1.0 * grid.shape[0] + 1.5))
    im = ax.imshow(grid.values, origin="lower", cmap="viridis", aspect="auto")
    values = grid.values.astype(float)
    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
    for (r, c), v in np.ndenumerate(values):
        bright = hi > lo and (v - lo) / (hi - lo) > 0.6  # dark text on the bright end of viridis
        ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=9,
                color="black" if bright else "white")
    title = f"{phases['zoo'].iloc[0]}: {column}"
    if not finite.size:  # e.g. HT-SR α of a zoo whose layers are all too small to analyse
        title += " (no finite values)"
    _axes(ax, phases, grid, title)
    fig.colorbar(im, ax=ax, label=column)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def phase_diagram(phases: pd.DataFrame, out: str | Path) -> Path:
    """Cells coloured by phase, label and margin written in, boundaries between phases drawn."""
    plt = _pyplot()
    labels = _grid(phases, "phase")
    margins = _grid(phases, "margin")
    fig, ax = plt.subplots(figsize=(1.3 * labels.shape[1] + 2.5, 1.0 * labels.shape[0] + 1.5))
    for (r, c), phase in np.ndenumerate(labels.values):
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color=PHASE_COLORS.get(phase, "w")))
        ax.text(c, r, f"{phase}\n±{margins.values[r, c]:.2f}", ha="center", va="center",
                fontsize=9, color="white" if phase not in ("unlabelled",) else "black")
    _boundaries(ax, labels.values)
    ax.set_xlim(-0.5, labels.shape[1] - 0.5)
    ax.set_ylim(-0.5, labels.shape[0] - 0.5)
    _axes(ax, phases, labels, f"{phases['zoo'].iloc[0]}: loss-landscape phases")
    present = [p for p in PHASE_COLORS if p in set(labels.values.ravel())]
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in present],
              labels=present, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="phase")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


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
    from phasezoo.phases import PHASES

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
