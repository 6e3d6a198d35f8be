"""Pictures of a zoo's grid: the phase diagram and one heat map per metric (PNG, one per file).

The grid is drawn with one column per temperature value and one row per load value in config
order, so powers of two sit evenly spaced: a log2 axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HEATMAP_METRICS = ("test_accuracy", "train_loss", "ln_hessian_top_eigenvalue",
                   "ln_hessian_trace", "mc", "linear_barrier", "cka", "alpha_mean",
                   "farms_alpha_mean")
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
