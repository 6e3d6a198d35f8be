"""The dataset registry: names → loader functions.

A dataset is one function ``fn(root, **options) -> Split`` decorated with
:func:`register_dataset` in a module of this package (by modality: ``image_sets``, ``corpora``,
``pde``); :func:`phasezoo.data.create_dataset` is the factory that calls it. What is known of a
dataset without loading it (its task kind, sizes, shape, classes, source terms) is its record in
:mod:`phasezoo.dataset_facts`, which every registration must have, and a loader reads those facts
from its record (:func:`facts_of`) rather than restating them. The config check reads the
registered options from source, without torch (:mod:`phasezoo.registries`).
"""

from __future__ import annotations

from typing import Any, Callable

from phasezoo.dataset_facts import DATASET_FACTS, DatasetFacts

DatasetFn = Callable[..., Any]  # fn(root, **options) -> phasezoo.data.split.Split
_DATASETS: dict[str, DatasetFn] = {}


def register_dataset(fn: DatasetFn) -> DatasetFn:
    """Register ``fn(root, **options)`` under its name with '_' replaced by '-'.

    Raises:
        ValueError: if the name has no record in :data:`phasezoo.dataset_facts.DATASET_FACTS`
            (its task kind, sizes, shape, classes and source terms: what the config check, the
            estimate and the card read without loading it).
    """
    name = dataset_name(fn)
    if name not in DATASET_FACTS:
        raise ValueError(f"dataset '{name}': no record in phasezoo.dataset_facts.DATASET_FACTS "
                         "(add its task kind, sizes, shape, classes and source terms)")
    _DATASETS[name] = fn
    return fn


def dataset_name(fn: DatasetFn) -> str:
    """The name loader ``fn`` registers under: its function name with '_' replaced by '-' (the
    rule :mod:`phasezoo.registries` applies when it reads the names from source)."""
    return fn.__name__.replace("_", "-")


def facts_of(fn: DatasetFn) -> DatasetFacts:
    """The record of loader ``fn``: its shape, classes, sizes and task kind.

    Why a loader asks for its record by itself instead of by a name: each fact then has one
    home (the record), and no dataset's name is written anywhere but its function and record.
    """
    return DATASET_FACTS[dataset_name(fn)]


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
