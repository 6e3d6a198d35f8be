"""The card's per-split configs: each shipped benchmark split as a ``datasets`` config.

``splits.json`` names each split's train, validation and test cells; a user without phasezoo
cannot turn that into rows. So the card also declares one config per shipped split, named
``<split>-<seed>`` (``random-0``, ``leave_phase_out-IV-A-0``, ``scale_transfer-0``), whose
``train``, ``validation`` and ``test`` splits list the shards of those cells: a shard holds one
cell, so a split's rows are exactly its cells' shards, and
``datasets.load_dataset(ZOO, "random-0")`` gives the benchmark's split with ``datasets`` alone.

Written by :mod:`phasezoo.zoo` from the records it writes to ``splits.json``, and checked by
:mod:`phasezoo.verify` by computing them again from the shipped file and the shards' cells: a
card whose split configs say anything else (a test cell also trained on, a shard of another
cell) is refused.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

# (splits.json key, the datasets split name): datasets knows "validation", not "val".
HF_SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))
# Card bytes the split configs may take (the card may hold MAX_CARD_BYTES = 16 MiB). Seeds are
# shipped as configs in order until the next seed's configs would pass it: every seed for the
# catalogue's zoos (88 cells at most, ~0.3 MB for 10 seeds), fewer for grids of thousands of cells.
SPLIT_CONFIG_BYTES = 4 << 20
# A shipped split: (name, train cells, validation cells, test cells), per seed.
Shipped = Mapping[int, Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[str]]]]


def config_name(split: str, seed: int) -> str:
    """The config of ``split`` (a ``splits.json`` name) at ``seed``: ``:`` becomes ``-``, since
    ``datasets`` refuses a config name with a character Windows forbids in a folder name."""
    return f"{split.replace(':', '-')}-{seed}"


def split_configs(shipped: Shipped, shard_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """The configs of the shipped splits, seeds in increasing order while they fit
    :data:`SPLIT_CONFIG_BYTES`; a split with an empty set (a grid too small for it) gets none.

    ``shard_of``: cell id → its shard's path in the zoo (``data/<cell>-<digest>.h5``). Each
    config holds ``config_name`` and ``data_files``; the card adds the features and read batch.

    Raises:
        KeyError: naming a cell of a split that has no shard.
    """
    out: list[dict[str, Any]] = []
    used = 0
    for seed in sorted(shipped):
        configs = [_config(name, seed, (train, val, test), shard_of)
                   for name, train, val, test in shipped[seed] if train and val and test]
        cost = sum(len(path) + 8 for c in configs for files in c["data_files"]
                   for path in files["path"])  # "    - " + path + newline, roughly
        if used + cost > SPLIT_CONFIG_BYTES:
            break
        out, used = out + configs, used + cost
    return out


def _config(name: str, seed: int, parts: tuple[Sequence[str], ...],
            shard_of: Mapping[str, str]) -> dict[str, Any]:
    """One split's config: its three sets' shards, in cell order."""
    files = []
    for (_, hf_name), cells in zip(HF_SPLITS, parts, strict=True):
        missing = [c for c in cells if c not in shard_of]
        if missing:
            raise KeyError(f"split {name} (seed {seed}): cell '{missing[0]}' has no shard")
        files.append({"split": hf_name, "path": [shard_of[c] for c in sorted(cells)]})
    return {"config_name": config_name(name, seed), "data_files": files}


def shipped_of(records: Sequence[Mapping[str, Any]]) -> dict[int, list[tuple]]:
    """``splits.json`` records (:func:`phasezoo.splits.split_records`) grouped by seed, in the
    form :func:`phasezoo.splits.read_splits` gives (``ZooSplits.shipped``)."""
    out: dict[int, list[tuple]] = {}
    for r in records:
        out.setdefault(r["seed"], []).append((r["name"], r["train"], r["val"], r["test"]))
    return out


def config_lines(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The card's list of split configs: name and cells per set, one line each."""
    return [f"- `{c['config_name']}`: "
            + ", ".join(f"{len(f['path'])} {f['split']}" for f in c["data_files"]) + " cells"
            for c in configs]
