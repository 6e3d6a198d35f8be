"""What one zoo row needs to be reproduced: its cell's data and the Hessian sample behind its
stored λmax.

Why a module of its own: a row carries its cell's hyperparameters (``hp_*`` columns) and its
module (``weights`` + ``layout``), but a user who wants its test accuracy or its λmax back would
otherwise have to find :func:`phasezoo.data.cell_split`, the evaluation batch size and the
metrics stage's seeded sample in the source. A zoo is untrusted input, so the data a row names
is rebuilt only from registered datasets already in ``data_root`` (or shipped with a package),
never from a local file it names, and downloaded only when the caller allows it
(:func:`zoo_cell_split`); the studies rebuild their data the same way.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from phasezoo.recipe import Recipe
from phasezoo.sources import is_local, source_problem

def cell_hparams(row: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's hyperparameters from a zoo row's ``hp_*`` columns (lists and mappings are stored
    as JSON text): what :func:`phasezoo.data.cell_split` and the model were given."""
    out = {}
    for col, value in row.items():
        if str(col).startswith("hp_"):
            if isinstance(value, str) and value[:1] in ("[", "{"):
                value = json.loads(value)
            out[str(col)[3:]] = value.item() if hasattr(value, "item") else value
    return out


def zoo_data_problem(hp: dict[str, Any], input_shape: Sequence[int] | None,
                     allow_local: bool = False) -> str | None:
    """Why the studies may not rebuild the data a zoo's row names (None if they may).

    Why: a zoo is downloaded, and its ``hp_*`` columns choose what the studies read. Only a
    registered dataset, with no option naming a local file (``text``'s ``source=/etc/passwd``)
    and images no larger than the zoo's own models take, ``input_shape`` (a crafted
    ``image_size`` would resize every image to any size). ``allow_local`` (``--allow-local-data``,
    which the workflow passes for the zoo it just built from its own config) admits a ``text``
    source under ``data_root`` (:func:`phasezoo.sources.source_problem`).
    """
    from phasezoo.data import list_datasets

    name, prep = hp.get("dataset"), hp.get("dataset_options", {})
    if not isinstance(name, str) or name not in list_datasets():
        return f"hp_dataset {str(name)[:100]!r} is not a registered dataset"
    options = prep.get("options", {}) if isinstance(prep, dict) else None
    if not isinstance(options, dict):
        return "hp_dataset_options is not {options: {...}, ...}"
    for key, value in options.items():
        if _names_local_file(key, value) and not (
                allow_local and key == "source" and source_problem(value) is None):
            return (f"hp_dataset_options option {key}={value[:100]!r} names a local file; the "
                    "studies never read a file a zoo names")
    for key, dim in (("image_size", -1), ("channels", 0)):
        value = prep.get(key)
        if value is not None and (not input_shape or value != input_shape[dim]):
            return (f"hp_dataset_options {key}={str(value)[:20]} is not the models' input "
                    f"shape {list(input_shape or [])}")
    return None


def _names_local_file(key: str, value: Any) -> bool:
    """Whether a dataset option names a local file: ``source`` unless a named or hub text
    source (:func:`phasezoo.sources.is_local`), any other option when it holds a path."""
    if not isinstance(value, str):
        return False
    if key == "source":
        return is_local(value)
    return "/" in value or "\\" in value or value.startswith("~")


def zoo_cell_split(hp: dict[str, Any], data_root: str, input_shape: Sequence[int] | None,
                   allow_download: bool = False, allow_local: bool = False) -> Any:
    """A cell's data rebuilt as its zoo row names it (:func:`phasezoo.data.cell_split`), from
    what is already in ``data_root`` or ships with a package: a download only with
    ``allow_download`` (``--allow-download``).

    Raises:
        ValueError: one line, when the zoo names data it may not (:func:`zoo_data_problem`) or
            data that would have to be downloaded.
    """
    from phasezoo.data import cell_split

    problem = zoo_data_problem(hp, input_shape, allow_local)
    if problem:
        raise ValueError(problem)
    recipe = Recipe.from_record(hp)
    with _network(allow_download) as attempts:
        try:
            return cell_split(recipe, data_root)
        except Exception:
            if not attempts:
                raise
    raise ValueError(f"dataset '{hp['dataset']}' is not in {data_root} and would be downloaded "
                     "(the zoo names it); pass --allow-download to let the studies download it")


@contextmanager
def _network(allowed: bool) -> Iterator[list[str]]:
    """Inside, unless ``allowed``, every outgoing connection fails (``OSError``) and is recorded
    in the list yielded. Why the network and not a list of datasets: every loader downloads
    what is missing on its own (torchvision, ``datasets``, Tiny ImageNet's zip), and this covers
    all of them, present and future."""
    attempts: list[str] = []
    if allowed:
        yield attempts
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(str(args[-1] if args else kwargs))
        raise OSError("phasezoo studies: downloads are off (--allow-download)")

    real = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex
    socket.getaddrinfo = socket.socket.connect = socket.socket.connect_ex = refuse
    try:
        yield attempts
    finally:
        socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = real


def row_data(row: Mapping[str, Any], data_root: str | Path = "data",
             device: torch.device | str = "cpu", allow_download: bool = False) -> Any:
    """The train and test data of a row's cell (a :class:`phasezoo.data.Split`), rebuilt from
    its ``hp_*`` columns exactly as the train and metrics stages built it: with the row's
    ``hp_eval_batch_size``, :func:`phasezoo.evaluation.evaluate` on ``x_test``/``y_test``
    gives the row's ``test_accuracy``.

    Raises:
        ValueError: when the row names data it may not, or data not in ``data_root`` and
            ``allow_download`` is off (:func:`zoo_cell_split`).
    """
    from phasezoo.weights import parse_layout

    shape = parse_layout(str(row["layout"]))["architecture"]["kwargs"].get("input_shape")
    return zoo_cell_split(cell_hparams(row), str(data_root), shape, allow_download).to(device)


# The card's block of settings (phasezoo.card.render_card): ``## Training and metric settings``
# followed by one fenced JSON block.
_SETTINGS_BLOCK = re.compile(r"^## Training and metric settings\n\n```json\n(.*?)\n```",
                             re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class HessianSettings:
    """The ``metrics`` settings a stored λmax depends on (named as in the config; a zoo's
    :class:`phasezoo.settings.MetricsSettings` has them too): the sample's size, split and
    seed, and Lanczos's tolerance and steps."""

    hessian_batches: int
    hessian_batch_size: int
    hessian_seed: int
    hessian_max_iter: int
    hessian_tol: float
    hessian_top_data: str


# The type each Hessian setting must have in a card.
HESSIAN_KEYS = {"hessian_batches": int, "hessian_batch_size": int, "hessian_seed": int,
                "hessian_max_iter": int, "hessian_tol": float, "hessian_top_data": str}


def zoo_hessian_settings(zoo_dir: str | Path) -> HessianSettings:
    """The Hessian settings a published zoo was measured with, read from its card's settings
    block (only these keys: a zoo published before later keys existed still reads).

    Raises:
        ValueError: naming the card, when it has no settings block, the block is not JSON, or
            a key is missing or of the wrong type.
    """
    from phasezoo.zoo_folder import MAX_CARD_BYTES

    card = Path(zoo_dir) / "README.md"
    if card.stat().st_size > MAX_CARD_BYTES:
        raise ValueError(f"{card}: more than a card may hold ({MAX_CARD_BYTES:,} bytes)")
    match = _SETTINGS_BLOCK.search(card.read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{card}: no '## Training and metric settings' JSON block")
    try:
        raw = json.loads(match.group(1)).get("metrics")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{card}: the settings block is not a JSON mapping ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{card}: the settings block has no 'metrics' mapping")
    _check_hessian_keys(card, raw)
    return HessianSettings(**{key: raw[key] for key in HESSIAN_KEYS})


def _check_hessian_keys(card: Path, raw: Mapping[str, Any]) -> None:
    """The card's Hessian settings have their types (a card is untrusted input): positive
    integers for counts, a number for the tolerance, ``train`` or ``test`` for the data."""
    for key, kind in HESSIAN_KEYS.items():
        if key not in raw:
            raise ValueError(f"{card}: metrics setting '{key}' is missing")
        value = raw[key]
        number = kind is float and isinstance(value, (int, float))
        if isinstance(value, bool) or not (isinstance(value, kind) or number):
            raise ValueError(f"{card}: metrics.{key} is {str(value)[:40]!r}, not a "
                             f"{kind.__name__}")
        if kind is int and key != "hessian_seed" and value < 1:
            raise ValueError(f"{card}: metrics.{key} is {value}, not a positive integer")
    if raw["hessian_top_data"] not in ("train", "test"):
        raise ValueError(f"{card}: metrics.hessian_top_data is "
                         f"{str(raw['hessian_top_data'])[:40]!r}, not 'train' or 'test'")


def row_hessian_sample(split: Any, settings: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed, seeded batches on which the metrics stage measured the stored
    ``hessian_top_eigenvalue`` of every row of a cell: ``hessian_batches`` ×
    ``hessian_batch_size`` examples of the test split (``hessian_top_data: test``, PTMZ's) or of
    the training split, drawn with ``hessian_seed`` (:meth:`phasezoo.metrics.Context.for_cell`).

    ``split``: the row's data (:func:`row_data`); ``settings``: :func:`zoo_hessian_settings`
    (or a zoo's ``MetricsSettings``).
    """
    from phasezoo.landscape.hessian import sample_batches

    x, y = ((split.x_test, split.y_test) if settings.hessian_top_data == "test"
            else (split.x_train, split.y_train))
    return sample_batches(x, y, settings.hessian_batches, settings.hessian_batch_size,
                          settings.hessian_seed)


def row_top_eigenvalue(model: torch.nn.Module, split: Any, settings: Any) -> float:
    """λmax of a row's model recomputed as the metrics stage computed it: Lanczos from the
    ``hessian_seed`` start on :func:`row_hessian_sample`, with the zoo's tolerance and steps."""
    from phasezoo.landscape.hessian import hessian_top_eigenvalue

    return hessian_top_eigenvalue(model, split.task, row_hessian_sample(split, settings),
                                  tol=settings.hessian_tol, max_iter=settings.hessian_max_iter,
                                  seed=settings.hessian_seed)
