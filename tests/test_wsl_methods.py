"""Bring-your-own methods, the learned baselines (StatNN-style MLP, NFN) and Unterthiner et
al.'s configuration, against independent references."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from phasezoo.wsl.baselines import BASELINES, GRIDS, TASKS, estimator
from phasezoo.wsl.benchmark import run_benchmark
from phasezoo.wsl.scoring import scores
from phasezoo.wsl.subsets import final_checkpoints
from phasezoo.wsl.benchmark_report import markdown
from phasezoo.wsl.methods import VISIBLE_COLUMNS, MethodUnsupported, Rows, load_method
from phasezoo_testkit import zoo_meta, small_mlp, permute_hidden, zoo_table

TEST_ACCURACY = tuple(t for t in TASKS if t.name == "test_accuracy")


class _StatsGBM:
    """The stats+gbm baseline written as a user's method: selection on the validation rows,
    refit on train + validation. It must score exactly as the built-in baseline does."""

    def fit(self, train, y, val, y_val, kind, seed):
        x, xv = train.features("layer_statistics"), val.features("layer_statistics")
        best_score, best = -np.inf, GRIDS["gbm"][0]
        for p in GRIDS["gbm"]:
            s = scores(kind, y_val, estimator("gbm", kind, p, seed).fit(x, y).predict(xv))["r2"]
            if np.isfinite(s) and s > best_score:
                best_score, best = s, p
        self.model = estimator("gbm", kind, best, seed).fit(np.vstack([x, xv]),
                                                            np.concatenate([y, y_val]))

    def predict(self, rows):
        return self.model.predict(rows.features("layer_statistics"))


def _planted(n: int = 96):
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.2, 2.0, n)
    return ([small_mlp(i, s) for i, s in enumerate(scales)],
            zoo_meta(n, cells=48, test_accuracy=1.0 / (1.0 + scales)))


def test_a_method_is_scored_exactly_like_the_baseline_it_reimplements():
    models, meta = _planted()
    result = run_benchmark(zoo_table(models, meta), seeds=2, tasks=TEST_ACCURACY,
                           baselines={"stats+gbm": BASELINES["stats+gbm"]},
                           methods={"mine": _StatsGBM})
    by = {(e["split"], e["baseline"]): e for e in result["summary"]}
    for split in {s for s, _ in by}:
        assert by[(split, "mine")]["r2"] == by[(split, "stats+gbm")]["r2"], split
    assert "| stats+gbm | mine |" in markdown(result)


def test_rows_never_show_a_target_and_hide_the_predicted_axis():
    models, meta = _planted(24)
    table = zoo_table(models, meta)
    seen = []

    class Spy:
        def fit(self, train, y, val, y_val, kind, seed):
            seen.append(set(train.meta.columns))
            assert len(list(train.weights())) == len(train) == len(y)
            self.mean = float(np.mean(y)) if kind == "regression" else y[0]

        def predict(self, rows):
            return np.full(len(rows), self.mean, dtype=object if isinstance(self.mean, str)
                           else float)

    run_benchmark(table, seeds=1, baselines={}, methods={"spy": Spy})
    assert all(cols <= set(VISIBLE_COLUMNS) for cols in seen)
    assert any("temperature_value" not in c for c in seen)  # the temperature task
    assert not any({"test_accuracy", "phase", "train_accuracy"} & c for c in seen)


def test_the_cli_scores_the_example_method_and_names_a_bad_spec(tmp_path, capsys, monkeypatch):
    """``phasezoo benchmark --method examples/wsl_method.py:NormRidge`` on a 12-cell zoo (the
    table stands in for load_zoo's): the example's column is in the report."""
    from phasezoo.cli import main
    from phasezoo.wsl import table as table_module

    models, meta = _planted(48)
    monkeypatch.setattr(table_module, "load_zoo", lambda *a, **k: zoo_table(models, meta))
    assert main(["benchmark", str(tmp_path), "--out", str(tmp_path), "--seeds", "1",
                 "--baselines", "hparams+gbm", "--no-learned",
                 "--method", "examples/wsl_method.py:NormRidge"]) == 0
    report = (tmp_path / "benchmark.md").read_text()
    assert "| norms+ridge |" in report and "| test_accuracy | random |" in report
    assert "computed from the zoo's cells (no splits.json)" in report
    monkeypatch.setitem(GRIDS, "gbm-large", [{"learning_rate": 0.1, "max_iter": 20}])
    assert main(["benchmark", str(tmp_path), "--out", str(tmp_path / "u"), "--seeds", "1",
                 "--baselines", "hparams+gbm", "--no-learned", "--unterthiner"]) == 0
    assert "| hparams+gbm | stats+gbm[unterthiner] |" in (tmp_path / "u" / "benchmark.md").read_text()
    assert main(["benchmark", str(tmp_path), "--out", str(tmp_path), "--baselines", "gbm"]) == 2
    assert "--baselines gbm: not a baseline; baselines are ['hparams+gbm'" in capsys.readouterr().err
    assert main(["benchmark", str(tmp_path), "--out", str(tmp_path), "--method",
                 "examples/nope.py:X"]) == 2
    assert "--method examples/nope.py:X: cannot import" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no callable 'Nope'"):
        load_method("examples/wsl_method.py:Nope")


def test_nfn_predictions_do_not_change_when_hidden_units_are_permuted():
    from phasezoo.wsl.nfn import NFNMethod, NFNSettings

    models, meta = _planted(48)
    table = zoo_table(models, meta)
    idx = np.arange(48)
    method = NFNMethod(NFNSettings(epochs=3))
    y = meta["test_accuracy"].to_numpy()
    method.fit(Rows(table, idx[:32]), y[:32], Rows(table, idx[32:40]), y[32:40], "regression", 0)
    permuted = zoo_table([permute_hidden(m, 7) for m in models], meta)
    a, b = method.predict(Rows(table, idx[40:])), method.predict(Rows(permuted, idx[40:]))
    assert np.abs(a - b).max() < 1e-5 and np.ptp(a) > 0  # same function, same prediction


@pytest.mark.slow
def test_learned_baselines_recover_a_planted_signal():
    """Test accuracy is a function of the weights' scale: the StatNN-style MLP on statistics and
    the NFN on raw weights must find it (the hyperparameters cannot)."""
    from phasezoo.wsl.nfn import NFNMethod

    models, meta = _planted()
    result = run_benchmark(zoo_table(models, meta), seeds=1, tasks=TEST_ACCURACY,
                           baselines={"stats+mlp": BASELINES["stats+mlp"],
                                      "hparams+gbm": BASELINES["hparams+gbm"]},
                           methods={"nfn": NFNMethod})
    by = {(e["split"], e["baseline"]): e["r2"]["mean"] for e in result["summary"]}
    assert by[("random", "stats+mlp")] > 0.8 and by[("random", "nfn")] > 0.5
    assert by[("random", "hparams+gbm")] < 0.2
    assert not any(b == "nfn" and s != "random" for s, b in by)  # one split per task


def test_nfn_refuses_a_zoo_that_is_not_a_linear_or_conv2d_chain_and_the_report_says_why():
    from phasezoo.wsl.nfn import NFNMethod, linear_chain

    models, meta = _planted(24)
    table = zoo_table(models, meta)
    assert linear_chain(table.layouts[0]) is not None
    conv = copy.deepcopy(table.layouts[0])
    conv["entries"][0]["shape"] = [6, 1, 9]  # a Conv1d weight: not one the library reads
    assert linear_chain(conv) is None
    table.layouts[:] = [conv] * len(table.layouts)
    result = run_benchmark(table, seeds=1, baselines={}, tasks=TEST_ACCURACY,
                           methods={"nfn": NFNMethod})
    assert ("nfn: supports chains of Linear and Conv2d layers with biases (MLPs, plain CNNs); "
            "this zoo's layout is not one: '1.weight' [6, 1, 9] is not a Linear or Conv2d "
            "weight") == result["skipped_baselines"]["nfn"]
    assert not result["runs"]
    with pytest.raises(MethodUnsupported):
        NFNMethod().fit(Rows(table, np.arange(4)), np.zeros(4), Rows(table, np.arange(4)),
                        np.zeros(4), "regression", 0)


def test_unterthiner_configuration_final_checkpoints_and_statistics_by_hand():
    from phasezoo.wsl.features import unterthiner_statistics

    models, meta = _planted(24)
    meta["epoch"] = np.where(np.arange(24) % 2, 10, 5)
    meta["model_id"] = [f"m{i // 2}" for i in range(24)]  # two checkpoints per run
    table = zoo_table(models, meta)
    final = final_checkpoints(table)
    assert len(final) == 12 and set(final.meta["epoch"]) == {10}
    x = unterthiner_statistics(final)
    w = final.weights[0][final.layouts[0]["entries"][0]["offset"]:][:6 * 9].astype(np.float64)
    expected = [*np.percentile(w, (0, 25, 50, 75, 100)), w.mean(), w.std()]
    np.testing.assert_allclose(x[0, :7], expected, rtol=1e-12)
