"""Fine-tuning transfer: does a cell's phase predict how well its models transfer to a second
dataset?

Protocol (the usual one for transfer from a model zoo): take a trained model, re-initialise its
classifier (the last ``nn.Linear``) for the second dataset's classes, and fine-tune all weights
with SGD for a few epochs on the second dataset's training split; score it on that dataset's
test split. The same architecture trained from a fresh initialisation with the same budget is
the baseline, so ``finetune_gain`` = fine-tuned − from scratch is what the pre-training bought.

Both runs of a model are seeded by the model's own seed (head initialisation, data order), so
its numbers do not depend on which other seeds of its cell survived training. The epochs are
:func:`phasezoo.train.train_epoch`'s (constant learning rate): a run whose loss or weights turn
non-finite has diverged and scores NaN, which makes its cell's mean NaN rather than chance.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torch import nn

from phasezoo.config_checks import zoo_default
from phasezoo.data import Split, create_dataset, prepare_images, standardize
from phasezoo.evaluation import evaluate
from phasezoo.optim import SGD
from phasezoo.runtime import seeded
from phasezoo.settings import TrainSettings
from phasezoo.train import Member, constant_rate, train_epoch

EVAL_BATCH_SIZE = 1000
TB_FRACTIONS = (1.0, 0.2, 0.05)  # of the second dataset's training rows, for TempBalance


@dataclass(frozen=True)
class FinetuneSettings:
    """Budget of one fine-tuning run (CLI ``--finetune-*``, config ``studies.*``).

    Raises:
        ValueError: on a setting no run can use (naming it), when the settings are made, so a
            bad CLI value fails before any cell is studied.
    """

    # The config schema's studies.finetune_* defaults: one home, which the CLI's options read too.
    epochs: int = zoo_default("studies", "finetune_epochs")
    lr: float = zoo_default("studies", "finetune_lr")
    batch_size: int = zoo_default("studies", "finetune_batch_size")
    momentum: float = 0.9

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"fine-tuning: {name} must be an integer >= 1 "
                                 f"(--finetune-{name.replace('_', '-')}), got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"fine-tuning: lr must be a finite number > 0 (--finetune-lr), "
                             f"got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"fine-tuning: momentum must be in [0, 1), got {self.momentum!r}")

    def training(self) -> TrainSettings:
        """What :func:`phasezoo.train.train_epoch` fine-tunes with: batch size and a constant
        rate."""
        return constant_rate(self.batch_size, self.lr)


def transfer_split(name: str, data_root: str, input_shape: tuple[int, ...]) -> Split:
    """The second dataset, standardized and converted to the zoo's image ``input_shape``.

    Raises:
        ValueError: if the zoo's inputs are not images (transfer is defined for image zoos) or
            ``name`` is not a registered dataset.
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


def finetune(model: nn.Module, split: Split, cfg: FinetuneSettings, seed: int,
             tempbalance: bool = False) -> float:
    """Test score on ``split`` after replacing the head and fine-tuning all weights; NaN if the
    run diverged (a non-finite loss or weights in any epoch). ``tempbalance``: layer-wise rates
    from each layer's α, measured again before every epoch (:mod:`phasezoo.wsl.tempbalance`)."""
    from phasezoo.wsl.tempbalance import parameter_scales

    net = replace_head(model, split.num_classes, seed)
    member = Member(seed, net, SGD(net.parameters(), momentum=cfg.momentum))
    for epoch in range(1, cfg.epochs + 1):
        if tempbalance:
            member.optimizer.scales = parameter_scales(net, member.optimizer.params)
        if not train_epoch(member, split, cfg.training(), epoch):
            return math.nan
    return evaluate(net, split.x_test, split.y_test, EVAL_BATCH_SIZE, split.task)[1]


def train_subset(split: Split, fraction: float, seed: int = 0) -> Split:
    """``split`` with the first ``round(fraction·n)`` training rows of a seeded permutation (the
    same rows for every model and arm), the test split whole."""
    n = len(split.x_train)
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max(1, round(fraction * n))]
    keep = keep.sort().values.to(split.x_train.device)
    return replace(split, x_train=split.x_train[keep], y_train=split.y_train[keep])


def finetuned(models: Sequence[nn.Module], split: Split, cfg: FinetuneSettings,
              seeds: Sequence[int], tempbalance: bool = False) -> list[float]:
    """:func:`finetune` of each model with its seed (one model built at a time)."""
    return [finetune(m, split, cfg, int(s), tempbalance) for m, s in zip(models, seeds, strict=True)]


def cell_tempbalance(models: Sequence[nn.Module], split: Split, cfg: FinetuneSettings,
                     seeds: Sequence[int], fractions: Sequence[float] = TB_FRACTIONS,
                     uniform_full: Sequence[float] | None = None) -> dict[str, float]:
    """TempBalance against a uniform rate, fine-tuning the same checkpoints on each fraction of
    the second dataset's training rows: ``tb_<f>_accuracy``, ``uniform_ft_<f>_accuracy`` (cell
    means) and ``tb_gain_<f>`` (their difference; the seed's claim: it grows as data shrinks).
    ``uniform_full``: the uniform arm's scores on all rows when already run (the transfer
    study's ``finetuned`` of the same models: the same runs, so not repeated)."""
    out: dict[str, float] = {}
    for f in fractions:
        part = train_subset(split, f)
        tb = finetuned(models, part, cfg, seeds, tempbalance=True)
        flat = (list(uniform_full) if f == 1.0 and uniform_full is not None
                else finetuned(models, part, cfg, seeds))
        out[f"tb_{f:g}_accuracy"] = sum(tb) / len(tb)
        out[f"uniform_ft_{f:g}_accuracy"] = sum(flat) / len(flat)
        out[f"tb_gain_{f:g}"] = out[f"tb_{f:g}_accuracy"] - out[f"uniform_ft_{f:g}_accuracy"]
    return out


def cell_transfer(models: Sequence[nn.Module], fresh: Sequence[nn.Module], split: Split,
                  cfg: FinetuneSettings, seeds: Sequence[int],
                  tuned: Sequence[float] | None = None) -> dict[str, float]:
    """Mean fine-tuned and from-scratch score over a cell's seeds, and their difference.

    ``seeds[i]`` is the seed of ``models[i]`` (and of its from-scratch twin ``fresh[i]``); it
    seeds both runs. A diverged run makes the mean NaN; ``*_diverged`` count such runs. The
    models are taken one at a time (lazy sequences build each when indexed). ``tuned``: the
    models' :func:`finetuned` scores, when the caller has them already.
    """
    if not len(models) == len(fresh) == len(seeds):
        raise ValueError(f"cell_transfer: {len(models)} models, {len(fresh)} fresh models and "
                         f"{len(seeds)} seeds; need one of each per seed")
    tuned = finetuned(models, split, cfg, seeds) if tuned is None else list(tuned)
    scratch = finetuned(fresh, split, cfg, seeds)
    out = {"finetune_accuracy": sum(tuned) / len(tuned),
           "scratch_accuracy": sum(scratch) / len(scratch)}
    return out | {"finetune_gain": out["finetune_accuracy"] - out["scratch_accuracy"],
                  "finetune_diverged": sum(not math.isfinite(a) for a in tuned),
                  "scratch_diverged": sum(not math.isfinite(a) for a in scratch)}
