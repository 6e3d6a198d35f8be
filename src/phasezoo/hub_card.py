"""The Hub-facing part of a zoo's card (``README.md``): its YAML header and the sections that
say how the zoo is loaded, licensed, cited and built.

Hugging Face's ``datasets`` reads the YAML header: ``data_files`` points its HDF5 builder at the
shards and ``batch_size`` makes it read a shard in slices. HDF5 attributes are ignored by that
builder, so everything a user needs that is not a column is written in the card's prose. The
header also carries the Hub's dataset-card metadata (licence, size category, source dataset,
annotations, viewer) and one config per shipped benchmark split.

Why a module of its own: this is what the Hub and ``datasets`` read and what a push rewrites
(:func:`with_loading_source`); what the zoo holds (grid, phases, measurements, columns) is
:mod:`phasezoo.card`, whose :func:`~phasezoo.card.render_card` assembles both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import yaml

from phasezoo.dataset_facts import SourceTerms
from phasezoo.split_configs import config_lines
from phasezoo.splits import SHIPPED_SEEDS, SPLITS_FILE


# How many rows the datasets HDF5 builder reads at a time: as many as fit READ_BATCH_BYTES of
# weights, at least 2 (datasets buffers 1-row batches, up to 1,000 of them, before writing) and
# at most 1,000 (its own writer batch).
READ_BATCH_BYTES = 256 * 2 ** 20
MIN_READ_BATCH, MAX_READ_BATCH = 2, 1000
# The licence of what phasezoo generates (weights, metrics, labels); the source data's own terms
# are the card's Licence section (phasezoo.dataset_facts).
ZOO_LICENSE = "apache-2.0"
# The Hub's size_categories (datasets/utils/resources/size_categories.json): (upper bound, name).
SIZE_CATEGORIES = ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"), (1e6, "100K<n<1M"),
                   (1e7, "1M<n<10M"), (1e8, "10M<n<100M"), (1e9, "100M<n<1B"),
                   (1e10, "1B<n<10B"), (1e11, "10B<n<100B"), (1e12, "100B<n<1T"))


def read_batch_size(longest_row: int) -> int:
    """Rows per read batch of the ``datasets`` builder for rows of up to ``longest_row`` float32s.

    Why derived from the row: a fixed batch of 64 rows of a 376M-value ResNet-50 is 96 GB and
    overflows Arrow's 32-bit list offsets; 2 rows of it are 3 GB and do not.
    """
    fit = READ_BATCH_BYTES // max(1, 4 * longest_row)
    return int(min(MAX_READ_BATCH, max(MIN_READ_BATCH, fit)))


def shard_features(shard: Path) -> list[dict[str, str]]:
    """The ``datasets`` features of a shard's columns, in the card's YAML list form.

    Declared in the card (the HDF5 builder would infer them) so that ``weights`` is one
    ``large_list`` column across shards of different widths (each shard's rows × values dataset
    would be a fixed-size list of its own length) with 64-bit offsets: no slice or concatenation
    of rows overflows Arrow's 2^31 values per array. Per-layer lists stay ``list``.
    """
    out = []
    with h5py.File(shard, "r") as f:
        for name, ds in f.items():
            vlen = h5py.check_vlen_dtype(ds.dtype)
            if vlen is str or h5py.check_string_dtype(ds.dtype):
                out.append({"name": name, "dtype": "string"})
            elif name == "weights":
                out.append({"name": name, "large_list": np.dtype(ds.dtype).name})
            elif vlen is not None:
                out.append({"name": name, "list": np.dtype(vlen).name})
            else:
                out.append({"name": name, "dtype": np.dtype(ds.dtype).name})
    return out


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for a dataset of ``rows`` examples."""
    return next((name for bound, name in SIZE_CATEGORIES if rows < bound), "n>1T")


def card_header(zoo: str, files: list[str], n_rows: int, features: list[dict[str, str]],
                batch_size: int, format_version: int,
                split_configs: Sequence[Mapping[str, Any]] = (),
                source: SourceTerms | None = None,
                build: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The YAML front matter that ``datasets.load_dataset`` and the Hub read.

    The shards are listed by name (no glob, so a stray file is never loaded) and the row count
    is declared, so ``datasets`` itself refuses a zoo that lost rows. ``features`` and
    ``batch_size`` come from :func:`shard_features` and :func:`read_batch_size`.
    ``split_configs`` (:func:`phasezoo.split_configs.split_configs`) follow the default config,
    with the same features and read batch. The Hub's metadata: the zoo's licence, its size, the
    source dataset (``extended|<hub id>``), ``annotations_creators: machine-generated`` (every
    label is computed) and ``viewer: false`` (the Hub's viewer does not read these HDF5
    shards). ``build`` (:func:`phasezoo.provenance.build_provenance`) goes under ``phasezoo``,
    after ``format_version`` (the shard layout, :data:`phasezoo.card.FORMAT_VERSION`).
    """
    default = {"config_name": "default", "default": True,
               "data_files": [{"split": "train", "path": files}],
               "batch_size": batch_size, "features": features}
    by_split = [{**c, "batch_size": batch_size, "features": features} for c in split_configs]
    return {
        "configs": [default, *by_split],
        "dataset_info": {"config_name": "default", "features": features,
                         # num_bytes (Arrow size) is unknown before loading; datasets checks only
                         # num_examples but ignores a split entry without num_bytes.
                         "splits": [{"name": "train", "num_examples": n_rows, "num_bytes": 0}]},
        "tags": ["model-zoo", "weight-space-learning", "phase-transitions", "phasezoo"],
        "pretty_name": f"phasezoo {zoo}",
        "license": ZOO_LICENSE,
        "annotations_creators": ["machine-generated"],
        "size_categories": [size_category(n_rows)],
        "source_datasets": _source_datasets(source),
        "viewer": False,
        "phasezoo": {"format": format_version, **(build or {})},
    }


def _source_datasets(source: SourceTerms | None) -> list[str]:
    """The Hub's ``source_datasets``: ``extended|<id>`` when the source is on the Hub."""
    if source is None or source.generated:
        return ["original"]
    return [f"extended|{source.hub_id}"] if source.hub_id else ["extended"]


def splits_section(configs: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
    """The card's Benchmark splits section: what ``splits.json`` holds, what its splits are
    drawn from (and so when a rebuild reproduces them), and the split configs that load them."""
    seeds = sorted({int(str(c["config_name"]).rsplit("-", 1)[1]) for c in configs})
    shipped = (f"One config per shipped split of seeds {seeds[0]}–{seeds[-1]} ({len(configs)} "
               "configs; its train, validation and test splits list those cells' shards, a "
               "shard per cell): `datasets.load_dataset(ZOO, \"random-0\")` gives that split "
               "without phasezoo." if configs else
               "No split is shipped as a config (every split needs a train, validation and "
               "test cell; this grid has too few cells), so only `splits.json` holds them.")
    return ["## Benchmark splits", "",
            f"`{SPLITS_FILE}` (format {doc.get('format', '?')}) holds the cell-grouped splits "
            f"that `phasezoo benchmark` scores on, for seeds 0–{SHIPPED_SEEDS - 1}: `random` "
            "(60/20/20 % of the cells), `leave_phase_out:P` (test on every cell of phase P) and "
            "`scale_transfer` (train on the smaller half of the load values, test on the "
            "larger), each as lists of train, validation and test cell ids, drawn from the "
            f"{doc.get('cells', '?')} labelled cells (labels digest "
            f"`{doc.get('labels_digest', '?')}`). Results reported as \"this zoo, split Y, seed "
            "Z\" then name the same test models everywhere.", "",
            "A rebuild whose labels are the same ships the same file. `random` and "
            "`scale_transfer` depend only on which cells are labelled (a cell whose every seed "
            "diverged is in none) and their load values; `leave_phase_out` also on each "
            "cell's phase, so a label that moves (other thresholds, another metric protocol) "
            "moves its cell between those splits, and the labels digest changes with it.", "",
            shipped, "", *config_lines([c for c in configs if c["config_name"].endswith("-0")]),
            *([f"- and the same splits for seeds 1–{seeds[-1]} (`random-1`, …)"]
              if len(seeds) > 1 else []), ""]


def licence_section(source: SourceTerms) -> list[str]:
    """The card's Licence section: the zoo's licence and the source data's own terms."""
    return ["## Licence", "",
            f"The zoo (weights, metrics and labels generated by phasezoo) is released under "
            f"{ZOO_LICENSE} (Apache License 2.0). Its models were trained on {source.terms} "
            f"(Hub licence id `{source.license}`); those terms stay with the data, and whether "
            "they reach a use of the trained models is for the user to check.", ""]


def citation_section(source: SourceTerms, version: str) -> list[str]:
    """The card's Citation section: phasezoo, the phase-transition model zoo paper whose zoos
    phasezoo's catalogue reproduces, and the source data, as one BibTeX block."""
    entries = [PHASEZOO_BIBTEX.replace("@VERSION@", version), PTMZ_BIBTEX, source.bibtex]
    return ["## Citation", "", "```bibtex", *[e for e in entries if e], "```", ""]


PHASEZOO_BIBTEX = """@software{phasezoo,
  title = {phasezoo: phase-aware model zoos for weight-space learning},
  author = {{phasezoo contributors}},
  version = {@VERSION@},
  note = {Apache-2.0}
}"""
# arXiv 2504.18072: the version ModelZoos/PhaseTransitionModelZoo's README points to.
PTMZ_BIBTEX = """@article{schuerholt2025phasezoo,
  title = {A Model Zoo on Phase Transitions in Neural Networks},
  author = {Sch{\\"u}rholt, Konstantin and Meynent, L{\\'e}o and Zhou, Yefan and others},
  journal = {arXiv preprint arXiv:2504.18072},
  year = {2025}
}"""


def provenance_text(build: Mapping[str, Any]) -> str:
    """The card's Provenance line: which phasezoo built the zoo, from which settings."""
    return (f"Built by phasezoo {build.get('phasezoo_version')} (commit {build.get('commit')}; "
            "`unknown` when not run from a git checkout) from settings with digest "
            f"`{build.get('config_digest')}` (SHA-256 of the zoo's grid, training, metric and "
            "phase settings, the sections shown above; `phasezoo.provenance`). The header's "
            "`phasezoo` block holds the same.")


LOADING_HEADING = "## Loading\n"
_LOADING = """## Loading

```python
import datasets
ds = datasets.load_dataset("{source}", split="train")   # no custom code needed
rows = ds.with_format("numpy")                             # weights as arrays, not lists
{split}from phasezoo.zoo import load_model                        # optional: rows back to modules
model = load_model(rows[0])
```

The Arrow cache `datasets` builds is as large as the zoo; `streaming=True` writes none. Large
rows: read them by index from `ds.with_format("numpy")` (one row in memory).

{integrity}
"""
_LOCAL_INTEGRITY = "Integrity: `sha256sum -c SHA256SUMS` or `phasezoo verify {source}`."
_HUB_INTEGRITY = ("Integrity: `phasezoo benchmark {source}` (and `studies`, `diagnose`) verify "
                  "the download before reading it; by hand, `hf download {source} --repo-type "
                  "dataset --local-dir DIR`, then `phasezoo verify DIR` or `sha256sum -c "
                  "SHA256SUMS` in DIR.")
_SPLIT_LOADING = ('splits = datasets.load_dataset("{source}", "{config}")  '
                  '# train, validation, test\n')


def loading_section(source: str, configs: Sequence[Mapping[str, Any]] = (),
                    hub: bool = False) -> str:
    """The card's Loading section for a zoo at ``source``: ``zoos/<zoo>`` for a local zoo, or
    with ``hub`` the repository id it was pushed to (:func:`phasezoo.hub.push`)."""
    split = (_SPLIT_LOADING.format(source=source, config=configs[0]["config_name"])
             if configs else "")
    integrity = (_HUB_INTEGRITY if hub else _LOCAL_INTEGRITY).format(source=source)
    return _LOADING.format(source=source, split=split, integrity=integrity)


def with_loading_source(card: str, source: str) -> str:
    """``card`` with its Loading section written for the Hub repository ``source`` (what a
    pushed copy's card says); the YAML header and every other section unchanged.

    Raises:
        ValueError: if the card has no Loading section, or more than one.
    """
    count = card.count(LOADING_HEADING)
    if count != 1:
        raise ValueError(f"README.md: {count} '## Loading' sections, not one; re-publish the "
                         "zoo with this phasezoo")
    start = card.index(LOADING_HEADING)
    following = card.find("\n## ", start + len(LOADING_HEADING))
    end = len(card) if following < 0 else following + 1
    header = yaml.safe_load(card.split("---\n", 2)[1]) if card.startswith("---\n") else {}
    configs = [c for c in (header or {}).get("configs") or []
               if isinstance(c, dict) and c.get("config_name") != "default"]
    return card[:start] + loading_section(source, configs, hub=True) + card[end:]
