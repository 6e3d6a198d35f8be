"""Batched augmentation against torchvision's per-image transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from phasezoo.augment import _random_crop, _rotate, augment, is_active


def test_crop_matches_torchvision_pad_then_crop():
    x = torch.randn(5, 3, 8, 8)
    offsets = torch.tensor([[0, 8, 3, 4, 1], [8, 0, 5, 4, 2]])
    out = _random_crop(x, 4, offsets)
    for b in range(5):
        ref = TF.crop(TF.pad(x[b], [4]), int(offsets[0, b]), int(offsets[1, b]), 8, 8)
        assert torch.equal(out[b], ref)
    assert torch.equal(out[3], x[3])  # the centred window is the image itself


def test_rotation_by_a_right_angle_is_rot90_and_small_angles_match_torchvision():
    x = torch.randn(2, 3, 6, 6)
    quarter = _rotate(x, torch.full((2,), math.pi / 2))
    assert torch.allclose(quarter, torch.rot90(x, k=1, dims=(-2, -1)))  # counter-clockwise
    ref = TF.rotate(x, 20.0, interpolation=TF.InterpolationMode.NEAREST)
    mine = _rotate(x, torch.full((2,), math.radians(20.0)))
    # both sample the same grid; torchvision rounds the half-pixel centre differently at edges
    assert (mine == ref).float().mean() > 0.9


def test_augment_is_seeded_and_flips_about_half():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).expand(400, 1, 4, 4)
    spec = {"flip": True}
    a, b = augment(x, spec, seeds=3), augment(x, spec, seeds=3)
    assert torch.equal(a, b) and not torch.equal(a, augment(x, spec, seeds=4))
    flipped = (a[:, 0, 0, 0] == 3).float().mean()
    assert 0.4 < float(flipped) < 0.6
    assert not is_active({"crop": 0, "flip": False, "rotation": 0}) and is_active({"crop": 4})
    with pytest.raises(ValueError, match="image batches"):
        augment(torch.randn(4, 10), {"flip": True}, 0)


@pytest.mark.parametrize("spec", [{"crop": 4, "flip": True, "rotation": 20}, {"crop": 2},
                                  {"flip": True, "rotation": 10}])
def test_members_augmented_together_equal_each_augmented_alone(spec):
    """The stacked trainer augments K members' batches in one call, one seed per member: each
    member's images must come out exactly as when its batch is augmented alone (the loop)."""
    x = torch.randn(3 * 5, 3, 8, 8)
    together = augment(x, spec, seeds=[11, 12, 13])
    alone = torch.cat([augment(x[5 * k:5 * (k + 1)], spec, seeds=s)
                       for k, s in enumerate([11, 12, 13])])
    assert torch.equal(together, alone)
    assert not torch.equal(together[:5], together[5:10])  # the members' draws differ
    with pytest.raises(ValueError, match="does not split into 2 members"):
        augment(x, spec, seeds=[1, 2])
    with pytest.raises(ValueError, match="does not split into 0 members"):
        augment(x, spec, seeds=[])
    assert torch.equal(augment(x, spec, seeds=np.int64(11)), augment(x, spec, seeds=11))


def test_an_inactive_spec_returns_the_batch_itself():
    x = torch.randn(4, 1, 6, 6)
    for spec in ({}, {"crop": 0, "flip": False, "rotation": 0}):
        assert augment(x, spec, seeds=[1, 2]) is x


def test_a_derived_seed_draws_without_overflow():
    """A seed up to the stream bound (the three-regime study retrains from stream seeds) gives
    draws, distinct per step, where the unreduced product passes torch's signed 64-bit seed."""
    from phasezoo.augment import augment, augment_seed
    from phasezoo.runtime import STREAM_BOUND

    x = torch.rand(4, 3, 8, 8)
    spec = {"crop": 2, "flip": True, "rotation": 10}
    seeds = [augment_seed(STREAM_BOUND - 1, 3, step) for step in (0, 1)]
    assert ((STREAM_BOUND - 1) * 1_000_003 + 3) * 100_003 >= 2 ** 63  # would overflow
    a, b = (augment(x, spec, s) for s in seeds)
    assert not torch.equal(a, b)
    assert torch.equal(a, augment(x, spec, seeds[0]))
