"""How a zoo's cells map to ``train`` jobs: one cell each, or all learning rates of one load value.

Kept free of torch: the Snakefile reads it to lay out the DAG.
"""

from __future__ import annotations

from phasezoo.config import Cell, ZooSpec
from phasezoo.registries import dataset_tasks

# Task kinds with no stacked form (the PINN's loss differentiates the model w.r.t. its inputs:
# ``phasezoo.tasks.ConvectionTask.stackable``); tests/test_jobs.py checks this against the tasks.
LOOPED_TASKS = frozenset({"pinn-convection"})


def stacks_learning_rates(zoo: ZooSpec) -> bool:
    """Whether the zoo's cells of one load value train as one population (see :func:`train_groups`)."""
    return (zoo.temperature.name == "lr" and len(zoo.temperature.values) > 1
            and zoo.train.vectorize and dataset_tasks().get(zoo.dataset.name) not in LOOPED_TASKS)


def train_groups(zoo: ZooSpec) -> list[list[Cell]]:
    """The cells each ``train`` job trains, in the zoo's cell order.

    Why: with the learning rate as the temperature axis, the cells of one load value differ
    only in their rate, so their members (seeds × rates) stack into one population, each member
    at its own rate (:func:`phasezoo.train.train_cells`): one job and one process start-up per
    load value, and K = seeds × rates members per step. Otherwise (batch size as temperature, a
    task without a stacked form, ``train.vectorize: false``) every cell is its own job. Decided
    from the config alone (the DAG is laid out without torch): a model with a layer that has no
    stacked form (dropout p > 0) is still grouped, and its job trains the members one by one.
    """
    cells = zoo.cells()
    if not stacks_learning_rates(zoo):
        return [[c] for c in cells]
    groups: dict[tuple[str, float], list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.load, []).append(c)
    return list(groups.values())


def load_part(cell: Cell) -> str:
    """The load half of a learning-rate cell's id (``width-8`` of ``lr-0.01_width-8``): its group's id."""
    if cell.temperature[0] != "lr":
        raise ValueError(f"cell {cell.id}: only learning-rate cells form groups")
    return cell.load_id
