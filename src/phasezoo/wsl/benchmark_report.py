"""The WSL benchmark's report: the summary as a markdown table, a figure, and both files with
the JSON (:func:`phasezoo.wsl.benchmark.run_benchmark` computes the result)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from phasezoo.wsl.report import write_report_files


FEW_TEST_CELLS = 4  # a score on this many test cells or fewer carries a warning


def markdown(result: dict[str, Any]) -> str:
    """The summary as a table: one row per (task, split), one column per baseline (headline
    score: R² for regression, accuracy for classification; mean ± std over seeds), the
    statistics baselines and the learned methods side by side, and last the number of cells
    the row's models were fit on (training and validation: the fewest over its baselines and
    seeds), so a learned method's score is read with the data it had.

    A score that needs a caveat carries a footnote number: R² below 0 (worse than predicting
    the training mean; with how many cells it was fit on) and scores on at most
    :data:`FEW_TEST_CELLS` test cells. A baseline or method that scored nothing is listed with
    why, so no column is dropped without a word.
    """
    rows: dict[tuple[str, str], dict[str, str]] = {}
    fit_cells: dict[tuple[str, str], list[int]] = {}
    baselines: list[str] = []
    notes: list[str] = []
    for e in result["summary"]:
        rows.setdefault((e["task"], e["split"]), {})[e["baseline"]] = _cell(e, notes)
        if e.get("train_cells") is not None:  # absent in older results
            fit_cells.setdefault((e["task"], e["split"]), []).append(int(e["train_cells"]))
        if e["baseline"] not in baselines:
            baselines.append(e["baseline"])
    lines = [f"# WSL benchmark: {', '.join(result['zoo'])} ({result['n_checkpoints']} checkpoints, "
             f"{result['seeds']} seeds)", "",
             "R² (regression) or accuracy (phase): mean ± standard deviation over seeds (with one "
             "seed: over a bootstrap of the test cells). Splits are grouped by cell; "
             "`leave_phase_out:P` tests on the cells of phase P, `scale_transfer` on the larger "
             "half of the load values, `random[width=w]` on one fixed-architecture subset. "
             "Regression predictions are clipped to the range of the targets each model was fit "
             "on (every target is bounded; `clipped` in the JSON counts them). "
             f"Splits: {result.get('splits', 'computed')}.", "",
             "| task | split | " + " | ".join(baselines) + " | training cells |",
             "|---|---|" + "---|" * (len(baselines) + 1)]
    for (task, split), cells in rows.items():
        fit = min(fit_cells.get((task, split), []), default=None)
        lines.append(f"| {task} | {split} | " + " | ".join(cells.get(b, "–") for b in baselines)
                     + f" | {'–' if fit is None else fit} |")
    if not rows:
        lines.append("\nNo split had enough cells to train, validate and test on.")
    if notes:
        lines += ["", *(f"[{i}] {note}  " for i, note in enumerate(notes, 1))]
    if "learning_curve" in result:
        lines += ["", *curve_markdown(result["learning_curve"])]
    if result["skipped_baselines"]:
        lines += ["", "## Not applicable to this zoo", "",
                  *(f"- {name}: {why}" for name, why in result["skipped_baselines"].items())]
    return "\n".join(lines) + "\n"


def curve_markdown(curve: dict[str, Any]) -> list[str]:
    """The learning curve's section: one row per baseline, one column per number of training
    cells (R² ± its spread), or why it has no point."""
    points = curve["points"]
    head = ["## Learning curve", "",
            f"R² on `{curve['task']}` against the number of training cells: the {curve['split']} "
            "split's training cells taken in nested subsets, its validation and test cells the "
            "same at every point. The learned baselines, and the hyperparameter bar beside them."]
    if not points:
        return head + ["", "No point was scored: no learned baseline applies to this zoo, or its "
                       "random split has too few training cells (see below)."]
    sizes = sorted({p["train_cells"] for p in points})
    names = list(dict.fromkeys(p["baseline"] for p in points))
    rows = ["| baseline | " + " | ".join(f"{k} cells" for k in sizes) + " |",
            "|---|" + "---|" * len(sizes)]
    for name in names:
        by_k = {p["train_cells"]: p for p in points if p["baseline"] == name}
        rows.append(f"| {name} | " + " | ".join(_curve_cell(by_k.get(k)) for k in sizes) + " |")
    return head + [""] + rows


def _curve_cell(point: dict[str, Any] | None) -> str:
    """One learning-curve value: R² ± the spread over seeds (bootstrap with one seed)."""
    if point is None or not _finite(point["r2"]):
        return "–"
    spread = point["std"] if _finite(point["std"]) else point["bootstrap_std"]
    return f"{point['r2']:.3f}" + (f" ± {spread:.3f}" if _finite(spread) else "")


def _cell(entry: dict[str, Any], notes: list[str]) -> str:
    """One table cell: the headline score ± its spread, with footnote numbers for its caveats
    (each distinct caveat text gets one number, added to ``notes``)."""
    score = entry.get("r2") or entry.get("accuracy")
    if score is None:  # summarize() keeps no score that was NaN on every seed
        return "— (one target value in the test cells)"
    spread = score["std"] if _finite(score["std"]) else entry["bootstrap_std"]
    text = f"{score['mean']:.3f}" + (f" ± {spread:.3f}" if _finite(spread) else "")
    caveats = []
    fit, test = entry.get("train_cells"), entry.get("test_cells")  # absent in older results
    if "r2" in entry and score["mean"] < 0:
        caveats.append("below the mean predictor (R² < 0)"
                       + (f"; {fit} training cells" if fit is not None else ""))
    if test is not None and test <= FEW_TEST_CELLS:
        caveats.append(f"scored on {test} test cell{'s' if test != 1 else ''}: too few to "
                       "trust")
    for caveat in caveats:
        if caveat not in notes:
            notes.append(caveat)
        text += f" [{notes.index(caveat) + 1}]"
    return text


def _finite(x: float | None) -> bool:
    """A number to print: not NaN, not an infinity, not null (a result read back from JSON)."""
    return x is not None and bool(np.isfinite(x))


def plot(result: dict[str, Any], out: str | Path) -> Path:
    """``benchmark.png``: :func:`figure`, saved."""
    import matplotlib.pyplot as plt

    fig = figure(result)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def figure(result: dict[str, Any]):
    """One panel per task: each baseline's headline score per split (bars, ± the spread), one
    colour per baseline in every panel, the legend above the panels (only baselines drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries = [e for e in result["summary"] if ("r2" in e or "accuracy" in e)]
    tasks = list(dict.fromkeys(e["task"] for e in entries))
    baselines = list(dict.fromkeys(e["baseline"] for e in entries))
    if not tasks:  # nothing was scored (a zoo too small to split): say so in the picture
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no split had enough cells", ha="center", va="center")
        ax.axis("off")
        return fig
    colors = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(baselines)}
    points = result.get("learning_curve", {}).get("points", [])
    panels = len(tasks) + bool(points)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.6 * panels + 0.6), squeeze=False)
    if points:
        _curve_panel(axes[-1, 0], result["learning_curve"], colors)
    drawn, clipped = set(), False
    for ax, task in zip(axes[:, 0], tasks):
        rows = [e for e in entries if e["task"] == task and "[" not in e["split"]]
        d, c = _panel(ax, rows, baselines, colors)
        drawn, clipped = drawn | d, clipped or c
        ax.set_ylabel("accuracy" if task == "phase" else "R²")
        ax.set_title(TASK_TITLES.get(task, task))
    handles = [Patch(color=colors[b], label=b) for b in baselines if b in drawn]
    if clipped:
        handles.append(Line2D([], [], marker="v", color="black", ls="", label="below −1: bar cut"))
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 8), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return fig


# What each task asks, for a reader of the picture who has not seen the task names.
TASK_TITLES = {"test_accuracy": "Predict a checkpoint's test accuracy from its weights",
               "generalization_gap": "Predict its generalization gap (train − test accuracy)",
               "phase": "Predict its cell's phase",
               "temperature_value": "Predict log2 of its temperature value",
               "load_value": "Predict log2 of its load value"}


def _curve_panel(ax, curve: dict[str, Any], colors: dict) -> None:
    """The learning curve: R² against training cells (log scale), one line per baseline in its
    colour of the other panels, ± its spread as a band."""
    for name in dict.fromkeys(p["baseline"] for p in curve["points"]):
        pts = [p for p in curve["points"] if p["baseline"] == name and _finite(p["r2"])]
        k = np.array([p["train_cells"] for p in pts], dtype=float)
        r2 = np.array([p["r2"] for p in pts])
        spread = np.array([p["std"] if _finite(p["std"]) else p["bootstrap_std"] for p in pts],
                          dtype=float)
        ax.plot(k, np.maximum(r2, -1.0), "o-", color=colors.get(name, "grey"), label=name)
        ax.fill_between(k, np.maximum(r2 - spread, -1.0), np.minimum(r2 + spread, 1.0),
                        color=colors.get(name, "grey"), alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training cells (validation and test cells fixed)")
    ax.set_ylabel("R²")
    ax.set_ylim(-1.05, 1.05)
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(f"Learning curve: {TASK_TITLES.get(curve['task'], curve['task']).lower()} "
                 "(R² below −1 drawn at −1)")


def _panel(ax, rows: list[dict], baselines: list[str], colors: dict) -> tuple[set[str], bool]:
    """One task's bars: each baseline's headline score per split (± its spread), a score below
    −1 cut at −1 and marked; the baselines drawn and whether any bar was cut."""
    splits = list(dict.fromkeys(e["split"] for e in rows))
    scored = {e["baseline"] for e in rows
              if _finite((e.get("r2") or e.get("accuracy") or {}).get("mean"))}
    baselines = [b for b in baselines if b in scored]  # a slot only for what this panel has
    width = 0.8 / max(1, len(baselines))
    drawn, cut = set(), False
    for j, b in enumerate(baselines):
        vals, errs = [], []
        for sp in splits:
            e = next((r for r in rows if r["split"] == sp and r["baseline"] == b), None)
            score = None if e is None else e.get("r2") or e.get("accuracy")
            mean = score["mean"] if score and _finite(score["mean"]) else np.nan
            spread = np.nan if e is None else (score["std"] if score and _finite(score["std"])
                                               else e.get("bootstrap_std"))
            vals.append(mean)
            errs.append(min(spread, 1.0) if _finite(spread) else np.nan)
        vals = np.asarray(vals, dtype=float)
        if np.isfinite(vals).any():
            drawn.add(b)
        x = np.arange(len(splits)) + j * width
        ax.bar(x, np.maximum(vals, -1.0), width, yerr=errs, color=colors[b])
        low = vals < -1.0
        if low.any():
            cut = True
            ax.plot(x[low], np.full(low.sum(), -1.05), "v", color="black", ms=4)
    ax.set_xticks(np.arange(len(splits)) + 0.4 - width / 2, splits, fontsize=8)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylim(-1.12, 1.1)  # R² ≤ 1, accuracy ∈ [0, 1]; worse than −1 is cut at −1 and marked
    return drawn, cut


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` in ``out_dir``, each renamed
    into place and the JSON last (:mod:`phasezoo.wsl.report`); returns (json, md)."""
    return write_report_files(out_dir, "benchmark", result, markdown(result), plot)
