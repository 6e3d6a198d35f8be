"""A published zoo as a diagnosis frame: one row per cell at its landscape epoch, under the MD
tree's column names, with the labels of every task its grid allows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from phasezoo.wsl.diagnosis import LOAD_OF_TASK, add_labels

ZOO_COLUMNS = ("zoo", "cell", "seed", "epoch", "diverged", "phase", "temperature_name",
               "temperature_value", "load_name", "load_value", "train_loss", "train_accuracy",
               "test_loss", "test_accuracy", "hessian_top_eigenvalue", "hessian_trace",
               "num_parameters", "hp_dataset", "landscape_epoch", "cell_mc", "cell_mc_peak",
               "cell_mc_loss", "cell_cka", "cell_linear_barrier")
ZOO_OPTIONAL = ("alpha_mean", "farms_alpha_mean", "hp_data_fraction")
TEMPERATURE_COLUMN = {"batch_size": "bs", "lr": "lr"}
LOAD_COLUMN = {"width": "width", "data_fraction": "data", "beta": "beta"}


def zoo_rows(path_or_id: str) -> pd.DataFrame:
    """The metadata of a published zoo (no weights), through ``datasets.load_dataset``, the
    zoo verified first (:func:`phasezoo.verify.verified_zoo`).

    Raises:
        ValueError: if the zoo does not verify, or naming the first column the diagnosis needs
            that the zoo lacks.
    """
    import datasets

    from phasezoo.verify import verified_zoo

    ds = datasets.load_dataset(str(verified_zoo(path_or_id)), split="train")
    missing = [c for c in ZOO_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{path_or_id}: column '{missing[0]}' is missing; the diagnosis needs "
                         "a zoo published by this phasezoo (phasezoo publish)")
    keep = [c for c in (*ZOO_COLUMNS, *ZOO_OPTIONAL) if c in ds.column_names]
    return ds.select_columns(keep).to_pandas()


def zoo_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell at its landscape epoch: the phase table's aggregates
    (:func:`phasezoo.phases.aggregate_cell`) from a published zoo's rows."""
    from phasezoo.dataset_facts import dataset_facts
    from phasezoo.phases import aggregate_cell

    out = []
    for _, group in rows.groupby("cell", sort=True):
        first = group.iloc[0]
        epoch = int(first["landscape_epoch"])
        pairs = pd.DataFrame([{c: first[f"cell_{c}"] for c in
                               ("mc", "mc_peak", "mc_loss", "cka", "linear_barrier")}])
        at = group[group["epoch"] == epoch]
        agg = aggregate_cell(at, pairs, epoch, dataset_facts(str(first["hp_dataset"])).task)
        data = first.get("hp_data_fraction", 1.0)
        out.append({c: first[c] for c in ("zoo", "cell", "phase", "temperature_name",
                                          "temperature_value", "load_name", "load_value")}
                   | agg | {"task_kind": dataset_facts(str(first["hp_dataset"])).task,
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
    from phasezoo.task_kinds import error_percent

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
