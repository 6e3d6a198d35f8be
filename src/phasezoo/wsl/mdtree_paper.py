"""The MD tree paper's cases on its published collection (Zhou et al., ICML 2024).

The paper's test set (its noisy collection) is not public; here each case trains on the same
configurations the paper's code samples (its legacy NumPy RNG and seeds 42, 90, 38, 18, 72) and
tests on the basic collection's other configurations. Its figures are shown beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phasezoo.wsl.diagnose import best_per_task, ordered, score_split, summarize
from phasezoo.wsl.diagnosis import METHODS, TASKS, add_labels, labelled

MD_TREE_SEEDS = (42, 90, 38, 18, 72)
METRIC_COLUMNS = ("train_error", "test_error", "train_loss", "test_loss",
                  "mode_connectivity_peak", "hessian_t", "CKA")


@dataclass(frozen=True)
class Case:
    """One of the paper's transfer cases (``benchmark/README.md`` Table B): how the training
    configurations are drawn and the accuracies (%) it reports for Hyper+DT / Val+DT / MD tree."""

    name: str
    task: str
    sample: str  # random | random_data | data_limit | width_limit
    k: int
    paper: dict[str, float]


CASES = (
    Case("dataset transfer, 96 random configurations", "bs_failure", "random", 8,
         {"hyper+dt": 49.56, "val+dt": 72.82, "md_tree": 87.70}),
    Case("scale transfer, data ≤ 5K", "bs_failure", "data_limit", 1,
         {"hyper+dt": 64.74, "val+dt": 51.73, "md_tree": 75.89}),
    Case("scale transfer, parameters ≤ 0.011M", "bs_failure", "width_limit", 2,
         {"hyper+dt": 60.12, "val+dt": 67.55, "md_tree": 82.56}),
    Case("dataset transfer, one random data amount", "width_vs_batch", "random_data", 1,
         {"hyper+dt": 53.54, "val+dt": 55.79, "md_tree": 74.10}),
    Case("scale transfer, data ≤ 5K", "width_vs_batch", "data_limit", 1,
         {"hyper+dt": 53.54, "val+dt": 63.61, "md_tree": 78.16}),
)


def sample_train(frame: pd.DataFrame, sample: str, k: int, seed: int) -> np.ndarray:
    """Boolean mask of the training rows the MD tree's ``sample_train_set`` draws from
    ``frame`` (already restricted to the task's non-optimal rows): the same RNG calls, so the
    same configurations."""
    data, width = sorted(set(frame["data"])), sorted(set(frame["width"]))
    rng = np.random.RandomState(seed)  # the reference seeds NumPy's legacy global RNG
    if sample == "random":
        pairs = [(d, w) for d in data for w in width]
        chosen = {pairs[i] for i in rng.choice(list(range(len(pairs))), size=k, replace=False)}
        return np.array([(d, w) in chosen for d, w in zip(frame["data"], frame["width"])])
    if sample == "random_data":
        return frame["data"].isin(rng.choice(data, size=k, replace=False)).to_numpy()
    if sample == "data_limit":
        return (frame["data"] <= k).to_numpy()
    if sample == "width_limit":
        return (frame["width"] <= k).to_numpy()
    raise ValueError(f"unknown sample type '{sample}'")


def md_tree_cases(frame: pd.DataFrame, methods: tuple[str, ...] = METHODS,
                  seeds: tuple[int, ...] = MD_TREE_SEEDS) -> list[dict[str, Any]]:
    """Every :data:`CASES` entry × method: mean and std of the test accuracy (%) over seeds,
    beside the paper's figure where it gives one."""
    out = []
    for case in CASES:
        rows = labelled(frame, case.task)
        for method in methods:
            runs = []
            for seed in seeds:
                mask = sample_train(rows, case.sample, case.k, seed)
                runs.append(score_split(rows[mask], rows[~mask], case.task, method))
            out.append(summarize({"case": case.name, "task": case.task, "method": method,
                                 "paper": case.paper.get(method)}, runs))
    return out


def read_md_tree_csv(path: str | Path) -> pd.DataFrame:
    """The MD tree's published dataframe, size-checked before it is read (64 MiB: the basic
    collection is 0.6 MB).

    Raises:
        ValueError: naming the file when it is too large or lacks a column the cases need.
    """
    size = Path(path).stat().st_size
    if size > 64 << 20:
        raise ValueError(f"{path}: {size:,} bytes; an MD tree dataframe is far smaller")
    frame = pd.read_csv(path)
    need = {"bs", "width", "data", "test_acc", *METRIC_COLUMNS}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise ValueError(f"{path}: column '{missing[0]}' is missing (not an MD tree dataframe)")
    return frame


def md_tree_report(frame: pd.DataFrame, seeds: tuple[int, ...] = MD_TREE_SEEDS) -> dict[str, Any]:
    """The paper's cases on its published basic collection (``frame`` as published)."""
    frame = add_labels(frame) if "bs_failure" not in frame else frame
    entries = ordered(md_tree_cases(frame, METHODS, seeds))
    return {"subject": "MD tree basic collection (ResNet-18 / CIFAR-10, 1,690 configurations)",
            "protocol": ("Train rows: the configurations the MD tree's code samples for each case "
                         f"(seeds {list(seeds)}); test rows: the rest of the basic collection "
                         "(the paper tests on its noisy collection, which is not public)."),
            "entries": entries, "best": best_per_task(entries), "tasks": list(TASKS)}


# Published-zoo columns the diagnosis reads (``cell_mc_peak`` and ``landscape_epoch`` were added
# to the format with it: a zoo published before has to be published again).
