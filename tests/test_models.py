"""Every registered architecture builds, runs, and scales with its width."""

from __future__ import annotations

import pytest
import torch

from phasezoo.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32)])
def test_forward_shape_and_width(name, input_shape):
    small = create_model(name, width=2, input_shape=input_shape, num_classes=7)
    big = create_model(name, width=4, input_shape=input_shape, num_classes=7)
    out = small(torch.randn(3, *input_shape))
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(big) > count(small)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*mlp"):
        create_model("vgg", width=2, input_shape=(1, 28, 28), num_classes=10)


def test_resnet18_is_cifar_style():
    m = create_model("resnet18", width=4, input_shape=(3, 32, 32), num_classes=10)
    stem = m[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(x, torch.nn.MaxPool2d) for x in m.modules())
    convs = [x.out_channels for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert sorted(set(convs)) == [4, 8, 16, 32]
