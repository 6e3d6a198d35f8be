"""The three-regime study of pruning (phasezoo.wsl.regimes) against hand cases and what it
promises: exact densities, masks kept through retraining, connectivity and CKA of a model with
itself, and a regime for every (temperature, density) point of a zoo."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from phasezoo.data import Split
from phasezoo.landscape.connectivity import interpolation_barrier
from phasezoo.landscape.similarity import cka_batches, pair_cka
from phasezoo.models import create_model
from phasezoo.settings import PhaseThresholds
from phasezoo.wsl import regimes
from phasezoo.wsl.regimes import (REGIMES, RegimeSettings, label_regime, retrain,
                                  temperature_effect, uniform_prune)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp", width=12, depth=2, input_shape=(1, 4, 4), num_classes=3).eval()


def _split(n: int = 96) -> Split:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :3].argmax(1))  # a learnable rule: the largest of three pixels
    return Split(x, y, x[:48], y[:48], 3)  # Task(): classification


# The reference's rule (the paper's Figure 1: LMC separates I from II, CKA II-A from II-B) on
# hand-picked numbers, at tolerance 2 (%) and split 0.9: mc −2 is on the connected side (the
# zoo's phases call a barrier mc < −tolerance), CKA 0.9 on the similar side (IV-B is CKA ≥ cka);
# connected with an undefined CKA (a constant output) is `collapsed`, a non-finite mc (every
# retraining diverged) `unlabelled`.
@pytest.mark.parametrize("mc, cka, regime", [
    (-5.0, 0.99, "I"), (-2.01, math.nan, "I"), (-2.0, 0.5, "II-A"), (0.0, 0.89, "II-A"),
    (3.0, 0.9, "II-B"), (0.5, 0.95, "II-B"), (math.nan, 0.95, "unlabelled"),
    (0.0, math.nan, "collapsed"), (-2.0, math.nan, "collapsed")])
def test_regime_rule_by_hand(mc, cka, regime):
    assert label_regime(mc, cka, mc_tolerance=2.0, cka_split=0.9) == regime


@pytest.mark.parametrize("density", [0.05, 0.1, 0.37, 0.5, 1.0])
def test_uniform_pruning_keeps_exactly_the_density_of_each_layer(density):
    model = _mlp()
    pruned = uniform_prune(model, density)
    layers = [m for m in pruned.modules() if isinstance(m, nn.Linear)]
    for m in layers[:-1]:  # as torch's l1_unstructured: round(amount · numel) zeroed
        n = m.weight.numel()
        assert int((m.weight == 0).sum()) == round((1 - density) * n)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert torch.equal(layers[-1].weight, head.weight)  # the output layer is never pruned
    first = [m for m in model.modules() if isinstance(m, nn.Linear)][0]
    kept = layers[0].weight != 0
    if density < 1:  # the largest magnitudes are the ones kept
        assert first.weight.abs()[kept].min() >= first.weight.abs()[~kept].max()


def test_retraining_keeps_the_mask_and_changes_the_kept_weights():
    pruned = uniform_prune(_mlp(), 0.3)
    zeros = [(m.weight == 0).clone() for m in pruned.modules() if isinstance(m, nn.Linear)][:-1]
    before = [m.weight.clone() for m in pruned.modules() if isinstance(m, nn.Linear)][:-1]
    out = retrain(pruned, _split(), RegimeSettings(epochs=2, batch_size=16), seed=3)
    after = [m.weight for m in out.modules() if isinstance(m, nn.Linear)][:-1]
    for z, b, a in zip(zeros, before, after, strict=True):
        assert torch.equal(a[z], torch.zeros_like(a[z]))  # exactly zero, momentum and decay on
        assert not torch.equal(a[~z], b[~z])  # the kept weights did train


@pytest.mark.parametrize("protocol", ["ptmz", "llt"])
def test_a_pruned_model_is_connected_to_itself_and_identical_in_cka(protocol, tmp_path):
    """Linear-path mc of a model with itself is 0 (every point is the model), and its linear
    CKA with itself is 1 (the zoo's own connectivity and similarity functions), under either
    protocol's CKA recipe."""
    import dataclasses

    from phasezoo.config import load_config
    from phasezoo_testkit import tiny_config

    split = _split()
    pruned = uniform_prune(_mlp(), 0.2)
    barrier = interpolation_barrier(pruned, pruned, split, 5, 100)
    assert barrier["linear_barrier"] == 0.0
    raw = tiny_config(tmp_path)
    raw["zoos"]["tiny"]["metrics"] = {"protocol": protocol}
    cfg = dataclasses.replace(load_config(raw).zoo("tiny").metrics, cka_batches=2,
                              cka_batch_size=16)
    cka = pair_cka(pruned, pruned, split, cka_batches(split, cfg, 0), cfg, 100)
    assert cka == pytest.approx(1.0, abs=1e-12)  # float64 CKA: rounding only


def _point(t: float, d: float, score: float, regime: str, phase: str = "II") -> dict:
    return {"temperature_name": "batch_size", "temperature_value": t, "load_name": "width",
            "load_value": 8.0, "density": d, "score": score, "regime": regime, "phase": phase}


def test_temperature_effect_counts_steps_towards_hotter_from_the_colder_regime():
    """Batch size: smaller is hotter (HOTTER = −1). At density 0.1 going 256 → 64 (hotter)
    raises the score from 0.5 to 0.7 starting in I: helps; at 0.5, 256 (II-B) → 64 lowers it:
    hurts. A higher score is better (sign +1)."""
    points = [_point(256, 0.1, 0.5, "I"), _point(64, 0.1, 0.7, "II-A"),
              _point(256, 0.5, 0.9, "II-B"), _point(64, 0.5, 0.8, "II-B")]
    effect = temperature_effect(points, hotter=-1, sign=1)
    assert effect["I"] == {"steps": 1, "helps": 1, "hurts": 0,
                           "mean_change": pytest.approx(0.2), "answer": "helps"}
    assert effect["II-B"]["answer"] == "hurts"
    assert effect["II-B"]["mean_change"] == pytest.approx(-0.1)
    assert effect["II-A"]["answer"].startswith("no step")  # 64 is the hottest: no step from it
    # an error score (lower is better) flips both answers
    flipped = temperature_effect(points, hotter=-1, sign=-1)
    assert (flipped["I"]["answer"], flipped["II-B"]["answer"]) == ("hurts", "helps")


def test_the_zoo_median_rule_splits_the_connected_points():
    phases = PhaseThresholds(train_error=1.0, mc_tolerance=2.0, cka=0.93, cka_rule="zoo-median",
                             cka_rule_min_cells=3, sensitivity=0.1)
    points = [{"mc": 0.0, "cka": c} for c in (0.2, 0.4, 0.9)] + [{"mc": -9.0, "cka": 0.0}]
    assert regimes.cka_split(points, phases)[0] == 0.4  # the barrier point is not counted
    assert regimes.cka_split(points[:2], phases)[0] == 0.93  # too few: the phase threshold


def test_the_study_labels_every_point_of_a_zoo_and_draws_its_diagram(published, tmp_path):
    from phasezoo.wsl.studies import run_studies
    from phasezoo.wsl.studies_report import write_report
    from phasezoo_testkit import DATA_ROOT

    cfg = RegimeSettings(densities=(0.2, 0.6), epochs=1)
    result = run_studies(str(published[3]), str(DATA_ROOT), progress=False, regimes=cfg)
    section = result["regimes"]
    assert section["not_applicable"] is None
    temperatures = {p["temperature_value"] for p in section["points"]}
    assert {(p["temperature_value"], p["density"]) for p in section["points"]} == {
        (t, d) for t in temperatures for d in cfg.densities}
    assert all(p["regime"] in REGIMES for p in section["points"])
    assert all(math.isfinite(p["mc"]) and math.isfinite(p["cka"]) for p in section["points"])
    # one temperature value in the tiny zoo: the report says why there is no step
    assert all(e["answer"] == "no step: the zoo has one temperature value"
               for e in section["temperature_effect"].values())
    assert sum(sum(r.values()) for r in section["phase_vs_regime"].values()) == 2
    md = write_report(result, tmp_path).read_text()
    assert (tmp_path / "regimes.png").stat().st_size > 0
    assert "## Three-regime model of pruning" in md and "one temperature value" in md


def test_a_card_with_a_nan_threshold_is_refused(published, tmp_path):
    import shutil

    zoo = tmp_path / "zoo"
    shutil.copytree(published[3], zoo)
    card = zoo / "README.md"
    card.write_text(card.read_text().replace('"mc_tolerance": 2.0', '"mc_tolerance": NaN'))
    with pytest.raises(ValueError, match="NaN is not a finite number"):
        regimes.zoo_protocol(zoo)
    protocol, reason = regimes.zoo_protocol_or_reason(str(zoo))
    assert protocol is None and "cannot be read" in reason
    section = regimes.finish([], 1, protocol, reason, RegimeSettings(), "classification")
    assert section["not_applicable"] == reason
    assert regimes.markdown(section, "accuracy")[-1] == f"Not applicable to this zoo: {reason}."
