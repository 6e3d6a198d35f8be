"""The dataset registry: names → loader functions and the kind of task each poses.

A dataset is one function ``fn(root, **options) -> Split`` decorated with
:func:`register_dataset` in a module of this package (by modality: ``image_sets``, ``corpora``,
``pde``); :func:`phasezoo.data.create_dataset` is the factory that calls it. The config check
reads the same registrations from source, without torch (:mod:`phasezoo.registries`).
"""

from __future__ import annotations

from typing import Any, Callable

DatasetFn = Callable[..., Any]  # fn(root, **options) -> phasezoo.data.split.Split
_DATASETS: dict[str, DatasetFn] = {}
_TASKS: dict[str, str] = {}


def register_dataset(fn: DatasetFn | None = None, *, task: str = "classification") -> Any:
    """Register ``fn(root, **options)`` under its name with '_' replaced by '-', with the kind of
    task it poses (known without loading the data, so the phases stage can read errors right)."""
    def deco(f: DatasetFn) -> DatasetFn:
        name = f.__name__.replace("_", "-")
        _DATASETS[name], _TASKS[name] = f, task
        return f
    return deco(fn) if fn is not None else deco


class DownloadError(ValueError):
    """A dataset's files are not in the data root and could not be downloaded. A ValueError, so
    the CLI prints it as its one error line (a compute node without internet is the usual
    cause, and torchvision's own failure is a 40-line traceback).
    :func:`phasezoo.data.create_dataset` puts the dataset's name in front."""

    @classmethod
    def of(cls, error: BaseException, root: object) -> "DownloadError":
        """The one line for a download that raised ``error`` into ``root``: urllib's reason
        (e.g. ``[Errno -3] Temporary failure in name resolution``), else the error's text, on
        one line (MNIST's lists every mirror on lines of its own)."""
        reason = getattr(error, "reason", None)
        why = reason if isinstance(reason, (str, OSError)) else error
        return cls(f"download failed ({' '.join(str(why).split())}); put the files in {root} "
                   "or run where the internet is reachable")


def task_kind(name: str) -> str:
    """The task kind of a registered dataset (see :mod:`phasezoo.tasks`)."""
    if name not in _TASKS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    return _TASKS[name]


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return sorted(_DATASETS)


def dataset_fn(name: str) -> DatasetFn:
    """The loader registered under ``name``.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names).
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset '{name}'; registered datasets: {list_datasets()}")
    return _DATASETS[name]
