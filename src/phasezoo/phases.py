"""Per-cell aggregates of a zoo and each cell's loss-landscape phase label.

Labelling by the Yang et al. (2021) taxonomy needs the landscape metrics (mode connectivity,
Hessian); until those land every cell that trained is labelled ``unlabelled`` and a cell whose
seeds all diverged ``diverged``. The aggregation below is what the labeller will read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from phasezoo.config import ZooSpec

UNLABELLED, DIVERGED = "unlabelled", "diverged"


def landscape_epoch(metrics: pd.DataFrame, requested: int) -> int:
    """The kept epoch at which cells are compared (``-1`` = the last kept epoch)."""
    return int(metrics["epoch"].max()) if requested == -1 else requested


def aggregate_cell(metrics: pd.DataFrame, pairs: pd.DataFrame, epoch: int) -> dict[str, float]:
    """Seed means of one cell at ``epoch``: losses, train error (%), log10 Hessian λmax and trace,
    and the pair means of mode connectivity (train error %, and loss), linear barrier and CKA."""
    at = metrics[metrics["epoch"] == epoch]
    live = at[~at["diverged"]]
    return {"train_loss": live["train_loss"].mean(), "test_loss": live["test_loss"].mean(),
            "train_error": 100.0 * (1.0 - live["train_accuracy"].mean()),
            "test_accuracy": live["test_accuracy"].mean(),
            "log_hessian_top_eigenvalue": _log10_mean(live, "hessian_top_eigenvalue"),
            "log_hessian_trace": _log10_mean(live, "hessian_trace"),
            "mc": pairs["mc"].mean(), "mc_loss": pairs["mc_loss"].mean(),
            "linear_barrier": pairs["linear_barrier"].mean(), "cka": pairs["cka"].mean(),
            "diverged_fraction": float(at["diverged"].mean()) if len(at) else np.nan}


def _log10_mean(table: pd.DataFrame, column: str) -> float:
    """log10 of the seed mean (NaN when the mean is not positive or the column is absent)."""
    mean = table[column].mean() if column in table else np.nan
    return float(np.log10(mean)) if mean > 0 else float("nan")


def label(row: dict[str, float]) -> str:
    """The phase label of one aggregated cell."""
    return DIVERGED if row["diverged_fraction"] == 1.0 else UNLABELLED


def zoo_phases(zoo: ZooSpec, results_dir: str | Path) -> pd.DataFrame:
    """One row per cell of ``zoo``: grid coordinates, aggregates and the phase label."""
    rows = []
    for cell in zoo.cells():
        base = Path(results_dir) / zoo.name / cell.id
        metrics = pd.read_parquet(base / "metrics.parquet")
        pairs = pd.read_parquet(base / "pairs.parquet")
        epoch = landscape_epoch(metrics, zoo.raw["metrics"]["landscape_epoch"])
        agg = aggregate_cell(metrics, pairs, epoch)
        rows.append({"zoo": zoo.name, "cell": cell.id,
                     "temperature_name": cell.temperature[0],
                     "temperature_value": float(cell.temperature[1]),
                     "load_name": cell.load[0], "load_value": float(cell.load[1]),
                     "landscape_epoch": epoch, **agg, "phase": label(agg)})
    return pd.DataFrame(rows)


def heatmap(phases: pd.DataFrame, column: str, out: str | Path) -> Path:
    """A temperature × load heat map of one per-cell column, values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = phases.pivot(index="load_value", columns="temperature_value", values=column)
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2, 1.0 * grid.shape[0] + 1.5))
    im = ax.imshow(grid.values, origin="lower", cmap="viridis", aspect="auto")
    lo, hi = np.nanmin(grid.values), np.nanmax(grid.values)
    for (r, c), v in np.ndenumerate(grid.values):
        bright = hi > lo and (v - lo) / (hi - lo) > 0.6  # dark text on the bright end of viridis
        ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=9,
                color="black" if bright else "white")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    ax.set_xlabel(f"{phases['temperature_name'].iloc[0]} (temperature-like)")
    ax.set_ylabel(f"{phases['load_name'].iloc[0]} (load-like)")
    ax.set_title(f"{phases['zoo'].iloc[0]}: {column}")
    fig.colorbar(im, ax=ax, label=column)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)
