"""The anchors' published grids in ``tests/data`` as per-cell tables (``train_error`` %, ``mc``,
``cka``) that :func:`phasezoo.phases.label_cells` reads, and the per-grid table of
``docs/protocols.md`` ("Phase boundaries: conventions and their data") computed from them.

Regenerate the doc table with ``.venv/bin/python tests/phasezoo_anchor_grids.py``;
``tests/test_boundaries.py`` fails when the committed table differs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phasezoo.boundaries import summary_table
from phasezoo.protocols import PHASE_THRESHOLDS

DATA = Path(__file__).parent / "data"
DOC = Path(__file__).parents[1] / "docs" / "protocols.md"
DOC_MARKERS = ("<!-- boundaries-table: start (tests/phasezoo_anchor_grids.py) -->",
               "<!-- boundaries-table: end -->")
DELTA = 0.1  # the schema's default phases.sensitivity


def ptmz_cells(name: str) -> pd.DataFrame:
    """One PTMZ grid (``cifar10_resnet18`` or ``cifar10_resnet50``): per (width, batch size),
    the seed-mean train error and the landscape metrics PTMZ stores per cell (repeated over
    its seeds)."""
    rows = pd.read_csv(DATA / "ptmz" / f"{name}_summary.csv")
    rows = rows.assign(train_error=100 * (1 - rows.train_acc))
    return rows.groupby(["width", "batchsize"]).agg(
        train_error=("train_error", "mean"), mc=("curve_mc_train_error", "first"),
        cka=("representation_similarity", "first")).reset_index()


def md_tree_cells(full_data_only: bool = False) -> pd.DataFrame:
    """The MD tree's ResNet-18 configurations (seed means, LLT's code), in label_cells' column
    names; ``full_data_only`` keeps the 169 trained on all of CIFAR-10 (``data`` = 10 tenths)."""
    md = pd.read_csv(DATA / "md-tree" / "dataframe_normal_public.csv")
    if full_data_only:
        md = md[md["data"] == 10]
    return md.rename(columns={"mode_connectivity": "mc", "CKA": "cka"}).reset_index(drop=True)


def published_grids() -> dict[str, tuple[pd.DataFrame, dict[str, float]]]:
    """Each published grid with the thresholds of the protocol that measured it."""
    ptmz, llt = PHASE_THRESHOLDS["ptmz"], PHASE_THRESHOLDS["llt"]
    return {"PTMZ CIFAR-10 ResNet-18 (`ptmz`)": (ptmz_cells("cifar10_resnet18"), ptmz),
            "PTMZ CIFAR-10 ResNet-50 (`ptmz`)": (ptmz_cells("cifar10_resnet50"), ptmz),
            "MD tree ResNet-18, 10 data fractions (`llt`)": (md_tree_cells(), llt),
            "MD tree ResNet-18, full data only (`llt`)": (md_tree_cells(True), llt)}


def published_table() -> str:
    """The markdown table the doc holds between :data:`DOC_MARKERS`."""
    return summary_table(published_grids(), DELTA)


def doc_table() -> str:
    """The table as ``docs/protocols.md`` holds it now."""
    text = DOC.read_text()
    start, end = (text.index(m) for m in DOC_MARKERS)
    return text[start + len(DOC_MARKERS[0]):end].strip()


if __name__ == "__main__":
    print(published_table())
