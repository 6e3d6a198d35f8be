"""One grid cell's recipe: the typed ``train``, ``dataset`` and ``model`` sections of its zoo
with the cell's two axis values applied, frozen.

Why a type and not a dict: training, the data, the model, the metrics and the seed pairs all
read the cell's settings, and a dict read by string keys fails inside a running job when a key
is renamed, while an attribute fails when the module is imported and is followed by name from
the YAML to its use. The recipe also has one flat form, :meth:`Recipe.record` (the published
zoo's ``hp_*`` columns and the cell's fingerprint), written into ``train.h5`` under a
versioned attribute (:data:`RECIPE_ATTR`); :meth:`Recipe.from_record` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from phasezoo.config_checks import zoo_section_defaults
from phasezoo.settings import DatasetSettings, ModelSettings, TrainSettings

# The train.h5 attribute holding the recipe's record, named by the record's layout version:
# a new layout gets a new name, so a file is never read with the wrong one.
RECIPE_ATTR = "recipe_v1"
# The attribute that held the same record in train.h5 files written before the recipe was typed
# (the layout of version 1): those files stay readable (:func:`recipe_of_attrs`).
RECIPE_ATTR_V0 = "hparams"
# Dataset preparation keys, recorded under ``dataset_options`` when set.
DATASET_PREP = ("image_size", "channels", "train_size", "test_size", "options")
# Where each axis of the grid lands: a key of the train or model section, or the recipe's own
# ``beta`` (the PINN's convection coefficient, a dataset option that an axis overrides).
AXIS_SECTION = {"batch_size": "train", "lr": "train", "data_fraction": "train",
                "width": "model", "beta": "recipe"}


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a cell's trained weights besides its seeds."""

    train: TrainSettings
    dataset: DatasetSettings
    model: ModelSettings
    beta: float | None = None  # the convection coefficient when it is the load axis

    @classmethod
    def of(cls, train: TrainSettings, dataset: DatasetSettings, model: ModelSettings,
           axes: Mapping[str, float]) -> "Recipe":
        """The zoo's sections with the cell's axis values (``{axis name: value}``) applied."""
        recipe = cls(train, dataset, model)
        for name, value in axes.items():
            section = AXIS_SECTION[name]
            if section == "recipe":
                recipe = replace(recipe, **{name: value})
            else:
                part = getattr(recipe, section)
                recipe = replace(recipe, **{section: replace(part, **{name: value})})
        return recipe

    def record(self) -> dict[str, Any]:
        """The recipe as one flat mapping: the published ``hp_*`` columns (in this order) and
        what the fingerprint hashes. Keys that were added later appear only when set
        (``augment``, ``dataset_options``, ``model_options``, ``beta``), so the records of
        cells that leave them unset, and so their fingerprints, stay as they were."""
        data, model = self.dataset, self.model
        hp = {**self.train.as_dict(), "dataset": data.name, "normalize": data.normalize,
              "model": model.name, "width": model.width, "depth": model.depth}
        if not any(hp["augment"].values()):
            del hp["augment"]
        prep = {k: getattr(data, k) for k in DATASET_PREP if getattr(data, k) not in (None, {})}
        if prep:
            hp["dataset_options"] = dict(prep)
        if model.options:
            hp["model_options"] = dict(model.options)
        if self.beta is not None:
            hp["beta"] = self.beta
        return hp

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Recipe":
        """The recipe back from :meth:`record` (a ``train.h5`` attribute or a zoo row's
        ``hp_*`` columns). A train key the record lacks takes the schema's default: a record
        written before the key existed was trained with it.

        Raises:
            ValueError: naming the first required key the record lacks.
        """
        missing = [k for k in ("dataset", "normalize", "model", "width", "depth") if k not in record]
        if missing:
            raise ValueError(f"recipe record: key '{missing[0]}' is missing")
        defaults = zoo_section_defaults("train")
        train = {f.name: record.get(f.name, defaults[f.name]) for f in fields(TrainSettings)}
        prep = dict(record.get("dataset_options") or {})
        dataset = {"name": record["dataset"], "normalize": record["normalize"],
                   **{k: prep.get(k, {} if k == "options" else None) for k in DATASET_PREP}}
        model = {"name": record["model"], "width": record["width"], "depth": record["depth"],
                 "options": dict(record.get("model_options") or {})}
        return cls(TrainSettings.of(train), DatasetSettings.of(dataset), ModelSettings.of(model),
                   record.get("beta"))

    def to_json(self) -> str:
        """:meth:`record` as JSON text (the ``train.h5`` attribute :data:`RECIPE_ATTR`)."""
        return json.dumps(self.record())


def recipe_of_attrs(attrs: Mapping[str, Any], where: str) -> Recipe:
    """The recipe a ``train.h5`` file records, under :data:`RECIPE_ATTR` or, in a file written
    before it, :data:`RECIPE_ATTR_V0` (the same record).

    Raises:
        ValueError: naming ``where`` when the file records neither.
    """
    for key in (RECIPE_ATTR, RECIPE_ATTR_V0):
        if key in attrs:
            return Recipe.from_record(json.loads(attrs[key]))
    raise ValueError(f"{where}: no '{RECIPE_ATTR}' attribute (not a phasezoo train.h5?)")
