"""TempBalance's layer-wise rates: the layers it tunes, its linear map, BatchNorm following."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from phasezoo.models import create_model
from phasezoo.wsl.alphaprune import layer_alpha
from phasezoo.wsl.tempbalance import eig_count, layer_scales, parameter_scales, tuned_layers


def test_the_map_by_hand():
    np.testing.assert_allclose(layer_scales([2.0, 3.0, 4.0]), [0.5, 1.0, 1.5])
    np.testing.assert_allclose(layer_scales([5.0, 2.0]), [1.5, 0.5])  # larger α, larger rate
    np.testing.assert_allclose(layer_scales([3.0]), [1.0])  # nothing to balance
    np.testing.assert_allclose(layer_scales([2.0, float("nan"), 4.0]), [0.5, 1.0, 1.5])


def test_first_last_and_small_layers_are_not_tuned():
    model = nn.Sequential(nn.Linear(100, 80), nn.ReLU(), nn.Linear(80, 60), nn.ReLU(),
                          nn.Linear(60, 50), nn.ReLU(), nn.Linear(50, 30), nn.ReLU(),
                          nn.Linear(30, 10))
    assert [n for n, _ in tuned_layers(model)] == ["2", "4"]  # 60 and 50 eigenvalues; 30 < 50
    conv = nn.Conv2d(16, 8, 3)
    assert eig_count(conv) == 9 * 8


def test_a_resnet_block_norm_follows_its_conv_and_the_rest_keep_the_base_rate():
    torch.manual_seed(0)
    model = create_model("resnet18", width=8, input_shape=(3, 16, 16), num_classes=10)
    names = [n for n, _ in tuned_layers(model)]
    assert "conv1" not in names and not any(n.endswith("linear") or n == "fc" for n in names)
    params = list(model.parameters())
    scales = dict(zip([n for n, _ in model.named_parameters()], parameter_scales(model, params)))
    alphas = np.array([layer_alpha(m.weight) for _, m in tuned_layers(model)])
    expect = 0.5 + (alphas - alphas.min()) / (alphas.max() - alphas.min())
    for (name, _), e in zip(tuned_layers(model), expect):
        assert scales[f"{name}.weight"] == pytest.approx(e)
        if name.rsplit(".", 1)[-1].startswith("conv"):
            bn = name.rsplit(".", 1)[0] + ".bn" + name.rsplit(".", 1)[-1][4:]
            assert scales[f"{bn}.weight"] == scales[f"{bn}.bias"] == pytest.approx(e)
    untuned = [n for n in scales if not any(n.startswith(t + ".") for t in names)
               and ".bn" not in n]
    assert untuned and all(scales[n] == 1.0 for n in untuned)
    assert min(scales.values()) == pytest.approx(0.5) and max(scales.values()) == pytest.approx(1.5)
