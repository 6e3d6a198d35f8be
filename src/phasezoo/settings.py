"""Typed, frozen settings: one class per section of a zoo's config.

:func:`phasezoo.config.load_config` builds them once from the schema-validated YAML, and the
stages take them as arguments, so a key can be followed from the YAML to its use by name
(``metrics.hessian_max_iter`` is ``MetricsSettings.hessian_max_iter``). The schema stays the one
source of keys, types and defaults: ``tests/test_settings.py`` checks each class's fields
against it, so neither can gain a key the other lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping, TypeVar

S = TypeVar("S", bound="Section")


@dataclass(frozen=True)
class Section:
    """A config section: fields named and ordered as the schema's keys. Lists become tuples, so
    a section is immutable apart from its ``options``-like mappings, which no stage writes."""

    SECTION: ClassVar[str]  # the section's key in a zoo's config

    @classmethod
    def of(cls: type[S], raw: Mapping[str, Any]) -> S:
        """The section from its validated dict (every key present: the schema filled defaults)."""
        return cls(**{f.name: _freeze(raw[f.name]) for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        """The section as the validated YAML had it (tuples back to lists): what a job's config
        file, a cell's hyperparameters and the card's recipe hold."""
        return {f.name: _thaw(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class DatasetSettings(Section):
    """``dataset``: which registered dataset, and how its inputs are prepared."""

    SECTION: ClassVar[str] = "dataset"
    name: str
    normalize: bool
    image_size: int | None
    channels: int | None
    train_size: int | None
    test_size: int | None
    options: Mapping[str, Any]


@dataclass(frozen=True)
class ModelSettings(Section):
    """``model``: the registered architecture and its base width, depth and options."""

    SECTION: ClassVar[str] = "model"
    name: str
    width: int
    depth: int
    options: Mapping[str, Any]


@dataclass(frozen=True)
class TrainSettings(Section):
    """``train``: the recipe every member follows (an axis overrides its own key per cell)."""

    SECTION: ClassVar[str] = "train"
    epochs: int
    keep_epochs: tuple[int, ...]
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    onecycle_pct_start: float
    step_milestones: tuple[int, ...]
    step_gamma: float
    data_fraction: float
    eval_batch_size: int
    augment: Mapping[str, Any]
    vectorize: bool


@dataclass(frozen=True)
class MetricsSettings(Section):
    """``metrics``: how each checkpoint and seed pair is measured (keys a config leaves out come
    from ``protocol``, :mod:`phasezoo.protocols`)."""

    SECTION: ClassVar[str] = "metrics"
    protocol: str
    landscape_epoch: int
    cka_output: str
    cka_data: str
    cka_batches: int
    cka_batch_size: int
    cka_pooling: str
    cka_mixup_alpha: float
    interpolation_points: int
    max_pairs: int
    cka_max_pairs: int
    mc_epochs: int
    mc_epochs_rule: str
    mc_lr: float
    mc_momentum: float
    mc_batch_size: int
    mc_weight_decay: float
    mc_schedule: str
    mc_init: str
    mc_train_data: str
    mc_points: int
    mc_eval_data: str
    mc_seed: int
    farms: bool
    farms_fit: str
    farms_filter_zeros: bool
    hessian_batches: int
    hessian_batch_size: int
    hessian_top_data: str
    hessian_seed: int
    hessian_tol: float
    hessian_trace_tol: float
    hessian_max_iter: int
    topology: bool
    topology_steps: int
    topology_radius: float
    topology_max_iter: int
    llc_steps: int
    llc_chains: int
    llc_burnin: int
    llc_batch_size: int
    llc_epsilon: float
    llc_nbeta: float | None
    llc_gamma: float


@dataclass(frozen=True)
class PhaseThresholds(Section):
    """``phases``: the thresholds that turn a cell's aggregates into its phase (%, %, CKA), the
    rule that sets the CKA split (the anchor's fixed value or this zoo's own median), and the
    relative move of each threshold under which a label counts as sensitive
    (:mod:`phasezoo.boundaries`)."""

    SECTION: ClassVar[str] = "phases"
    train_error: float
    mc_tolerance: float
    cka: float
    cka_rule: str
    cka_rule_min_cells: int
    sensitivity: float


@dataclass(frozen=True)
class BenchmarkSettings(Section):
    """``benchmark``: repeats of every split of the zoo's WSL benchmark."""

    SECTION: ClassVar[str] = "benchmark"
    seeds: int


@dataclass(frozen=True)
class StudiesSettings(Section):
    """``studies``: the fine-tuning transfer study (off when ``transfer_dataset`` is None) and
    the three-regime pruning study's budget (:mod:`phasezoo.wsl.regimes`)."""

    SECTION: ClassVar[str] = "studies"
    transfer_dataset: str | None
    finetune_epochs: int
    finetune_lr: float
    finetune_batch_size: int
    regime_densities: tuple[float, ...]
    regime_epochs: int
    regime_dense_seeds: int
    regime_retrain_seeds: int


@dataclass(frozen=True)
class Resources(Section):
    """``resources``: what a cluster job of each stage asks for (GPU, memory in MB, minutes)."""

    SECTION: ClassVar[str] = "resources"
    gpu: bool
    mem_mb: Mapping[str, int]
    runtime: Mapping[str, int]


SECTIONS: tuple[type[Section], ...] = (DatasetSettings, ModelSettings, TrainSettings,
                                       MetricsSettings, PhaseThresholds, BenchmarkSettings,
                                       StudiesSettings, Resources)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
