"""Reports that never print an empty result (issue 32): strict JSON, studies and methods that
cannot apply named with why, caveats on scores, the benchmark's progress bar, defaults and
method names."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import pandas as pd
import torch

from phasezoo.models import create_model
from phasezoo.wsl.baselines import TASKS
from phasezoo.wsl.benchmark import run_benchmark
from phasezoo.wsl.benchmark_report import markdown
from phasezoo.wsl.methods import MethodUnsupported, load_method
from phasezoo.wsl.studies import (NO_TRANSFER, SPARSITIES, by_phase, not_applicable,
                                  study_limits, zoo_applicability)
from phasezoo_testkit import zoo_meta, small_mlp, zoo_table

TEST_ACCURACY = tuple(t for t in TASKS if t.name == "test_accuracy")


def strict_loads(text: str):
    """``json.loads`` that refuses Python's NaN / Infinity tokens, as every other reader does."""
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


# --- strict JSON -----------------------------------------------------------------------------

def test_report_json_is_strict_with_null_for_every_missing_number(tmp_path):
    from phasezoo.wsl.report import write_report_files

    result = {"a": math.nan, "b": [math.inf, -math.inf, np.float32("nan"), np.float64(0.5)],
              "c": {"n": np.int64(3), "ok": np.bool_(True), "arr": np.array([1.0, np.nan])},
              "t": (1, math.nan)}
    js, _ = write_report_files(tmp_path, "r", result, "md\n", lambda r, out: out.write_bytes(b""))
    written = strict_loads(js.read_text())
    assert set(written.pop("provenance")) == {"phasezoo_version", "commit"}  # tests/test_hub.py
    assert written == {"a": None, "b": [None, None, None, 0.5],
                                            "c": {"n": 3, "ok": True, "arr": [1.0, None]},
                                            "t": [1, None]}


def test_benchmark_json_of_a_zoo_with_undefined_scores_is_strict(tmp_path):
    """The target is constant within each phase: every per-phase R² (and a left-out phase's
    overall R²) is undefined, and the JSON holds null for them."""
    from phasezoo.wsl.benchmark_report import write_report

    models = [small_mlp(i) for i in range(24)]
    meta = zoo_meta(24, cells=12, test_accuracy=[0.5 + 0.1 * (i % 12 % 3) for i in range(24)])
    result = run_benchmark(zoo_table(models, meta), seeds=1, tasks=TEST_ACCURACY,
                           baselines={"quintiles+linear": ("layer_quintiles", "linear")})
    assert any(not math.isfinite(v["r2"]) for r in result["runs"]
               for v in r["per_phase"].values())  # the case this test is about
    js, _ = write_report(result, tmp_path)
    parsed = strict_loads(js.read_text())
    per_phase = [v["r2"] for r in parsed["runs"] for v in r["per_phase"].values()]
    assert None in per_phase
    assert "— (one target value in the test cells)" in markdown(result)  # leave_phase_out
    assert markdown(parsed) == markdown(result)  # a report read back renders the same


# --- the benchmark's table -------------------------------------------------------------------

def _entry(baseline: str, split: str, mean: float | None, train_cells: int = 12,
           test_cells: int = 6, std: float = 0.1) -> dict:
    entry = {"task": "test_accuracy", "split": split, "baseline": baseline, "n_test": 30,
             "test_cells": test_cells, "train_cells": train_cells, "bootstrap_std": 0.05}
    if mean is not None:
        entry["r2"] = {"mean": mean, "std": std}
    return entry


def _bench(summary: list[dict], skipped: dict | None = None) -> dict:
    return {"zoo": ["z"], "n_checkpoints": 60, "seeds": 2, "splits": "computed",
            "skipped_baselines": skipped or {}, "summary": summary, "runs": []}


def test_a_score_below_the_mean_predictor_names_its_training_cells():
    md = markdown(_bench([_entry("a", "random", -0.25, train_cells=12),
                          _entry("b", "random", 0.4, train_cells=12)]))
    row = next(line for line in md.splitlines() if line.startswith("| test_accuracy | random"))
    assert "-0.250 ± 0.100 [1]" in row and "0.400 ± 0.100 |" in row
    assert "[1] below the mean predictor (R² < 0); 12 training cells" in md


def test_a_score_on_few_test_cells_carries_a_warning_and_footnotes_are_shared():
    md = markdown(_bench([_entry("a", "random", 0.3, test_cells=3),
                          _entry("b", "random", 0.5, test_cells=3),
                          _entry("a", "scale_transfer", 0.3, test_cells=5),
                          _entry("b", "scale_transfer", -0.5, test_cells=1, train_cells=7)]))
    assert md.count("[1] scored on 3 test cells: too few to trust") == 1
    assert "0.300 ± 0.100 [1] | 0.500 ± 0.100 [1] |" in md  # one note, two cells
    assert "| test_accuracy | scale_transfer | 0.300 ± 0.100 |" in md  # 5 cells: no warning
    assert "-0.500 ± 0.100 [2] [3]" in md
    assert "[2] below the mean predictor (R² < 0); 7 training cells" in md
    assert "[3] scored on 1 test cell: too few to trust" in md


def test_an_undefined_score_or_spread_is_said_so_not_printed_as_nan():
    md = markdown(_bench([_entry("a", "random", None),
                          {**_entry("b", "random", 0.2, std=math.nan), "bootstrap_std": math.nan}]))
    assert "nan" not in md.lower()
    assert "— (one target value in the test cells)" in md and "| 0.200 |" in md


def test_a_method_that_cannot_apply_is_listed_with_its_reason():
    class Refuses:
        def fit(self, *args):
            raise MethodUnsupported("refuses: convolutions are not supported")

        def predict(self, rows):
            raise AssertionError("never called")

    class NeverFits:  # scores no split this zoo has
        splits = ("no_such_split",)

        def fit(self, *args):
            raise AssertionError("never called")

    models = [small_mlp(i) for i in range(24)]
    meta = zoo_meta(24, cells=12, test_accuracy=[0.5 + 0.05 * (i % 7) for i in range(24)])
    result = run_benchmark(zoo_table(models, meta), seeds=1, tasks=TEST_ACCURACY, baselines={},
                           methods={"refuses": Refuses, "never": NeverFits})
    assert result["summary"] == []
    assert result["skipped_baselines"]["refuses"] == "refuses: convolutions are not supported"
    assert result["skipped_baselines"]["never"].startswith("no split was scored: the method "
                                                           "scores none of these splits")
    md = markdown(result)
    assert "## Not applicable to this zoo" in md
    assert "- refuses: refuses: convolutions are not supported" in md and "- never: " in md


def test_records_count_the_cells_of_each_side_of_the_split():
    from phasezoo.splits import computed_splits
    from phasezoo.wsl.subsets import splits_for

    models = [small_mlp(i) for i in range(24)]
    meta = zoo_meta(24, cells=12, test_accuracy=[0.5 + 0.05 * (i % 7) for i in range(24)])
    result = run_benchmark(zoo_table(models, meta), seeds=1, tasks=TEST_ACCURACY,
                           baselines={"quintiles+linear": ("layer_quintiles", "linear")})
    by_split = {s.name: s for s in splits_for(computed_splits(meta), meta, TEST_ACCURACY[0], 0)}
    assert result["runs"]
    for r in result["runs"]:
        split = by_split[r["split"]]
        assert r["test_cells"] == meta["cell"].iloc[split.test].nunique()
        fit = np.concatenate([split.train, split.val])
        assert r["train_cells"] == meta["cell"].iloc[fit].nunique()


# --- progress, defaults, names ---------------------------------------------------------------

def test_the_benchmark_shows_one_progress_bar_over_every_fit(capsys):
    from phasezoo.splits import computed_splits
    from phasezoo.wsl.subsets import splits_for

    models = [small_mlp(i) for i in range(24)]
    meta = zoo_meta(24, cells=12, test_accuracy=[0.5 + 0.05 * (i % 7) for i in range(24)])
    base = {"quintiles+linear": ("layer_quintiles", "linear")}
    run_benchmark(zoo_table(models, meta), seeds=2, tasks=TEST_ACCURACY, baselines=base,
                  progress=True)
    fits = sum(len(splits_for(computed_splits(meta), meta, TEST_ACCURACY[0], s))
               for s in range(2))
    err = capsys.readouterr().err
    assert "benchmark" in err and f"{fits}/{fits}" in err
    run_benchmark(zoo_table(models, meta), seeds=1, tasks=TEST_ACCURACY, baselines=base)
    assert capsys.readouterr().err == ""  # progress off by default (the library call)


def test_cli_defaults_are_the_config_schemas():
    from phasezoo.cli import build_parser
    from phasezoo.config_checks import schema

    zoo = schema()["$defs"]["zoo"]["properties"]
    a = build_parser().parse_args(["benchmark", "z", "--out", "o"])
    assert a.seeds == zoo["benchmark"]["properties"]["seeds"]["default"] and a.quiet is False
    s = build_parser().parse_args(["studies", "z", "--out", "o"])
    for key in ("epochs", "lr", "batch_size"):
        assert getattr(s, f"finetune_{key}") == zoo["studies"]["properties"][
            f"finetune_{key}"]["default"]


def test_a_method_is_named_by_itself_not_by_the_name_it_was_found_under(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "class Ridge:\n"
        "    name = 'my-ridge'\n"
        "class Plain:\n"
        "    pass\n"
        "def factory():\n"
        "    return Ridge()\n"
        "def plain_factory():\n"
        "    return Plain()\n"
        "alias = plain_factory\n"
        "anonymous = lambda: Plain()\n")
    assert load_method(f"{path}:factory")[0] == "my-ridge"  # the built method's own name
    assert load_method(f"{path}:Ridge")[0] == "my-ridge"
    assert load_method(f"{path}:alias")[0] == "plain_factory"
    assert load_method(f"{path}:Plain")[0] == "Plain"
    assert load_method(f"{path}:anonymous")[0] == "anonymous"


def test_two_methods_of_one_name_are_refused(tmp_path, published):
    from phasezoo.cli import main

    path = tmp_path / "mine.py"
    path.write_text("class A:\n    name = 'same'\nclass B:\n    name = 'same'\n")
    assert main(["benchmark", str(published[3]), "--out", str(tmp_path / "out"), "--quiet",
                 "--method", f"{path}:A", "--method", f"{path}:B"]) == 2
    assert not (tmp_path / "out" / "benchmark.json").exists()


# --- studies that cannot apply ---------------------------------------------------------------

def _limits(name: str, seeds: int = 3, **kwargs) -> dict[str, int]:
    with torch.device("meta"):
        model = create_model(name, input_shape=(1, 8, 8), num_classes=10, **kwargs)
    return study_limits(model, seeds)


def test_each_study_that_cannot_apply_says_why():
    one_hidden = not_applicable(_limits("mlp", width=64, depth=1), "sklearn-digits")
    assert set(one_hidden) == {"AlphaPruning allocation", "TempBalance"}
    assert one_hidden["AlphaPruning allocation"].startswith("1 prunable layer ")
    assert one_hidden["TempBalance"].startswith("0 eligible layers ")
    # the default zoo's MLP: two hidden layers, the middle one eligible at width ≥ 50 only
    two_hidden = not_applicable(_limits("mlp", width=64, depth=2), "sklearn-digits")
    assert list(two_hidden) == ["TempBalance"]
    assert two_hidden["TempBalance"].startswith("1 eligible layer ")
    assert not_applicable(_limits("mlp", width=64, depth=3), "sklearn-digits") == {}
    narrow = not_applicable(_limits("mlp", width=8, depth=3), "sklearn-digits")
    assert narrow["TempBalance"].startswith("0 eligible layers ")  # 8 eigenvalues < 50
    resnet = not_applicable(_limits("resnet18", width=4), None)
    assert "weight matching" not in resnet  # every registered architecture has a spec
    assert resnet["fine-tuning transfer"] == resnet["TempBalance"] == NO_TRANSFER
    alone = not_applicable(_limits("mlp", seeds=1, width=64, depth=3), "sklearn-digits")
    assert set(alone) == {"weight averaging", "weight matching"}


def test_a_zoo_lists_a_study_as_not_applicable_only_when_no_cell_can_run_it():
    wide, narrow = _limits("mlp", width=64, depth=3), _limits("mlp", width=8, depth=3)
    nowhere, partly = zoo_applicability([narrow, narrow], "sklearn-digits")
    assert list(nowhere) == ["TempBalance"] and partly == {}
    nowhere, partly = zoo_applicability([wide, narrow, narrow], "sklearn-digits")
    assert nowhere == {}
    assert partly["TempBalance"].startswith("not measured on 2 of 3 cells (0 eligible layers")


def _cells(**cols) -> pd.DataFrame:
    return pd.DataFrame({"cell": list("abcd"), "phase": ["I", "I", "II", "II"],
                         "member_accuracy": [0.5] * 4,
                         "naive_average_accuracy": [0.4, 0.45, 0.5, 0.52],
                         "aligned_average_accuracy": [0.45, 0.5, 0.55, 0.5],
                         **{f"pruned_{s:g}_accuracy": [0.4] * 4 for s in SPARSITIES}, **cols})


def test_kruskal_wallis_over_a_constant_or_one_phase_is_no_test_with_why():
    out = by_phase(_cells())
    assert math.isnan(out["kruskal_p"]["pruned_0.5_drop"])
    assert out["kruskal_note"]["pruned_0.5_drop"] == "constant"
    assert math.isfinite(out["kruskal_p"]["naive_gain"]) and "naive_gain" not in out[
        "kruskal_note"]
    one = by_phase(_cells().assign(phase="I"))
    assert one["kruskal_note"]["naive_gain"] == "one phase"
    skipped = by_phase(_cells(), skip=["weight matching"])
    assert "aligned_gain" not in skipped["kruskal_p"] and "naive_gain" in skipped["kruskal_p"]


def test_the_studies_report_names_what_does_not_apply_and_prints_no_nan(tmp_path):
    from phasezoo.wsl.studies_report import write_report

    cells = _cells()
    na = {"TempBalance": "1 eligible layer (...): every gain would be 0",
          "fine-tuning transfer": NO_TRANSFER}
    result = {"zoo": ["z"], "epoch": 3, "score": "top-1 accuracy", "transfer_dataset": None,
              "sparsities": list(SPARSITIES), "not_applicable": na,
              "partly_applicable": {"weight matching": "not measured on 1 of 4 cells (x)"},
              "cells": cells.to_dict(orient="records"),
              **by_phase(cells.assign(phase=["I", "I", "I", "II"]), skip=na)}
    md = write_report(result, tmp_path).read_text()
    assert "nan" not in md.lower()
    assert "- TempBalance: not applicable, 1 eligible layer" in md
    assert f"- fine-tuning transfer: not applicable, {NO_TRANSFER}" in md
    assert "- weight matching: not measured on 1 of 4 cells (x)" in md
    assert "— (constant)" in md  # the pruning drops: the same everywhere
    assert "| II | 1 | " in md and "± nan" not in md  # one cell: its mean alone
    parsed = strict_loads((tmp_path / "studies.json").read_text())
    assert parsed["kruskal_p"]["pruned_0.5_drop"] is None
    assert parsed["not_applicable"] == na
    from phasezoo.wsl.report import with_footer
    from phasezoo.wsl.studies_report import markdown as studies_markdown

    assert with_footer(studies_markdown(parsed), parsed) == md  # read back, renders the same


def test_studies_on_a_published_one_hidden_layer_zoo_skip_what_cannot_apply(published,
                                                                              tmp_path):
    """The tiny zoo's MLP has one hidden layer (one prunable layer, none TempBalance tunes):
    the allocation arms are not run, and the report says why instead of a table of zeros."""
    from phasezoo.cli import main
    from phasezoo_testkit import DATA_ROOT

    out = tmp_path / "out"
    assert main(["studies", str(published[3]), "--out", str(out), "--data-root",
                 str(DATA_ROOT), "--quiet"]) == 0
    result = strict_loads((out / "studies.json").read_text())
    assert set(result["not_applicable"]) == {"AlphaPruning allocation", "fine-tuning transfer",
                                             "TempBalance"}
    assert not any(k.startswith(("alpha_", "uniform_")) for k in result["cells"][0])
    assert not any(m.startswith("alpha_vs_") for m in result["kruskal_p"])
    assert result["kruskal_note"]["naive_gain"] == "one phase"  # one cell
    md = (out / "studies.md").read_text()
    assert "- AlphaPruning allocation: not applicable, 1 prunable layer" in md
    assert "nan" not in md.lower()


def test_regression_predictions_stay_in_the_fitted_targets_range():
    """An extrapolating model cannot score R² −10^19 on a bounded target: its predictions are
    clipped to what it was fit on, and the clipping is counted."""
    from phasezoo.wsl.scoring import clip_to_fit_range, scores

    fitted = np.array([0.2, 0.5, 0.9])
    wild = np.array([0.3, 1e19, -1e19, 0.95])
    clipped, n = clip_to_fit_range("regression", wild, fitted)
    assert n == 3 and list(clipped) == [0.3, 0.9, 0.2, 0.9]
    y = np.array([0.25, 0.85, 0.3, 0.9])
    assert scores("regression", y, clipped)["r2"] > -1 > scores("regression", y, wild)["r2"]
    labels = np.array([1, 7])
    same, n = clip_to_fit_range("classification", labels, fitted)
    assert n == 0 and list(same) == [1, 7]


def test_the_benchmark_picture_shows_what_it_draws():
    """Its legend names only the baselines drawn (one scored only on subsets is not), sits
    outside the panels, and a score below −1 is marked as cut; one colour per baseline."""
    from phasezoo.wsl.benchmark_report import figure

    def entry(baseline, split, mean):
        return {"task": "test_accuracy", "split": split, "baseline": baseline,
                "r2": {"mean": mean, "std": 0.1}, "bootstrap_std": 0.1}
    result = {"summary": [entry("a", "random", 0.8), entry("b", "random", -7.0),
                          entry("a", "scale_transfer", 0.5), entry("b", "scale_transfer", 0.2),
                          entry("sub", "random[width=4]", 0.9)]}
    fig = figure(result)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["a", "b", "below −1: bar cut"]
    ax = fig.axes[0]
    assert not ax.get_legend()
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [0.8, 0.5, -1.0, 0.2]
    colors = {p.get_facecolor() for p in ax.patches[:2]}
    assert len(colors) == 1 and colors != {p.get_facecolor() for p in ax.patches[2:]}
    cut = [line for line in ax.lines if line.get_marker() == "v"]
    assert len(cut) == 1 and list(cut[0].get_xdata()) == [0.4]


def test_the_studies_picture_draws_a_result_read_back_from_its_json(tmp_path):
    """A phase of one cell has no spread (null in the strict JSON): the picture still draws,
    and its method bars use no phase colour (a colour means a phase in the other panels)."""
    import matplotlib.image

    from phasezoo.vocabulary import PHASE_COLORS
    from phasezoo.wsl.studies_report import METHOD_COLORS, plot

    sparsities = [0.5, 0.8]
    measures = ["naive_gain", "aligned_gain"] + [f"pruned_{s:g}_drop" for s in sparsities]
    per_phase = {p: {"cells": n, **{m: {"mean": 0.1, "std": None if n == 1 else 0.05}
                                    for m in measures}}
                 for p, n in (("I", 3), ("IV-A", 1))}
    result = {"zoo": ["z"], "epoch": 3, "sparsities": sparsities, "per_phase": per_phase,
              "kruskal_p": {m: None for m in measures}, "transfer_dataset": None}
    back = json.loads(json.dumps(result))
    out = plot(back, tmp_path / "studies.png")
    assert matplotlib.image.imread(out).shape[0] > 100
    assert not {c.lower() for c in METHOD_COLORS} & {c.lower() for c in PHASE_COLORS.values()}


def test_bootstrap_skips_resamples_of_one_target_value() -> None:
    """Three cells, two sharing a target (as cells at one learning rate do): a resample of only
    those two has an undefined R². Before, sklearn scored it from the rounding of the mean
    (≈ −10³⁰); now the spread is that of the defined resamples, checked by recomputing it."""
    from sklearn.metrics import r2_score

    from phasezoo.wsl.scoring import BOOTSTRAP_SAMPLES, bootstrap_std

    cells = np.repeat(np.array(["a", "b", "c"]), 39)
    y = np.where(cells == "c", np.log2(0.1), np.log2(0.01))
    pred = y + np.random.default_rng(1).normal(0, 0.5, len(y))
    rng, groups, vals = np.random.default_rng(7), [np.flatnonzero(cells == c) for c in "abc"], []
    for _ in range(BOOTSTRAP_SAMPLES):
        rows = np.concatenate([groups[i] for i in rng.integers(0, 3, 3)])
        if np.ptp(y[rows]) > 0:
            vals.append(r2_score(y[rows], pred[rows]))
    assert len(vals) < BOOTSTRAP_SAMPLES  # some resamples did hold one target value
    got = bootstrap_std("regression", y, pred, cells, seed=7)
    assert got == pytest.approx(float(np.std(vals)), rel=1e-12)
    assert got < 10
