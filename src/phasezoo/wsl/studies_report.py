"""The downstream studies' report: ``studies.{json,md,png}`` (per-phase tables and figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from phasezoo.wsl import alphaprune, regimes


def write_report(result: dict[str, Any], out_dir: str | Path) -> Path:
    """``studies.json``, ``studies.md``, ``studies.png`` and the three-regime diagram
    ``regimes.png`` in ``out_dir``, each renamed into place and the JSON last
    (:mod:`phasezoo.wsl.report`); returns the markdown."""
    from phasezoo.atomic import write_atomic
    from phasezoo.wsl.report import write_report_files

    if "regimes" in result:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        title = f"{', '.join(result['zoo'])}: three regimes of pruning (epoch {result['epoch']})"
        write_atomic(Path(out_dir) / "regimes.png",
                     lambda tmp: regimes.diagram(result["regimes"], tmp, title))
    return write_report_files(out_dir, "studies", result, markdown(result), plot)[1]


def markdown(result: dict[str, Any]) -> str:
    """Per phase, mean ± std over cells; the last row of each table is the Kruskal–Wallis
    p-value. The pruning-allocation comparison, when present, is a second table."""
    allocation = [m for m in result["kruskal_p"] if m.startswith("alpha_vs_")]
    balance = [m for m in result["kruskal_p"] if m.startswith("tb_gain_")]
    measures = [m for m in result["kruskal_p"] if m not in allocation + balance]
    lines = [f"# Downstream studies by phase: {', '.join(result['zoo'])} (epoch {result['epoch']})",
             "", "Accuracy change on the test split: `*_gain` = averaged model − mean member "
             "(naive, or after weight matching); `pruned_s_drop` = member − pruned at sparsity s; "
             "`finetune_accuracy` = test accuracy on the transfer dataset after fine-tuning "
             "(head replaced), `finetune_gain` = that − the same architecture trained from "
             "scratch with the same budget. Kruskal–Wallis p: does the phase separate the cells?",
             "", f"Score: {result.get('score', 'accuracy')}; gains and drops are signed so that a "
             "positive gain is an improvement and a positive drop a loss, whatever the score.",
             "", *_phase_table(result, measures)]
    lines += _applicability(result)
    if allocation:
        lines += ["", "## Pruning allocation", "",
                  "Accuracy after magnitude pruning with AlphaPruning's α allocation (ε = "
                  f"{alphaprune.EPSILON}) minus uniform per-layer pruning (`alpha_vs_uniform_s`) "
                  "and minus global pruning (`alpha_vs_global_s`) at sparsity s: positive = α "
                  "allocation keeps more accuracy.", "", *_phase_table(result, allocation)]
    if balance:
        lines += ["", "## TempBalance", "",
                  "Test accuracy on the transfer dataset after fine-tuning with TempBalance's "
                  "layer-wise rates (from each layer's α, measured before every epoch) minus the "
                  "same run at a uniform rate (`tb_gain_f`), on a fraction f of its training "
                  "rows.", "", *_phase_table(result, balance)]
    if "regimes" in result:
        lines += regimes.markdown(result["regimes"], result.get("score", "accuracy"))
    return "\n".join(lines) + "\n"


def _phase_table(result: dict[str, Any], measures: list[str]) -> list[str]:
    """Markdown rows: one per phase (mean ± std over cells), then the Kruskal–Wallis p."""
    head = ["phase", "cells", *measures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for phase, d in result["per_phase"].items():
        lines.append(f"| {phase} | {d['cells']} | " + " | ".join(
            _mean_std(d[m]["mean"], d[m]["std"]) for m in measures) + " |")
    lines.append("| Kruskal–Wallis p | | " + " | ".join(
        p_value(result, m) for m in measures) + " |")
    return lines


def _mean_std(mean: float | None, std: float | None) -> str:
    """``+m ± s``; the mean alone when there is no spread (one cell), ``—`` with no value."""
    if mean is None or not np.isfinite(mean):
        return "— (no cell measured)"
    return f"{mean:+.3f}" + (f" ± {std:.3f}" if std is not None and np.isfinite(std) else "")


def p_value(result: dict[str, Any], measure: str, digits: int = 3) -> str:
    """A measure's Kruskal–Wallis p, or ``— (why)`` where no test was made (one phase, a
    constant: :func:`phasezoo.wsl.studies.kruskal_problem`)."""
    p = result["kruskal_p"][measure]
    if p is not None and np.isfinite(p):
        return f"{p:.{digits}g}"
    return f"— ({result.get('kruskal_note', {}).get(measure, 'no test')})"


def _applicability(result: dict[str, Any]) -> list[str]:
    """The studies that apply to no cell, and those left out on some cells, with why."""
    nowhere, partly = result.get("not_applicable", {}), result.get("partly_applicable", {})
    if not nowhere and not partly:
        return []
    return ["", "## Not applicable to this zoo", "",
            *(f"- {study}: not applicable, {why}" for study, why in nowhere.items()),
            *(f"- {study}: {why}" for study, why in partly.items())]


def _by_sparsity(ax, result: dict[str, Any], key: str, ylabel: str, xlabel: str,
                 title: str) -> None:
    """One line per phase of a per-sparsity measure (mean ± std over cells)."""
    from phasezoo.vocabulary import PHASE_COLORS

    sparsities = result["sparsities"]
    for phase, d in result["per_phase"].items():
        # as floats: a result read back from its JSON holds null where a value is undefined
        mean = np.array([d[key.format(s)]["mean"] for s in sparsities], dtype=float)
        std = np.array([d[key.format(s)]["std"] for s in sparsities], dtype=float)
        ax.errorbar(sparsities, mean, yerr=np.nan_to_num(std), marker="o", capsize=3,
                    color=PHASE_COLORS.get(phase), label=f"{phase} ({d['cells']} cells)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (Kruskal–Wallis p at 0.8: {p_value(result, key.format(0.8), 2)})")
    ax.legend(fontsize=8)


# The middle panel's methods, in greys and hatches: the other panels' colours are the phases'
# (phasezoo.vocabulary.PHASE_COLORS), so a colour never means a phase in one panel and a method in
# the next.
METHOD_COLORS = ("#4d4d4d", "#a6a6a6", "#ffffff", "#d9d9d9")
METHOD_HATCHES = ("", "", "//", "..")


def plot(result: dict[str, Any], out: str | Path) -> Path:
    """Left: accuracy lost to magnitude pruning vs sparsity, one line per phase (mean ± std over
    cells). Middle: accuracy change of naive and weight-matched seed averaging per phase.
    Right (when measured): α-allocated minus uniform per-layer pruning vs sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = result["per_phase"]
    allocation = "alpha_vs_uniform_0.8" in result["kruskal_p"]
    fig, axes = plt.subplots(1, 3 if allocation else 2, figsize=(16 if allocation else 11, 5))
    left, right = axes[0], axes[1]
    _by_sparsity(left, result, "pruned_{:g}_drop", "test accuracy lost",
                 "sparsity (global magnitude pruning)", "pruning")
    if allocation:
        _by_sparsity(axes[2], result, "alpha_vs_uniform_{:g}", "α allocation − uniform",
                     "sparsity (per-layer magnitude pruning)", "AlphaPruning vs uniform")
        axes[2].axhline(0, color="black", lw=0.5)
    x = np.arange(len(phases))
    bars = [(m, label) for m, label in (("naive_gain", "averaging, naive"),
                                        ("aligned_gain", "averaging, weight-matched"),
                                        ("finetune_gain", f"fine-tuned on "
                                         f"{result['transfer_dataset']} − scratch"))
            if m in result["kruskal_p"]]
    tb = sorted((m for m in result["kruskal_p"] if m.startswith("tb_gain_")),
                key=lambda m: float(m.rsplit("_", 1)[1]))
    if tb:  # the smallest data fraction, where the seed's claim says TempBalance helps most
        bars.append((tb[0], f"TempBalance − uniform rate ({tb[0].rsplit('_', 1)[1]} of the data)"))
    width = 0.8 / max(len(bars), 1)
    for j, (key, label) in enumerate(bars):
        right.bar(x + width * j, np.array([d[key]["mean"] for d in phases.values()], dtype=float),
                  width, capsize=3,
                  yerr=np.nan_to_num(np.array([d[key]["std"] for d in phases.values()],
                                              dtype=float)),
                  color=METHOD_COLORS[j % len(METHOD_COLORS)], edgecolor="black", lw=0.5,
                  hatch=METHOD_HATCHES[j % len(METHOD_HATCHES)],
                  label=f"{label} (p {p_value(result, key, 2)})")
    right.set_xticks(x + 0.4 - width / 2, list(phases))
    right.set_xlabel("phase")
    right.axhline(0, color="black", lw=0.5)
    right.set_ylabel("test accuracy gain")
    right.set_title("seed averaging and fine-tuning transfer")
    # below the axes: inside, it covered the bars
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1,
                 frameon=False)
    fig.suptitle(f"{', '.join(result['zoo'])}: downstream studies by phase (epoch {result['epoch']})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
