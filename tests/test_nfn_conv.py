"""``nfn`` on convolutional zoos (the registry's ``cnn``): the library's layers read conv filters
as weights with kernel dimensions; a fitted model's predictions do not change when the models'
conv channels are permuted."""

from __future__ import annotations

import copy

import numpy as np
import torch

from phasezoo.models import create_model
from phasezoo.weights import describe, flatten_state
from phasezoo.wsl.methods import Rows
from phasezoo.wsl.nfn import NFNMethod, NFNSettings, linear_chain
from phasezoo.wsl.table import ZooTable
from phasezoo_testkit import zoo_meta

KWARGS = {"width": 3, "input_shape": [1, 8, 8], "num_classes": 3}


def _cnn(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("cnn", **KWARGS).eval()


def permute_channels(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Both convolutions' output channels (filters and biases) and the inputs of the layer
    after each (the second conv's input channels, the Linear head's columns after the global
    pool)."""
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    layers = [m for m in out if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for a, b in zip(layers[:-1], layers[1:], strict=True):
            perm = torch.randperm(a.weight.shape[0], generator=g)
            a.weight.copy_(a.weight[perm])
            a.bias.copy_(a.bias[perm])
            b.weight.copy_(b.weight[:, perm])
    return out


def _table(models: list[torch.nn.Module]) -> ZooTable:
    arch = {"name": "cnn", "kwargs": KWARGS}
    return ZooTable(zoo_meta(len(models), cells=len(models)),
                    [flatten_state(m).numpy() for m in models],
                    [describe(m, arch) for m in models], {})


def test_a_cnn_is_a_chain_the_library_reads_with_its_kernel_shapes():
    layers = linear_chain(describe(_cnn(0), {"name": "cnn", "kwargs": KWARGS}))
    assert [shape for _, shape, _ in layers] == [(3, 1, 3, 3), (6, 3, 3, 3), (3, 6)]


def test_nfn_predictions_on_a_cnn_zoo_do_not_change_when_conv_channels_are_permuted():
    models = [_cnn(i) for i in range(16)]
    permuted = [permute_channels(m, 50 + i) for i, m in enumerate(models)]
    x = torch.randn(4, *KWARGS["input_shape"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for m, p in zip(models, permuted, strict=True):
            torch.testing.assert_close(p(x), m(x), rtol=1e-4, atol=1e-5)  # a symmetry
    y = np.random.default_rng(0).normal(size=16)
    table, other, idx = _table(models), _table(permuted), np.arange(16)
    method = NFNMethod(NFNSettings(epochs=2))
    method.fit(Rows(table, idx[:10]), y[:10], Rows(table, idx[10:13]), y[10:13], "regression", 0)
    a, b = method.predict(Rows(table, idx)), method.predict(Rows(other, idx))
    # float32 sums over the permuted units in another order: ~1e-7 relative; as the MLP test
    assert np.abs(a - b).max() < 1e-5 and np.ptp(a) > 0
