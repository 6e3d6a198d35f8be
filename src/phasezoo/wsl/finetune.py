"""Fine-tuning transfer: does a cell's phase predict how well its models transfer to a second
dataset?

Protocol (the usual one for transfer from a model zoo): take a trained model, re-initialise its
classifier (the last ``nn.Linear``) for the second dataset's classes, and fine-tune all weights
with SGD for a few epochs on the second dataset's training split; score it on that dataset's
test split. The same architecture trained from a fresh initialisation with the same budget is
the baseline, so ``finetune_gain`` = fine-tuned − from scratch is what the pre-training bought.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from phasezoo.data import Split, create_dataset, prepare_images, standardize
from phasezoo.evaluation import evaluate
from phasezoo.optim import SGD
from phasezoo.runtime import generator, seeded


@dataclass(frozen=True)
class FinetuneSettings:
    """Budget of one fine-tuning run (CLI ``--finetune-*``, config ``studies.*``)."""

    epochs: int = 5
    lr: float = 0.01
    batch_size: int = 64
    momentum: float = 0.9


def transfer_split(name: str, data_root: str, input_shape: tuple[int, ...]) -> Split:
    """The second dataset, standardized and converted to the zoo's image ``input_shape``.

    Raises:
        ValueError: if the zoo's inputs are not images (transfer is defined for image zoos).
    """
    if len(input_shape) != 3:
        raise ValueError(f"fine-tuning transfer needs an image zoo; inputs are {input_shape}")
    split = create_dataset(name, data_root, normalize=False)
    channels, size = input_shape[0], input_shape[-1]
    return standardize(prepare_images(split, size, channels))


def replace_head(model: nn.Module, num_classes: int, seed: int) -> nn.Module:
    """A copy with the last ``nn.Linear`` re-initialised (seeded) for ``num_classes`` outputs."""
    out = copy.deepcopy(model)
    name, head = [(n, m) for n, m in out.named_modules() if isinstance(m, nn.Linear)][-1]
    with seeded(seed):
        new = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    parent = out.get_submodule(name.rsplit(".", 1)[0]) if "." in name else out
    setattr(parent, name.rsplit(".", 1)[-1], new)
    return out


def finetune(model: nn.Module, split: Split, cfg: FinetuneSettings, seed: int) -> float:
    """Test accuracy on ``split`` after replacing the head and fine-tuning all weights."""
    net = replace_head(model, split.num_classes, seed).train()
    opt = SGD(net.parameters(), momentum=cfg.momentum)
    gen, n = generator(seed), len(split.x_train)
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            opt.zero_grad()
            loss = split.task.loss(net, split.x_train[idx], split.y_train[idx])
            loss.backward()
            opt.step(cfg.lr)
    acc = evaluate(net, split.x_test, split.y_test, 1000, split.task)[1]
    return acc if math.isfinite(acc) else math.nan


def cell_transfer(models: list[nn.Module], fresh: list[nn.Module], split: Split,
                  cfg: FinetuneSettings) -> dict[str, float]:
    """Mean fine-tuned and from-scratch accuracy over a cell's seeds, and their difference."""
    tuned = [finetune(m, split, cfg, seed=i) for i, m in enumerate(models)]
    scratch = [finetune(m, split, cfg, seed=i) for i, m in enumerate(fresh)]
    out = {"finetune_accuracy": sum(tuned) / len(tuned),
           "scratch_accuracy": sum(scratch) / len(scratch)}
    return out | {"finetune_gain": out["finetune_accuracy"] - out["scratch_accuracy"]}
