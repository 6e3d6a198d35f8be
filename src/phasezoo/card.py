"""The dataset card (``README.md``) of a published zoo: what the zoo holds, in prose.

Its grid, data and task, training and metric settings, metric protocol, phase boundaries, local
learning coefficient, downstream studies and the table of columns: everything a user needs that
is not a column (HDF5 attributes are ignored by the ``datasets`` builder). The YAML header and
the Hub-facing sections (splits, licence, citation, provenance, loading) are
:mod:`phasezoo.hub_card`; :func:`render_card` puts the two together.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from phasezoo.config import ZooSpec
from phasezoo.dataset_facts import source_terms
from phasezoo.hub_card import (card_header, citation_section, licence_section, loading_section,
                               provenance_text, splits_section)
from phasezoo.provenance import build_provenance
from phasezoo.settings import MetricsSettings, PhaseThresholds, Section
from phasezoo.task_kinds import CLASSIFICATION, task_kind


# The shard layout's version. The publish rule takes it as a param, so a zoo written in an older
# layout is re-published (not left stale) when phasezoo's format changes. 2: weights as a
# contiguous rows × values float32 dataset (1: variable-length rows); 3: the cell_mc_peak and
# landscape_epoch columns (for the diagnosis); 4: the topological profile's topo_* columns;
# 5: the pair counts (cell_cka_pairs, cell_cka_nan_pairs, cell_mc_end_ties) and
# phase_sensitive_to; 6: one config per shipped split, the Hub's metadata (licence, sizes,
# sources, viewer) and the build's provenance in the card.
FORMAT_VERSION = 6
# The columns of the per-cell measurements (pairs.parquet): the measure rule takes it as a param,
# so cells measured before a column existed are measured again. 2: mc_peak; 3: the topological
# profile (topo_* in metrics.parquet); 4: the pair protocol of issue #33 (mc_end_tie, cka_nan,
# cka_max_pairs, the anchors' error arithmetic, per-pair random streams); 5: the local learning
# coefficient (llc_* in metrics.parquet).
MEASURE_VERSION = 5
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
                                        FORMAT_VERSION, split_configs, source, build),
                            sort_keys=False)
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
