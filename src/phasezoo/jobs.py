"""How a zoo's cells map to ``train`` jobs: one cell each, or all learning rates of one load value.

Kept free of torch: the Snakefile reads it to lay out the DAG.
"""

from __future__ import annotations

from phasezoo.config import Cell, ZooSpec
from phasezoo.dataset_facts import dataset_facts
from phasezoo.task_kinds import task_kind


def stacks_learning_rates(zoo: ZooSpec) -> bool:
    """Whether the zoo's cells of one load value train as one population (see :func:`train_groups`)."""
    return (zoo.temperature.name == "lr" and len(zoo.temperature.values) > 1
            and zoo.train.vectorize and stackable(zoo.dataset.name))


def stackable(dataset: str) -> bool:
    """Whether ``dataset``'s task kind has a stacked form (a PINN's loss differentiates the model
    w.r.t. its inputs: no; :attr:`phasezoo.task_kinds.TaskKind.stackable`)."""
    return task_kind(dataset_facts(dataset).task).stackable


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


# Cluster job groups (profiles/slurm): a train job's cells' train → measure chains are sent to
# the scheduler together with chains of other cells, as many of these counts as fit in the
# wall-time cap one after another, or alone. The profile's group-components names every group
# :func:`job_group` can return (tests/test_jobs.py checks it).
GROUP_SIZES = (8, 4, 2)
# The cap on a grouped job's wall time, minutes (environment: PHASEZOO_SLURM_MAX_GROUP_RUNTIME).
DEFAULT_GROUP_MINUTES = 720


def chain_minutes(zoo: ZooSpec) -> int:
    """Wall-time limit of one train job's chain (its train and its cells' measure jobs), in
    minutes: a learning-rate group's train job covers all its cells."""
    cells = len(train_groups(zoo)[0])
    return cells * (zoo.resources.runtime["train"] + zoo.resources.runtime["measure"])


def job_group(zoo: ZooSpec, cap_minutes: int = DEFAULT_GROUP_MINUTES) -> str | None:
    """The Snakemake group of the zoo's per-cell jobs: ``cells-{gpu|cpu}-{n}``, n the largest of
    :data:`GROUP_SIZES` whose n chains fit in ``cap_minutes``, or None (each chain its own job).

    Why: a grouped job asks for the sum of its chains' runtimes (they share one GPU, one after
    another); a fixed group of 8 ResNet-18 chains asked for about 12 days. Groups are named by
    size and device, not by zoo, so one static profile covers every zoo; chains of zoos of the
    same class may share a job.
    """
    chain = chain_minutes(zoo)
    kind = "gpu" if zoo.resources.gpu else "cpu"
    fitting = [n for n in GROUP_SIZES if n * chain <= cap_minutes]
    return f"cells-{kind}-{fitting[0]}" if fitting else None


def group_names() -> list[str]:
    """Every group :func:`job_group` can return (the profile's group-components keys)."""
    return [f"cells-{kind}-{n}" for kind in ("gpu", "cpu") for n in GROUP_SIZES]
