"""The phases stage's table: a zoo's per-cell files read, aggregated and labelled, and the loss
planes its landscape-profile picture shows.

Why apart from :mod:`phasezoo.phases` (the labelling rules) and :mod:`phasezoo.boundaries` (the
labels' sensitivity): this module reads the stage's inputs and uses both, and the plots' choice
of cells; the rules themselves import none of them, so no module here imports one that imports
it back. Kept free of torch (the task kind comes from :mod:`phasezoo.dataset_facts`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from phasezoo.boundaries import label_zoo
from phasezoo.config import ZooSpec
from phasezoo.integrity import check
from phasezoo.phases import aggregate_cell, landscape_epoch
from phasezoo.plots import profile_cells
from phasezoo.dataset_facts import dataset_facts


def zoo_phases(zoo: ZooSpec, results_dir: str | Path) -> pd.DataFrame:
    """One row per cell of ``zoo``: grid coordinates, aggregates, the phase label by the zoo's
    ``phases`` settings and its sensitivity (:func:`phasezoo.boundaries.label_zoo`)."""
    task, rows = dataset_facts(zoo.dataset.name).task, []
    for cell in zoo.cells():
        base = Path(results_dir) / zoo.name / cell.id
        metrics = pd.read_parquet(check(base / "metrics.parquet"))
        pairs = pd.read_parquet(check(base / "pairs.parquet"))
        epoch = landscape_epoch(metrics, zoo.metrics.landscape_epoch)
        agg = aggregate_cell(metrics, pairs, epoch, task)
        rows.append({"zoo": zoo.name, "cell": cell.id,
                     "temperature_name": cell.temperature[0],
                     "temperature_value": float(cell.temperature[1]),
                     "load_name": cell.load[0], "load_value": float(cell.load[1]),
                     "landscape_epoch": epoch, **agg})
    return label_zoo(pd.DataFrame(rows), zoo.phases)


def profile_planes(phases: pd.DataFrame, results_dir: str | Path) -> list[dict]:
    """The loss planes that the landscape-profile picture shows: for each cell that
    :func:`phasezoo.plots.profile_cells` picks, its lowest live seed's ``topo_plane`` at the
    landscape epoch (none for a cell without one: topology off, or every seed diverged)."""
    out = []
    for row in profile_cells(phases).to_dict("records"):
        metrics = pd.read_parquet(check(Path(results_dir) / row["zoo"] / row["cell"]
                                        / "metrics.parquet"))
        if "topo_plane" not in metrics:
            continue
        at = metrics[(metrics["epoch"] == row["landscape_epoch"]) & ~metrics["diverged"]
                     & (metrics["topo_plane"].map(len) > 0)].sort_values("seed")
        if len(at):
            first = at.iloc[0]
            plane = np.asarray(first["topo_plane"], dtype=float)
            steps = int(round(len(plane) ** 0.5))
            out.append({"title": f"{row['cell']} (seed {int(first['seed'])})",
                        "phase": row["phase"], "grid": plane.reshape(steps, steps)})
    return out
