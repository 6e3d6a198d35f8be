"""Every registered architecture builds, runs, and scales with its width."""

from __future__ import annotations

import pytest
import torch

from phasezoo.models import create_model, list_models


IMAGE_MODELS = [m for m in list_models() if m not in ("gpt", "pinn-mlp")]  # tests/test_tasks.py


@pytest.mark.parametrize("name", IMAGE_MODELS)
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


def test_resnet50_at_width_64_is_torchvision_resnet50_with_a_cifar_stem():
    import torchvision

    ours = create_model("resnet50", width=64, input_shape=(3, 32, 32), num_classes=10)
    ref = torchvision.models.resnet50(num_classes=10)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(ref) - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64  # stem 7×7 → 3×3
    stem = {(64, 3, 7, 7): (64, 3, 3, 3)}
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        stem.get(tuple(p.shape), tuple(p.shape)) for p in ref.parameters())
    blocks = [m for m in ours.modules() if type(m).__name__ == "Bottleneck"]
    assert len(blocks) == 3 + 4 + 6 + 3


def test_vit_is_torchvision_vision_transformer():
    import torchvision

    m = create_model("vit", width=64, input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(m, torchvision.models.VisionTransformer)
    assert m.conv_proj.in_channels == 1 and m.hidden_dim == 64
    assert len(m.encoder.layers) == 6 and m.encoder.layers[0].self_attention.num_heads == 1
    with pytest.raises(ValueError, match="divisible by patch_size=4"):
        create_model("vit", width=8, input_shape=(3, 30, 30), num_classes=10)
