"""The dataset card (``README.md``) of a published zoo: YAML ``configs:`` plus documentation.

Hugging Face's ``datasets`` reads the YAML header: ``data_files`` points its HDF5 builder at the
shards and ``batch_size`` makes it read a shard in slices. HDF5 attributes are ignored by that
builder, so everything a user needs that is not a column is written here in prose.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd
import yaml

from phasezoo.config import ZooSpec
from phasezoo.dataset_facts import SourceTerms, source_terms
from phasezoo.provenance import build_provenance
from phasezoo.settings import MetricsSettings, PhaseThresholds, Section
from phasezoo.splits import SHIPPED_SEEDS, SPLITS_FILE
from phasezoo.task_kinds import CLASSIFICATION, task_kind


# How many rows the datasets HDF5 builder reads at a time: as many as fit READ_BATCH_BYTES of
# weights, at least 2 (datasets buffers 1-row batches, up to 1,000 of them, before writing) and
# at most 1,000 (its own writer batch).
# The shard layout's version. The publish rule takes it as a param, so a zoo written in an older
# layout is re-published (not left stale) when phasezoo's format changes. 2: weights as a
# contiguous rows × values float32 dataset (1: variable-length rows); 3: the cell_mc_peak and
# landscape_epoch columns (for the diagnosis); 4: the topological profile's topo_* columns;
# 5: the pair counts (cell_cka_pairs, cell_cka_nan_pairs, cell_mc_end_ties) and
# phase_sensitive_to; 6: one config per shipped split, the Hub's metadata (licence, sizes,
# sources, viewer) and the build's provenance in the card.
FORMAT_VERSION = 6
# The licence of what phasezoo generates (weights, metrics, labels); the source data's own terms
# are the card's Licence section (phasezoo.dataset_facts).
ZOO_LICENSE = "apache-2.0"
# The Hub's size_categories (datasets/utils/resources/size_categories.json): (upper bound, name).
SIZE_CATEGORIES = ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"), (1e6, "100K<n<1M"),
                   (1e7, "1M<n<10M"), (1e8, "10M<n<100M"), (1e9, "100M<n<1B"),
                   (1e10, "1B<n<10B"), (1e11, "10B<n<100B"), (1e12, "100B<n<1T"))
# The columns of the per-cell measurements (pairs.parquet): the measure rule takes it as a param,
# so cells measured before a column existed are measured again. 2: mc_peak; 3: the topological
# profile (topo_* in metrics.parquet); 4: the pair protocol of issue #33 (mc_end_tie, cka_nan,
# cka_max_pairs, the anchors' error arithmetic, per-pair random streams); 5: the local learning
# coefficient (llc_* in metrics.parquet).
MEASURE_VERSION = 5
READ_BATCH_BYTES = 256 * 2 ** 20
MIN_READ_BATCH, MAX_READ_BATCH = 2, 1000
COLUMN_DOCS: dict[str, str] = {
    "model_id": "`zoo/cell/seed-N`: one trained network (all its checkpoints share it)",
    "zoo": "zoo name",
    "cell": "grid cell id, `<temperature>-<value>_<load>-<value>`",
    "seed": "seed of the member: fixes its initialisation and its data order",
    "epoch": "kept epoch of this checkpoint (0 = initialisation)",
    "temperature_name": "the temperature-like hyperparameter (`batch_size` or `lr`)",
    "temperature_value": "its value in this cell",
    "load_name": "the load-like hyperparameter (`width`, `data_fraction` or `beta`)",
    "load_value": "its value in this cell",
    "hp_*": "every training hyperparameter of the cell (lists as JSON strings)",
    "train_loss": "the task's loss (see Task) on the cell's training data, eval mode",
    "train_accuracy": "the task's score (see Task) on the cell's training data",
    "test_loss": "the task's loss on the test split, eval mode",
    "test_accuracy": "the task's score on the test split; `load_model(row)` reproduces it",
    "l2_norm": "Euclidean norm of all trainable parameters",
    "num_parameters": "number of trainable parameters",
    "diverged": "the member's loss became NaN/inf by this epoch; metrics are NaN, weights are "
                "its last finite ones",
    "diverged_epoch": "epoch at which the member diverged (-1 = never)",
    "hessian_top_eigenvalue": "largest Hessian eigenvalue of the loss on the fixed sample of "
                              "`metrics.hessian_top_data` (ptmz: test split, as PTMZ publishes; "
                              "llt: training data) (Lanczos; see Metric variants)",
    "hessian_trace": "Hessian trace on the fixed training sample under both protocols "
                     "(Lanczos-deflated Hutchinson)",
    "hessian_trace_stderr": "standard error of `hessian_trace`",
    "hessian_hvps": "Hessian-vector products spent on this checkpoint",
    "alpha_mean": "mean over analysed layers of the HT-SR power-law α of the ESD of WᵀW "
                  "(WeightWatcher 0.7.7 conventions and KS fit; see phasezoo.htsr)",
    "alpha_weighted_mean": "layer mean of α·log10 λmax",
    "farms_alpha_mean": "layer mean of FARMS α over the layers whose FARMS windows hold at "
                        "least 8 eigenvalues (`layer_farms_window_evals`; fit and window "
                        "settings: `metrics.farms_fit` in the settings above; NaN when "
                        "`metrics.farms` is off)",
    "stable_rank_mean": "layer mean of Σλ/λmax",
    "log_spectral_norm_mean": "layer mean of log10 λmax",
    "log_frobenius_norm_mean": "layer mean of log10 Σλ (squared Frobenius norm)",
    "layer_alpha": "list, one value per layer named in the layout's `htsr_layers` (every Linear "
                   "and Conv2d, module order): α; NaN where WeightWatcher's rules skip the layer "
                   "(fewer than 8 eigenvalues) or the fit fails",
    "layer_farms_alpha": "list per `htsr_layers`: FARMS α (mean over a conv layer's blocks)",
    "layer_farms_window_evals": "list per `htsr_layers`: eigenvalues per FARMS window (smaller "
                                "side × kernel positions; a dimension of 51–99 gives windows "
                                "of its last 1–49 entries); layers below 8 keep their "
                                "`layer_farms_alpha` but are left out of `farms_alpha_mean`",
    "layer_alpha_weighted": "list per `htsr_layers`: α·log10 λmax",
    "layer_stable_rank": "list per `htsr_layers`: Σλ/λmax",
    "layer_log_spectral_norm": "list per `htsr_layers`: log10 λmax",
    "layer_log_frobenius_norm": "list per `htsr_layers`: log10 Σλ",
    "topo_minima": "topological landscape profile, at the landscape epoch only (NaN at other "
                   "epochs and when `metrics.topology` is off): local minima of the loss on the "
                   "Hessian sample over the `topo_plane` grid (4-connected)",
    "topo_total_persistence": "sum over the non-global minima of their 0-D persistence (merging "
                              "saddle's loss − minimum's loss)",
    "topo_max_persistence": "largest of those persistences (0 with one minimum)",
    "topo_mean_gap": "mean of those persistences: the saddle–minimum gap (0 with one minimum)",
    "topo_loss_min": "lowest loss on the plane",
    "topo_loss_range": "highest minus lowest loss on the plane",
    "topo_eigenvalue_1": "Hessian eigenvalue of the plane's first axis (Lanczos Ritz value)",
    "topo_eigenvalue_2": "Hessian eigenvalue of its second axis",
    "topo_plane": "list: the profile's loss grid, `metrics.topology_steps`² values row-major, "
                  "`[i, j]` at θ + a_i·v₁ + b_j·v₂ with a, b evenly spaced over "
                  "±`metrics.topology_radius`·‖θ‖ and v₁, v₂ the unit top Hessian "
                  "eigenvectors; empty where the profile was not measured",
    "llc": "local learning coefficient λ̂ (Lau et al. 2023) at the landscape epoch only (NaN at "
           "other epochs and when `metrics.llc_steps` is 0): nβ·(mean SGLD-chain loss − loss "
           "at the checkpoint) on the training data, eval mode, mean over chains; sampler "
           "settings `metrics.llc_*` (devinterp's SGLD; see phasezoo.landscape.llc)",
    "llc_std": "standard deviation of λ̂ over the chains (ddof 0, as devinterp's `llc_std`)",
    "llc_nbeta": "inverse temperature nβ used (`metrics.llc_nbeta`, or m / log m of the SGLD "
                 "batch m when that is null)",
    "llc_chains": "chains whose loss stayed finite to the end (what `llc` averages; fewer "
                  "than `metrics.llc_chains` means some diverged)",
    "llc_steps": "draws per chain after `metrics.llc_burnin` burn-in steps",
    "llc_drift": "mean over chains of λ̂ over the last quarter of draws minus λ̂ over the "
                 "third quarter: ≈ 0 when the chains have settled",
    "llc_unsettled": "1 when λ̂ is not to be trusted as sampled: a chain's loss became "
                     "non-finite, λ̂ ≤ 0, or the size of `llc_drift` exceeds both 10 % of λ̂ and 2 "
                     "standard errors over chains; else 0",
    "cell_mc": "cell mean over seed pairs of Bezier mode connectivity on train error (%), at the "
               "landscape epoch: negative = barrier, positive = under-trained ends, ≈0 = connected",
    "cell_mc_loss": "the same on train loss",
    "cell_mc_chord": "`cell_mc` measured from the chord between the two seeds' train errors "
                     "instead of their mean: 0 for a straight path, unchanged when the seeds "
                     "are swapped or the grid refined (not used by the phases)",
    "cell_mc_peak": "the MD tree's `mode_connectivity_peak`: minus the worst train error (%) at "
                    "the Bezier curve's interior points, cell mean over seed pairs (≤ 0; read by "
                    "`phasezoo diagnose`)",
    "landscape_epoch": "the epoch at which the cell's `cell_*` columns and phase were measured "
                       "(`metrics.landscape_epoch`)",
    "cell_cka": "cell mean over seed pairs of linear CKA between the seeds' outputs, measured "
                "as the metric protocol says (`metrics.cka_*`)",
    "cell_linear_barrier": "cell mean over seed pairs of the linear-interpolation train-error "
                           "barrier (%), mc convention: negative = barrier",
    "phase": "loss-landscape phase of the cell (I, II, III, IV-A, IV-B; `diverged` if every "
             "seed diverged), by the thresholds in this card",
    "phase_margin": "distance of the cell's deciding metric to its nearest threshold, relative "
                    "to that threshold (small = borderline)",
    "phase_margin_rule": "which threshold that is (train_error, mc_tolerance or cka)",
    "phase_sensitive_to": "the thresholds (comma-separated) whose move alone by "
                          "±`phases.sensitivity` changes the cell's label; empty when none does "
                          "(the cells hatched in the phase diagram)",
    "cell_cka_pairs": "seed pairs whose CKA is finite (what `cell_cka` averages)",
    "cell_cka_nan_pairs": "seed pairs with both models live whose CKA is NaN (a model with "
                          "constant outputs), left out of `cell_cka`",
    "cell_mc_end_ties": "seed pairs whose mc was decided at an end of the curve (no interior "
                        "point deviates more): mc is then ±half the ends' error difference, its "
                        "sign a convention of which seed comes first",
    "weights": "the whole state_dict flattened to float32 (`large_list`; its length varies "
               "across widths)",
    "layout": "JSON: `architecture` (registry name + kwargs) and `entries` (name, shape, "
              "offset, dtype, kind) to rebuild the state_dict; `htsr_layers`: the layer names "
              "of the `layer_*` lists",
}


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
                batch_size: int, split_configs: Sequence[Mapping[str, Any]] = (),
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
    shards). ``build`` (:func:`phasezoo.provenance.build_provenance`) goes under ``phasezoo``.
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
        "phasezoo": {"format": FORMAT_VERSION, **(build or {})},
    }


def _source_datasets(source: SourceTerms | None) -> list[str]:
    """The Hub's ``source_datasets``: ``extended|<id>`` when the source is on the Hub."""
    if source is None or source.generated:
        return ["original"]
    return [f"extended|{source.hub_id}"] if source.hub_id else ["extended"]


def render_card(zoo: ZooSpec, phases: pd.DataFrame, n_rows: int, data_info: dict,
                files: list[str], features: list[dict[str, str]], batch_size: int,
                note: str = "", split_configs: Sequence[Mapping[str, Any]] = (),
                splits_doc: Mapping[str, Any] | None = None) -> str:
    """The full card: YAML header, grid, data split, metric variants, column table, splits,
    licence, citation, provenance, loading. ``note`` (e.g. a rehearsal's warning) goes under
    the title; ``splits_doc`` is the ``splits.json`` written beside the card."""

    temp, load = zoo.temperature, zoo.load
    source, build = source_terms(zoo.dataset.name, zoo.dataset.options), build_provenance(zoo)
    header = yaml.safe_dump(card_header(zoo.name, files, n_rows, features, batch_size,
                                        split_configs, source, build), sort_keys=False)
    counts = phases["phase"].value_counts().to_dict()
    lines = [
        f"---\n{header}---\n", f"# phasezoo zoo `{zoo.name}`\n", *([note, ""] if note else []),
        zoo.description or "A phase-aware model zoo generated by phasezoo.", "",
        f"- Rows: {n_rows} (one per model × kept checkpoint); models: "
        f"{len(phases) * len(zoo.seeds)} ({len(phases)} cells × {len(zoo.seeds)} seeds)",
        f"- Architecture: `{zoo.model.name}`; dataset: `{zoo.dataset.name}`",
        f"- Format: phasezoo shard layout {FORMAT_VERSION} (see the Columns table)",
        f"- Temperature-like axis `{temp.name}`: {list(temp.values)}",
        f"- Load-like axis `{load.name}`: {list(load.values)}",
        f"- Seeds: {list(zoo.seeds)}; kept epochs: {list(zoo.train.keep_epochs)}",
        f"- Phases: {json.dumps(counts)}", "",
        "## Data", "", "```json", json.dumps(data_info, indent=1), "```", "",
        *task_section(data_info.get("task", CLASSIFICATION.name)),
        "## Training and metric settings", "", "```json",
        json.dumps({"train": _sorted(zoo.train), "metrics": _sorted(zoo.metrics),
                    "phase_thresholds": _sorted(zoo.phases)}, indent=1),
        "```", "", *protocol_section(zoo.metrics),
        *boundaries_section(zoo.metrics.protocol, zoo.phases, phases),
        *llc_section(zoo.metrics, phases), _STUDIES,
        "## Columns", "", "| column | meaning |", "|---|---|",
        *[f"| `{c}` | {d} |" for c, d in COLUMN_DOCS.items()], "",
        *splits_section(split_configs, splits_doc or {}),
        *licence_section(source), *citation_section(source, build["phasezoo_version"]),
        "## Provenance", "", provenance_text(build), "",
        loading_section(f"zoos/{zoo.name}", split_configs),
    ]
    return "\n".join(lines)


# The studies run on a published zoo (their results are not in the zoo, which they read).
_STUDIES = """## Downstream studies

`phasezoo studies ZOO` (run by the workflow after publishing) reports by phase: weight averaging
(naive and aligned by weight matching), magnitude pruning (global, uniform and AlphaPruning's
allocation), TempBalance, fine-tuning transfer, and the three-regime model of pruning (Zhou et al.,
ICML 2023: each cell pruned to a few densities and retrained, every (temperature, density) point
labelled I, II-A or II-B from its retrained copies' connectivity and CKA under this card's
protocol and thresholds). `phasezoo benchmark ZOO` scores weight-space-learning baselines on the
splits below, the learned `nfn` and `neuron_sets` among them.
"""


def _sorted(section: Section) -> dict[str, Any]:
    """A section's keys in sorted order, as the config file of the publish job holds them."""
    return dict(sorted(section.as_dict().items()))


def protocol_section(metrics: MetricsSettings) -> list[str]:
    """The card's Metric protocol section: which anchor's recipe measured mc, CKA and the
    Hessian, the keys this zoo changed, and where phasezoo differs on purpose."""
    from phasezoo.protocols import ANCHORS, DEVIATIONS, overrides

    name = metrics.protocol
    changed = overrides(metrics.as_dict())
    return ["## Metric protocol", "",
            f"`{name}`: mode connectivity, CKA and the Hessian measured as the {ANCHORS[name]} "
            "code measures them (recipes and source files: `phasezoo.protocols`). "
            + (f"Changed from the protocol by this zoo's config: `{json.dumps(changed)}`."
               if changed else "No protocol key is changed by this zoo's config."), "",
            "Where phasezoo differs from the anchors on purpose:", "",
            *[f"- {d}" for d in DEVIATIONS], ""]


def boundaries_section(protocol: str, settings: PhaseThresholds, table: pd.DataFrame) -> list[str]:
    """The card's Phase boundaries section: each threshold as what it is (a convention, its
    rule and its data), which CKA rule labelled this zoo beside the other rule's value, and how
    many labels change when one threshold moves by ±``phases.sensitivity``. A table without
    the labeller's columns (a rehearsal's) gets the thresholds only."""
    from phasezoo.protocols import PHASE_THRESHOLDS, THRESHOLD_SOURCES

    rows = []
    for key, src in THRESHOLD_SOURCES[protocol].items():
        value, own = getattr(settings, key), PHASE_THRESHOLDS[protocol][key]
        kind = src["kind"] if value == own else f"set by this zoo's config (`{protocol}`: {own:g})"
        rows.append(f"| `{key}` | {value:g} | {kind} | {src['rule']} | {src['data']} |")
    intro = ("No threshold below is a measured phase boundary: neither anchor's code holds one, "
             "so each is a convention placed on that anchor's published metrics by the rule "
             "shown (`phasezoo.protocols`; docs/protocols.md, \"Phase boundaries: conventions "
             "and their data\"). train_error in %; a cell is a barrier when mc < −mc_tolerance.")
    lines = ["## Phase boundaries", "", intro,
             "", "| threshold | value | kind | rule | data |", "|---|---|---|---|---|", *rows, ""]
    if not {"train_error", "mc", "sensitive"} <= set(table):
        return lines
    return [*lines, cka_rule_text(settings, table), "", sensitivity_text(settings, table), ""]


def cka_rule_text(settings: PhaseThresholds, table: pd.DataFrame) -> str:
    """Which CKA split labelled the zoo, with the other rule's value beside it."""
    from phasezoo.boundaries import cka_split

    split = cka_split(table, settings)
    median = (f"{split.zoo_median:.3f}, the median of its {split.cells} low-loss connected "
              "cells (it splits them in half by construction)"
              if np.isfinite(split.zoo_median) else
              f"not defined: {split.cells} low-loss connected cells, fewer than "
              f"`phases.cka_rule_min_cells` = {split.min_cells}")
    return (f"IV-A | IV-B labelled by `phases.cka_rule: {split.rule}`, CKA split "
            f"{split.value:.3g}. Anchor value: {split.anchor:g}; this zoo's own value "
            f"(`zoo-median`): {median}.")


def sensitivity_text(settings: PhaseThresholds, table: pd.DataFrame) -> str:
    """How many labels change when one threshold alone moves by ±δ, per threshold, and which
    cells (the ``sensitive`` cells are hatched in the phase diagram)."""
    from phasezoo.boundaries import sensitive_counts
    from phasezoo.vocabulary import PHASES

    labelled = table[table["phase"].isin(PHASES)]
    hit = labelled[labelled["sensitive"]]
    per = [f"{k} {n}" for k, n in sensitive_counts(hit).items()]
    cells = ", ".join(f"`{c}` ({p}: {s})" for c, p, s in
                      zip(hit["cell"], hit["phase"], hit["sensitive_to"]))
    return (f"Label sensitivity: {len(hit)} of {len(labelled)} labelled cells change label when "
            f"one threshold alone moves by ±{100 * settings.sensitivity:g} % "
            f"(`phases.sensitivity`): by {', '.join(per)}"
            + (f". Cells: {cells}." if cells else "."))


def llc_section(metrics: MetricsSettings, table: pd.DataFrame) -> list[str]:
    """The card's Local learning coefficient section: λ̂ averaged per phase (over its cells'
    seed means), how many cells had a seed whose chains did not settle, and how to check the
    chains; or why there is no λ̂."""
    lines = ["## Local learning coefficient", ""]
    if not metrics.llc_steps:
        return [*lines, "Not measured: `metrics.llc_steps` is 0.", ""]
    if "llc" not in table or not table["llc"].notna().any():
        return [*lines, "No cell has a λ̂: no landscape-epoch checkpoint was measured (a "
                "rehearsal, or a table from before the llc columns), or every chain of every "
                "live seed failed (non-finite loss).", ""]
    rows = [f"| {phase} | {len(g)} | {g['llc'].mean():.4g} | "
            f"{int((g['llc_unsettled'] > 0).sum())} |"
            for phase, g in table[table["llc"].notna()].groupby("phase", sort=True)]
    return [*lines, "λ̂ (column `llc`) at the landscape epoch, seed mean per cell, then the mean "
            "over the cells of each phase; `unsettled` counts cells with at least one seed whose "
            "chains had not settled (`llc_unsettled`). To check a zoo's chains: rows with "
            "`llc_unsettled` = 1, `llc_chains` below `metrics.llc_chains`, or `llc_drift` large "
            "against `llc` (raise `metrics.llc_burnin` or `llc_steps`); `llc_std` is the spread "
            "over chains.", "", "| phase | cells | mean λ̂ | unsettled |", "|---|---|---|---|",
            *rows, ""]


def task_section(kind: str) -> list[str]:
    """The card's Task section: what the loss and score columns mean, and what differs."""

    task = task_kind(kind)
    return ["## Task", "", f"`{kind}`. Loss columns: {task.loss}. Accuracy columns: "
            f"{task.score}.", "", *[f"- {note}" for note in task.notes], ""]


def splits_section(configs: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
    """The card's Benchmark splits section: what ``splits.json`` holds, what its splits are
    drawn from (and so when a rebuild reproduces them), and the split configs that load them."""
    from phasezoo.split_configs import config_lines

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
