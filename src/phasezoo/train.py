"""Train a population (all seeds of one grid cell) with checkpoints, resume and divergence handling.

Every epoch trains each live member for one epoch, then writes the whole population's state
(weights, SGD momentum, curves, kept checkpoints) to ``<out>.partial`` by an atomic rename. A
job killed at any point and run again resumes after the last completed epoch and ends with the
same weights as an uninterrupted run, because nothing random is carried in RNG state: a member's
initialisation comes from its seed and its data order from (seed, epoch). The finished
population goes to ``<out>`` (again by rename), so a file at ``<out>`` is always complete.

By default (``train.vectorize``) all live members of a cell train as one stacked model
(:mod:`phasezoo.stacked`): one forward, backward and update per step for the whole population,
each member with its own initialisation, data order and (optionally) learning rate. The
per-member loop (:func:`train_epoch`) is kept for architectures without a stacked form and as
the reference that ``tests/test_stacked.py`` checks the stacked trainer against.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from phasezoo.atomic import write_atomic
from phasezoo.augment import augment, augment_seed, is_active
from phasezoo.config import Cell
from phasezoo.config_checks import zoo_section_defaults
from phasezoo.data import Split, cell_split
from phasezoo.evaluation import evaluate
from phasezoo.integrity import seal
from phasezoo.models import architecture_spec, create_model
from phasezoo.optim import SGD
from phasezoo.recipe import RECIPE_ATTR, Recipe
from phasezoo.runtime import generator, seeded
from phasezoo.schedules import lr_at
from phasezoo.settings import TrainSettings
from phasezoo.tasks import Task
from phasezoo.stacked import StackedModel, stack_batches, take_rows
from phasezoo.stacked_layers import unsupported_modules
from phasezoo.weights import describe, flatten_state, num_values, unflatten_state

CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


@dataclass
class Member:
    """One model of the population with its optimizer and divergence status."""

    seed: int
    model: nn.Module
    optimizer: SGD
    diverged_epoch: int = -1  # -1: never diverged

    @property
    def alive(self) -> bool:
        return self.diverged_epoch < 0


def architecture(cell: Cell, split: Split) -> dict:
    """The registry name and ``create_model`` arguments of the cell's architecture."""
    return architecture_spec(cell.recipe.model, split.input_shape, split.num_classes)


def build_member(cell: Cell, seed: int, split: Split, device: torch.device) -> Member:
    """A freshly initialised member: weights drawn from torch's RNG seeded with ``seed``."""
    train, arch = cell.recipe.train, architecture(cell, split)
    with seeded(seed):
        model = create_model(arch["name"], **arch["kwargs"])
    model.to(device)
    opt = SGD(model.parameters(), momentum=train.momentum, weight_decay=train.weight_decay)
    return Member(seed, model, opt)


def sgd_step(member: Member, xb: torch.Tensor, yb: torch.Tensor, lr: float,
             task: Task) -> torch.Tensor:
    """One SGD update of one member; returns the (detached) mini-batch loss before the update."""
    member.optimizer.zero_grad()
    loss = task.loss(member.model, xb, yb)
    loss.backward()
    member.optimizer.step(lr)
    return loss.detach()


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The member's data order in ``epoch``: a permutation fixed by (seed, epoch)."""
    return torch.randperm(n, generator=generator(seed * 1_000_003 + epoch))


def finite_check_every(device: torch.device) -> int:
    """Steps between the one-by-one trainer's looks at its running "loss stayed finite" flag.

    Why not every step everywhere: reading the flag waits for the device, and on a GPU that
    wait each step stops the host from queueing the next step's kernels while the current
    ones run. A diverged member is restored to its epoch's start either way, so a later look
    only spends up to ``every - 1`` wasted steps on it. On the CPU the read is free.
    """
    return 1 if device.type == "cpu" else 32


def constant_rate(batch_size: int, lr: float, augment: Mapping[str, Any] | None = None
                  ) -> TrainSettings:
    """The schema's ``train`` settings with a constant rate ``lr``, ``batch_size`` and
    ``augment`` (none by default): what a study that retrains or fine-tunes a zoo's models
    gives :func:`train_epoch` (momentum and weight decay are its optimizer's)."""
    defaults = TrainSettings.of(zoo_section_defaults("train"))
    return replace(defaults, batch_size=batch_size, lr=lr, schedule="constant",
                   augment=dict(augment or {}))


def train_epoch(member: Member, split: Split, train: TrainSettings, epoch: int) -> bool:
    """Train one epoch (1-based) with ``train``'s batch size, schedule and augmentation (its
    momentum and weight decay are the member's optimizer's); on a non-finite loss restore the
    epoch's start and return False."""
    n, bs = len(split.x_train), train.batch_size
    steps = math.ceil(n / bs)
    backup = {k: v.clone() for k, v in member.model.state_dict().items()}
    member.model.train()
    device = split.x_train.device
    order = epoch_order(member.seed, epoch, n).to(device)
    finite, every = torch.ones((), dtype=torch.bool, device=device), finite_check_every(device)
    for i in range(steps):
        idx = order[i * bs:(i + 1) * bs]
        xb = take_rows(split.x_train, idx)
        if is_active(train.augment):
            xb = augment(xb, train.augment, augment_seed(member.seed, epoch, i))
        loss = sgd_step(member, xb, split.y_train[idx],
                        lr_at((epoch - 1) * steps + i, steps, train), split.task)
        finite &= torch.isfinite(loss)
        if (i + 1) % every == 0 and not finite:
            break
    else:
        if finite and all(torch.isfinite(p).all() for p in member.model.parameters()):
            return True
    member.model.load_state_dict(backup)
    return False


def train_epoch_stacked(members: list[Member], split: Split, train: TrainSettings, epoch: int,
                        lr_scale: list[float] | None = None) -> list[bool]:
    """Train ``members`` one epoch (1-based) as one stacked model; True per member that stayed finite.

    A member whose loss or weights turn non-finite is not copied back, so its module keeps the
    epoch's starting weights (as :func:`train_epoch` restores them); the others are unaffected
    because every stacked op is block-diagonal over members (from the next epoch on they train in
    a smaller stack, which changes their values only by float rounding). ``lr_scale[k]`` multiplies member
    k's learning rate (a learning-rate temperature axis trained as one population).
    """
    n, bs = len(split.x_train), train.batch_size
    steps = math.ceil(n / bs)
    for m in members:
        m.model.train()
    stack = StackedModel.from_models([m.model for m in members],
                                     [m.optimizer.buffers for m in members])
    scale = None if lr_scale is None else stack.per_member(lr_scale)
    orders = torch.stack([epoch_order(m.seed, epoch, n) for m in members]).to(split.x_train.device)
    finite = torch.ones(len(members), dtype=torch.bool, device=split.x_train.device)
    for i in range(steps):
        xb, yb = stack_batches(split.x_train, split.y_train, orders[:, i * bs:(i + 1) * bs])
        if is_active(train.augment):
            seeds = [augment_seed(m.seed, epoch, i) for m in members]
            xb = augment(xb.flatten(0, 1), train.augment, seeds).view_as(xb)
        lr = lr_at((epoch - 1) * steps + i, steps, train)
        losses = stack.sgd_step(xb, yb, lr if scale is None else lr * scale,
                                train.momentum, train.weight_decay)
        finite &= torch.isfinite(losses)
    finite &= stack.finite()
    ok = finite.tolist()
    for k, m in enumerate(members):
        if ok[k]:
            m.optimizer.buffers = stack.write_back(k, m.model)
    return ok


def train_members(members: list[Member], split: Split, train: TrainSettings, epoch: int,
                  rates: list[float] | None = None) -> None:
    """Train the live members one epoch, stacked where possible; mark those that diverge.

    ``rates[i]``: member i's peak learning rate when the members come from cells that differ
    only in it (:func:`train_cells`); ``None``: all at ``train.lr``.
    """
    live = [i for i, m in enumerate(members) if m.alive]
    if not live:
        return
    rates = [train.lr] * len(members) if rates is None else rates
    if train.vectorize and split.task.stackable and not unsupported_modules(members[live[0]].model):
        scale = None if all(rates[i] == train.lr for i in live) else [rates[i] / train.lr for i in live]
        ok = train_epoch_stacked([members[i] for i in live], split, train, epoch, scale)
    else:
        ok = [train_epoch(members[i], split, replace(train, lr=rates[i]), epoch) for i in live]
    for i, fine in zip(live, ok, strict=True):
        if not fine:
            members[i].diverged_epoch = epoch


def curves_of(member: Member, split: Split, batch_size: int) -> list[float]:
    """Train/test loss and accuracy of a member, in the order of :data:`CURVES`."""
    tr = evaluate(member.model, split.x_train, split.y_train, batch_size, split.task)
    te = evaluate(member.model, split.x_test, split.y_test, batch_size, split.task)
    return [tr[0], tr[1], te[0], te[1]]


class PopulationState:
    """Everything needed to resume or publish a population, kept as plain arrays."""

    def __init__(self, cell: Cell, members: list[Member], arch: dict, data_info: dict) -> None:
        train, k = cell.recipe.train, len(members)
        self.cell, self.members, self.data_info = cell, members, data_info
        self.layout = describe(members[0].model, arch)
        self.keep = sorted(train.keep_epochs)
        n_values = num_values(self.layout["entries"])
        self.epochs_done = -1  # -1: not even the initialisation evaluated
        self.curves = np.full((k, len(CURVES), train.epochs + 1), np.nan)
        self.kept = np.zeros((k, len(self.keep), n_values), dtype=np.float32)

    def record(self, epoch: int, split: Split) -> None:
        """Evaluate live members after ``epoch`` and keep their weights if it is a kept epoch."""
        for i, m in enumerate(self.members):
            if m.alive:
                self.curves[i, :, epoch] = curves_of(m, split,
                                                     self.cell.recipe.train.eval_batch_size)
                if not np.isfinite(self.curves[i, 0, epoch]):
                    m.diverged_epoch = epoch
            if epoch in self.keep:
                self.kept[i, self.keep.index(epoch)] = flatten_state(m.model).numpy()
        self.epochs_done = epoch

    def save(self, path: Path, complete: bool) -> None:
        """Write the state to ``path`` atomically (:func:`phasezoo.atomic.write_atomic`)."""
        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f:
                self.write(f, complete)

        write_atomic(path, write)

    def write(self, f: h5py.Group, complete: bool) -> None:
        """Write the state into an open HDF5 file or group (a group per cell in a group partial)."""
        f.attrs.update(zoo=self.cell.zoo, cell=self.cell.id, fingerprint=self.cell.fingerprint(),
                       layout=json.dumps(self.layout), **{RECIPE_ATTR: self.cell.recipe.to_json()},
                       epochs_done=self.epochs_done, complete=complete, curves=json.dumps(CURVES),
                       data_info=json.dumps(self.data_info))
        f["seeds"] = np.array([m.seed for m in self.members], dtype=np.int64)
        f["diverged_epoch"] = np.array([m.diverged_epoch for m in self.members], dtype=np.int64)
        f["curves"] = self.curves
        f["kept_epochs"] = np.array(self.keep, dtype=np.int64)
        f.create_dataset("kept_weights", data=self.kept, compression="gzip", compression_opts=1)
        if not complete:
            f["state"] = np.stack([flatten_state(m.model).numpy() for m in self.members])
            f["momentum"] = np.stack([_momentum(m) for m in self.members])

    def read(self, f: h5py.Group) -> bool:
        """Restore from a partial state; False (and nothing restored) if it is for another config."""
        if f.attrs.get("fingerprint") != self.cell.fingerprint():
            return False
        self.epochs_done = int(f.attrs["epochs_done"])
        self.curves, self.kept = f["curves"][:], f["kept_weights"][:]
        for m, w, mom, d in zip(self.members, f["state"][:], f["momentum"][:],
                                f["diverged_epoch"][:], strict=True):
            m.model.load_state_dict(unflatten_state(torch.from_numpy(w), self.layout["entries"]))
            _set_momentum(m, mom)
            m.diverged_epoch = int(d)
        return True


def _momentum(m: Member) -> np.ndarray:
    """SGD momentum buffers of all parameters, flattened (zeros before the first step)."""
    return torch.cat([(b if b is not None else torch.zeros_like(p)).reshape(-1).cpu()
                      for b, p in zip(m.optimizer.buffers, m.optimizer.params, strict=True)]).numpy()


def _set_momentum(m: Member, flat: np.ndarray) -> None:
    offset = 0
    for i, p in enumerate(m.optimizer.params):
        n = p.numel()
        m.optimizer.buffers[i] = torch.from_numpy(flat[offset:offset + n].copy()).reshape(
            p.shape).to(p.device)
        offset += n


def partial_path(out: Path) -> Path:
    """Where an unfinished population's state lives next to its final output."""
    return out.with_name(out.name + ".partial")


def group_partial_path(cells: list[Cell], outs: list[Path]) -> Path:
    """Where an unfinished learning-rate group's state lives: one cell's ``partial_path``, else
    ``.train-rates-<load>.partial`` in the outputs' common folder (``results/<zoo>/``), named by
    what the group shares, not by one of its cells: a rate added in front still finds it, and
    training one of its cells alone never overwrites it."""
    if len(cells) == 1:
        return partial_path(outs[0])
    load = cells[0].load_id  # the cells differ only in their learning rate
    return Path(os.path.commonpath([o.parent for o in outs])) / f".train-rates-{load}.partial"


def save_partial(states: list[PopulationState], path: Path) -> None:
    """All states in one file, atomically: at the root for one cell, else a group per cell id
    (one file, so a kill never leaves the cells of a group at different epochs)."""
    if len(states) == 1:
        states[0].save(path, complete=False)
        return
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for st in states:
                st.write(f.create_group(st.cell.id), complete=False)

    write_atomic(path, write)


def resume(states: list[PopulationState], path: Path) -> None:
    """Restore every state that ``path`` (see :func:`save_partial`) holds for the same config."""
    if not path.exists():
        return
    with h5py.File(path, "r") as f:
        for st in states:
            where = f if len(states) == 1 else f.get(st.cell.id)
            if where is not None and st.read(where):
                tqdm.write(f"{st.cell.id}: resuming after epoch {st.epochs_done} from {path}")
            else:
                tqdm.write(f"{path}: no state of {st.cell.id} for this config; starting it afresh")


def lr_group(cells: list[Cell]) -> Recipe:
    """The recipe shared by ``cells``, which may differ only in the learning rate (returned
    with the first cell's).

    Raises:
        ValueError: naming two cells that differ in anything else (zoo, seeds, any other key).
    """
    def rest(c: Cell) -> tuple:
        return c.zoo, c.seeds, replace(c.recipe, train=replace(c.recipe.train, lr=0.0))

    ids = [c.id for c in cells]
    if len(set(ids)) < len(ids):
        raise ValueError(f"cells {ids}: a cell is named twice")
    if len(cells) > 1 and cells[0].temperature[0] != "lr":
        raise ValueError(f"cells {ids}: only cells of a learning-rate axis train as one population")
    for c in cells[1:]:
        if rest(c) != rest(cells[0]):
            raise ValueError(f"cells {cells[0].id} and {c.id} differ in more than the learning "
                             "rate, so they cannot train as one population")
    return cells[0].recipe


def train_cell(cell: Cell, out: str | Path, device: torch.device, data_root: str | Path = "data",
               progress: bool = True) -> Path:
    """Train all seeds of ``cell`` and write ``out`` (HDF5); resume from ``<out>.partial`` if any."""
    return train_cells([cell], [out], device, data_root, progress)[0]


def train_cells(cells: list[Cell], outs: list[str | Path], device: torch.device,
                data_root: str | Path = "data", progress: bool = True,
                partial: Path | None = None) -> list[Path]:
    """Train cells that differ only in the learning rate as one population; write each cell's file.

    Why: with the learning rate as the temperature axis, the cells of one load value share
    architecture and data, so all their members (seeds × rates) stack into one model, each
    member at its cell's rate: one job, one process start-up and one step for all of them.
    Each member still sees exactly what training its own cell alone would give it (its seed's
    initialisation and data order, its rate), up to float rounding. A group's partial state is
    one file (``partial``, by default :func:`group_partial_path`); a cell that has no state there (a rate added to the
    config while the group was unfinished) trains on its own until it catches up with the others,
    then joins the stack.
    """
    recipe = lr_group(cells)
    train = recipe.train
    outs = [Path(o) for o in outs]
    for o in outs:
        o.parent.mkdir(parents=True, exist_ok=True)
    split = cell_split(recipe, data_root, device)
    states = [PopulationState(c, [build_member(c, s, split, device) for s in c.seeds],
                              architecture(c, split), split.info) for c in cells]
    part = partial or group_partial_path(cells, outs)
    resume(states, part)
    for st in states:
        if st.epochs_done < 0:
            st.record(0, split)
    start = min(st.epochs_done for st in states)
    name = cells[0].id if len(cells) == 1 else f"{cells[0].id} +{len(cells) - 1} learning rates"
    bar = tqdm(total=train.epochs, initial=start, desc=f"{cells[0].zoo} {name}", unit="epoch",
               disable=not progress)
    for epoch in range(start + 1, train.epochs + 1):
        behind = [st for st in states if st.epochs_done < epoch]
        train_members([m for st in behind for m in st.members], split, train, epoch,
                      [st.cell.recipe.train.lr for st in behind for _ in st.members])
        for st in behind:
            st.record(epoch, split)
        save_partial(states, part)
        bar.update(1)
        acc = [st.curves[i, 3, epoch] for st in states for i, m in enumerate(st.members) if m.alive]
        bar.set_postfix(alive=len(acc), test_acc=f"{np.mean(acc):.3f}" if acc else "-")
    bar.close()
    for st, out in zip(states, outs, strict=True):
        st.save(out, complete=True)
        seal(out)  # the measure and publish stages check it (phasezoo.integrity)
    part.unlink(missing_ok=True)
    return outs
