"""Diagnosis runs: the MD tree paper's cases on its published collection, and every method on a
phasezoo zoo with grouped splits; results as ``diagnosis.{json,md,png}``.

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

from phasezoo.splits import ZooSplits
from phasezoo.wsl.diagnosis import (LOAD_OF_TASK, METHODS, TASKS, DiagnosisUnsupported,
                                    add_labels, fit_diagnosis, labelled)
from phasezoo.wsl.report import write_report_files

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


def score_split(train: pd.DataFrame, test: pd.DataFrame, task: str, method: str) -> dict:
    """Fit on ``train``, score on ``test``: accuracy, rows, and why not when unsupported."""
    if not len(labelled(train, task)) or not len(labelled(test, task)):
        return {"skipped": "no labelled (non-optimal) cell on one side of the split"}
    try:
        d = fit_diagnosis(train, task, method)
        return {"accuracy": d.score(test), "n_train": d.n_train,
                "n_test": len(labelled(test, task)), "thresholds": list(d.thresholds)}
    except DiagnosisUnsupported as err:
        return {"skipped": str(err)}


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
            out.append(_summary({"case": case.name, "task": case.task, "method": method,
                                 "paper": case.paper.get(method)}, runs))
    return out


def _summary(head: dict[str, Any], runs: list[dict]) -> dict[str, Any]:
    scored = [r for r in runs if "accuracy" in r and np.isfinite(r["accuracy"])]
    if not scored:
        return head | {"skipped": next((r["skipped"] for r in runs if "skipped" in r),
                                       "no test row")}
    acc = 100 * np.array([r["accuracy"] for r in scored])
    return head | {"accuracy": float(acc.mean()), "std": float(acc.std()), "runs": len(scored),
                   "n_train": float(np.mean([r["n_train"] for r in scored])),
                   "n_test": float(np.mean([r["n_test"] for r in scored]))}


def ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries by task, then scenario (first-seen order), then method (:data:`METHODS` order)."""
    cases = list(dict.fromkeys(e["case"] for e in entries))
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(entries, key=lambda e: (TASKS.index(e["task"]), cases.index(e["case"]),
                                          rank.get(e["method"], len(rank))))


def best_per_task(entries: list[dict[str, Any]]) -> dict[str, str]:
    """The method with the highest mean accuracy over each task's scenarios (all scored)."""
    frame = pd.DataFrame([e for e in entries if "accuracy" in e])
    if frame.empty:
        return {}
    full = frame.groupby(["task", "method"]).agg(acc=("accuracy", "mean"), n=("accuracy", "size"))
    most = full.groupby("task")["n"].transform("max")
    full = full[full["n"] == most].reset_index()
    return {t: g.sort_values("acc", ascending=False)["method"].iloc[0]
            for t, g in full.groupby("task")}


def markdown(result: dict[str, Any]) -> str:
    """The report's table: one row per scenario × method."""
    lines = [f"# Diagnosis: {result['subject']}", "", result["protocol"], "",
             "| task | scenario | method | accuracy (%) | ± | paper (%) | train rows | test rows |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for e in result["entries"]:
        if "accuracy" not in e:
            lines.append(f"| {e['task']} | {e['case']} | {e['method']} | skipped: "
                         f"{e['skipped']} | | | | |")
            continue
        paper = "" if e.get("paper") is None else f"{e['paper']:.2f}"
        lines.append(f"| {e['task']} | {e['case']} | {e['method']} | {e['accuracy']:.2f} | "
                     f"{e['std']:.2f} | {paper} | {e['n_train']:.0f} | {e['n_test']:.0f} |")
    lines += ["", "Best method per task (mean over its scenarios): "
              + (", ".join(f"{t}: **{m}**" for t, m in result["best"].items()) or "none"), ""]
    return "\n".join(lines + [f"- {n}" for n in result.get("notes", [])]) + "\n"


def plot(result: dict[str, Any], out: str | Path) -> Path:
    """The table as a picture: accuracy per scenario (rows) and method (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = pd.DataFrame([e for e in result["entries"] if "accuracy" in e])
    rows = len(scored.drop_duplicates(["task", "case"])) if len(scored) else 1
    fig, ax = plt.subplots(figsize=(10, 2 + 0.45 * rows))
    if scored.empty:
        ax.text(0.5, 0.5, "no scenario had labelled cells on both sides", ha="center")
        ax.axis("off")
    else:
        grid = scored.pivot_table(index=["task", "case"], columns="method", values="accuracy")
        grid = grid[[m for m in METHODS if m in grid.columns]]
        im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right")
        ax.set_yticks(range(grid.shape[0]), [f"{t}: {c}" for t, c in grid.index])
        for (i, j), v in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center",
                        color="white" if v < 60 else "black", fontsize=8)
        fig.colorbar(im, ax=ax, label="test accuracy (%)")
    ax.set_title(f"Diagnosis accuracy: {result['subject']}")
    fig.tight_layout()
    fig.savefig(out, dpi=120, format="png")
    plt.close(fig)
    return Path(out)


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``diagnosis.json``, ``diagnosis.md`` and ``diagnosis.png`` in ``out_dir`` (JSON last)."""
    return write_report_files(out_dir, "diagnosis", result, markdown(result), plot)


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
ZOO_COLUMNS = ("zoo", "cell", "seed", "epoch", "diverged", "phase", "temperature_name",
               "temperature_value", "load_name", "load_value", "train_loss", "train_accuracy",
               "test_loss", "test_accuracy", "hessian_top_eigenvalue", "hessian_trace",
               "num_parameters", "hp_dataset", "landscape_epoch", "cell_mc", "cell_mc_peak",
               "cell_mc_loss", "cell_cka", "cell_linear_barrier")
ZOO_OPTIONAL = ("alpha_mean", "farms_alpha_mean", "hp_data_fraction")
TEMPERATURE_COLUMN = {"batch_size": "bs", "lr": "lr"}
LOAD_COLUMN = {"width": "width", "data_fraction": "data", "beta": "beta"}


def zoo_rows(path_or_id: str) -> pd.DataFrame:
    """The metadata of a published zoo (no weights), through ``datasets.load_dataset``.

    Raises:
        ValueError: naming the first column the diagnosis needs that the zoo lacks.
    """
    import datasets

    ds = datasets.load_dataset(path_or_id, split="train")
    missing = [c for c in ZOO_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path_or_id}: column '{missing[0]}' is missing; the diagnosis needs "
                         "a zoo published by this phasezoo (phasezoo publish)")
    keep = [c for c in (*ZOO_COLUMNS, *ZOO_OPTIONAL) if c in ds.column_names]
    return ds.select_columns(keep).to_pandas()


def zoo_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell at its landscape epoch: the phase table's aggregates
    (:func:`phasezoo.phases.aggregate_cell`) from a published zoo's rows."""
    from phasezoo.data import task_kind
    from phasezoo.phases import aggregate_cell

    out = []
    for cell, group in rows.groupby("cell", sort=True):
        first = group.iloc[0]
        epoch = int(first["landscape_epoch"])
        pairs = pd.DataFrame([{c: first[f"cell_{c}"] for c in
                               ("mc", "mc_peak", "mc_loss", "cka", "linear_barrier")}])
        at = group[group["epoch"] == epoch]
        agg = aggregate_cell(at, pairs, epoch, task_kind(str(first["hp_dataset"])))
        data = first.get("hp_data_fraction", 1.0)
        out.append({c: first[c] for c in ("zoo", "cell", "phase", "temperature_name",
                                          "temperature_value", "load_name", "load_value")}
                   | agg | {"task_kind": task_kind(str(first["hp_dataset"])),
                            "num_parameters": float(at["num_parameters"].mean()),
                            "data_fraction": float(first["load_value"]
                                                   if first["load_name"] == "data_fraction"
                                                   else data)})
    return pd.DataFrame(out)


def diagnosis_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """A zoo's cells (:func:`zoo_cells`) under the MD tree's column names, with the labels of
    every task its grid allows; cells without a finite test score (all seeds diverged) are
    left out, so they are neither labelled nor the best of a neighbour's slice.

    Data amounts are fractions of the zoo's training split (``log_data_amount``), parameters
    the model's count (``log_para_amount``).
    """
    from phasezoo.tasks import error_percent

    temp = TEMPERATURE_COLUMN[cells["temperature_name"].iloc[0]]
    load = LOAD_COLUMN[cells["load_name"].iloc[0]]
    kind = cells["task_kind"].iloc[0]
    test_error = error_percent(kind, cells["test_accuracy"].to_numpy(float))
    frame = pd.DataFrame({
        "zoo": cells["zoo"], "cell": cells["cell"], "phase": cells["phase"],
        "load_value": cells["load_value"], temp: cells["temperature_value"],
        load: cells["load_value"], "train_error": cells["train_error"], "test_error": test_error,
        "train_loss": cells["train_loss"], "test_loss": cells["test_loss"],
        "mode_connectivity_peak": cells["mc_peak"], "mode_connectivity": cells["mc"],
        "hessian_t": cells["ln_hessian_trace"], "hessian_e": cells["ln_hessian_top_eigenvalue"],
        "CKA": cells["cka"], "alpha_mean": cells["alpha_mean"],
        "farms_alpha_mean": cells["farms_alpha_mean"],
        "log_data_amount": np.log(cells["data_fraction"].to_numpy(float)),
        "log_para_amount": np.log(cells["num_parameters"].to_numpy(float)),
        "score": -test_error})
    frame = frame[np.isfinite(frame["score"])]
    if frame.empty:
        raise ValueError(f"zoo {cells['zoo'].iloc[0]}: no cell has a finite test score (every "
                         "seed diverged); nothing to diagnose")
    loads = (load,) if load in LOAD_OF_TASK.values() else ()
    return add_labels(frame, temp, loads, () if loads else (load,), "score")


def zoo_tasks(frame: pd.DataFrame) -> list[str]:
    """The tasks whose labels a diagnosis frame carries."""
    return [t for t in TASKS if t in frame]


def zoo_report(frame: pd.DataFrame, splits: ZooSplits, seeds: int,
               sources: dict[str, pd.DataFrame] | None = None,
               methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    """Every method × task on a zoo's diagnosis frame: the zoo's random and scale-transfer
    splits (train + validation cells fit, test cells score; seeds ``0 … seeds-1``) and, for
    each ``sources`` zoo, dataset transfer (fit on all of its cells, score on all of this
    zoo's)."""
    entries, zoo = [], str(frame["zoo"].iloc[0])
    for task in zoo_tasks(frame):
        for method in methods:
            by_split: dict[str, list[dict]] = {}
            for seed in range(seeds):
                for s in splits.for_seed(frame, seed):
                    if s.name in ("random", "scale_transfer"):
                        train = frame.iloc[np.concatenate([s.train, s.val])]
                        by_split.setdefault(s.name, []).append(
                            score_split(train, frame.iloc[s.test], task, method))
            for name, src in (sources or {}).items():
                if task in src:
                    by_split[f"transfer from {name}"] = [score_split(src, frame, task, method)]
            entries += [_summary({"case": name, "task": task, "method": method}, runs)
                        for name, runs in by_split.items()]
    entries = ordered(entries)
    counts = {t: frame[t].value_counts().to_dict() for t in zoo_tasks(frame)}
    return {"subject": zoo, "entries": entries, "best": best_per_task(entries),
            "tasks": zoo_tasks(frame), "labels": counts,
            "protocol": (f"Cells: {len(frame)} with a test score. Splits: {splits.source}; "
                         f"random and scale transfer, seeds 0–{seeds - 1}; the train and "
                         "validation cells fit, the test cells score (MD tree thresholds have "
                         "no hyperparameter to select). Labels per task: "
                         + "; ".join(f"{t} {c}" for t, c in counts.items()) + "."),
            "notes": ["`bs_failure` classes name the temperature: `large` = temperature too "
                      "large (batch too small, or learning rate too large).",
                      "Accuracy counts only cells whose label is not `optimal`."]}
