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
    score: R² for regression, accuracy for classification; mean ± std over seeds).

    A score that needs a caveat carries a footnote number: R² below 0 (worse than predicting
    the training mean; with how many cells it was fit on) and scores on at most
    :data:`FEW_TEST_CELLS` test cells. A baseline or method that scored nothing is listed with
    why, so no column is dropped without a word.
    """
    rows: dict[tuple[str, str], dict[str, str]] = {}
    baselines: list[str] = []
    notes: list[str] = []
    for e in result["summary"]:
        rows.setdefault((e["task"], e["split"]), {})[e["baseline"]] = _cell(e, notes)
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
             "| task | split | " + " | ".join(baselines) + " |",
             "|---|---|" + "---|" * len(baselines)]
    for (task, split), cells in rows.items():
        lines.append(f"| {task} | {split} | " + " | ".join(cells.get(b, "–") for b in baselines)
                     + " |")
    if not rows:
        lines.append("\nNo split had enough cells to train, validate and test on.")
    if notes:
        lines += ["", *(f"[{i}] {note}  " for i, note in enumerate(notes, 1))]
    if result["skipped_baselines"]:
        lines += ["", "## Not applicable to this zoo", "",
                  *(f"- {name}: {why}" for name, why in result["skipped_baselines"].items())]
    return "\n".join(lines) + "\n"


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
    """One panel per task: each baseline's headline score per split (bars, ± the spread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in result["summary"] if ("r2" in e or "accuracy" in e)]
    tasks = list(dict.fromkeys(e["task"] for e in entries))
    baselines = list(dict.fromkeys(e["baseline"] for e in entries))
    if not tasks:  # nothing was scored (a zoo too small to split): say so in the picture
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no split had enough cells", ha="center", va="center")
        ax.axis("off")
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return Path(out)
    fig, axes = plt.subplots(len(tasks), 1, figsize=(11, 2.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        rows = [e for e in entries if e["task"] == task and "[" not in e["split"]]
        splits = list(dict.fromkeys(e["split"] for e in rows))
        width = 0.8 / max(1, len(baselines))
        for j, b in enumerate(baselines):
            vals, errs = [], []
            for sp in splits:
                e = next((r for r in rows if r["split"] == sp and r["baseline"] == b), None)
                score = None if e is None else e.get("r2") or e.get("accuracy")
                vals.append(np.nan if score is None else max(score["mean"], -1.0))
                spread = np.nan if e is None else (score["std"] if score and np.isfinite(
                    score["std"]) else e["bootstrap_std"])
                errs.append(min(spread, 1.0) if np.isfinite(spread) else np.nan)
            ax.bar(np.arange(len(splits)) + j * width, vals, width, yerr=errs, label=b)
        ax.set_xticks(np.arange(len(splits)) + 0.4 - width / 2, splits, fontsize=8)
        ax.set_ylabel("accuracy" if task == "phase" else "R² (clipped at −1)")
        ax.set_title(task)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylim(-1.1, 1.1)  # R² ≤ 1, accuracy ∈ [0, 1]; worse than −1 is drawn at −1
    axes[0, 0].legend(fontsize=8, ncol=len(baselines), loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` in ``out_dir``, each renamed
    into place and the JSON last (:mod:`phasezoo.wsl.report`); returns (json, md)."""
    return write_report_files(out_dir, "benchmark", result, markdown(result), plot)
