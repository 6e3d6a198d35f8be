"""Diagnosis runs on a zoo's grouped splits, and the report (``diagnosis.{json,md,png}``) that
both these runs and the MD tree paper's cases (:mod:`phasezoo.wsl.mdtree_paper`) write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phasezoo.splits import ZooSplits
from phasezoo.wsl.diagnosis import METHODS, TASKS, DiagnosisUnsupported, fit_diagnosis, labelled
from phasezoo.wsl.report import write_report_files

# What the picture shows instead of the internal names: a reader of diagnosis.png has not seen
# the code. The markdown table keeps the internal names (they are the JSON keys).
TASK_LABELS = {"bs_failure": "temperature too small or too large?",
               "width_vs_batch": "width or batch size to blame?",
               "data_vs_batch": "data amount or batch size to blame?"}
CASE_LABELS = {"random": "random split", "scale_transfer": "scale transfer"}
METHOD_LABELS = {"md_tree": "MD tree", "md_tree[exhaustive]": "MD tree, exhaustive fit",
                 "md_tree[cka]": "MD tree on CKA", "hyper+dt": "tree: hyperparameters",
                 "val+dt": "tree: validation metrics", "metrics+dt": "tree: landscape metrics",
                 "htsr+dt": "tree: train error + HT-SR α",
                 "metrics+htsr+dt": "tree: landscape + HT-SR α"}


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


def summarize(head: dict[str, Any], runs: list[dict]) -> dict[str, Any]:
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
    """The table as a picture (see :func:`figure`), written as a PNG."""
    import matplotlib.pyplot as plt

    fig = figure(result)
    fig.savefig(out, dpi=120, format="png")
    plt.close(fig)
    return Path(out)


def figure(result: dict[str, Any]):
    """Accuracy per scenario (rows: task and scenario) and method (columns), in human labels
    (:data:`TASK_LABELS`, :data:`CASE_LABELS`, :data:`METHOD_LABELS`): a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = pd.DataFrame([e for e in result["entries"] if "accuracy" in e])
    rows = len(scored.drop_duplicates(["task", "case"])) if len(scored) else 1
    fig, ax = plt.subplots(figsize=(11, 2.6 + 0.45 * rows))
    if scored.empty:
        ax.text(0.5, 0.5, "no scenario had labelled cells on both sides", ha="center")
        ax.axis("off")
    else:
        grid = scored.pivot_table(index=["task", "case"], columns="method", values="accuracy")
        grid = grid[[m for m in METHODS if m in grid.columns]]
        im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [METHOD_LABELS.get(m, m) for m in grid.columns],
                      rotation=30, ha="right")
        ax.set_yticks(range(grid.shape[0]), [f"{TASK_LABELS.get(t, t)}\n{CASE_LABELS.get(c, c)}"
                                             for t, c in grid.index], fontsize=8)
        for (i, j), v in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center",
                        color="white" if v < 60 else "black", fontsize=8)
            else:  # e.g. MD tree on CKA answers only the temperature question
                ax.text(j, i, "skipped\n(see diagnosis.md)", ha="center", va="center",
                        color="grey", fontsize=7)
        fig.colorbar(im, ax=ax, label="test accuracy (%), cells labelled non-optimal")
    ax.set_title(f"Diagnosis accuracy: {result['subject']}")
    fig.tight_layout()
    return fig


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``diagnosis.json``, ``diagnosis.md`` and ``diagnosis.png`` in ``out_dir`` (JSON last)."""
    return write_report_files(out_dir, "diagnosis", result, markdown(result), plot)


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
    # (name, fit rows, scored rows) of every seed's splits, built once for all tasks and methods
    sides = [(s.name, frame.iloc[np.concatenate([s.train, s.val])], frame.iloc[s.test])
             for seed in range(seeds) for s in splits.for_seed(frame, seed)
             if s.name in ("random", "scale_transfer")]
    for task in zoo_tasks(frame):
        for method in methods:
            by_split: dict[str, list[dict]] = {}
            for name, train, test in sides:
                by_split.setdefault(name, []).append(score_split(train, test, task, method))
            for name, src in (sources or {}).items():
                if task in src:
                    by_split[f"transfer from {name}"] = [score_split(src, frame, task, method)]
            entries += [summarize({"case": name, "task": task, "method": method}, runs)
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
