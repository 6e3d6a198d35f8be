"""The report commands: ``phasezoo benchmark``, ``studies`` and ``diagnose``. Each reads a
published zoo (a folder or a hub id; the diagnosis also the MD tree's CSV) and writes
``<stem>.{json,md,png}`` to ``--out``. Kept apart from :mod:`phasezoo.cli`, whose commands run
the pipeline's stages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phasezoo.stages import STAGES, flag_argument


def _report_parser(sub, name: str, help_: str, description: str,
                   stem: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that reads a published zoo and writes ``<stem>.{json,md,png}`` (stem: the
    command's name unless given) to ``--out``."""
    stem = stem or name
    p = sub.add_parser(name, help=f"{help_} → {stem}.json/.md/.png", description=description)
    p.add_argument("zoo", help="zoo folder or hub id")
    p.add_argument("--out", required=True, help=f"folder for {stem}.json, .md and .png")
    return p


def cmd_benchmark(a: argparse.Namespace) -> None:
    from phasezoo.wsl.baselines import BASELINES, LEARNED, UNTERTHINER
    from phasezoo.wsl.benchmark import run_benchmark
    from phasezoo.wsl.subsets import final_checkpoints
    from phasezoo.wsl.benchmark_report import write_report
    from phasezoo.provenance import zoo_build
    from phasezoo.wsl.methods import load_method
    from phasezoo.wsl.table import load_zoo, zoo_splits_of

    if a.seeds < 1:
        raise ValueError(f"--seeds must be ≥ 1, got {a.seeds}")
    table = load_zoo(a.zoo, stream=a.stream, raw_max_mb=a.raw_max_mb)
    train_zoo, splits = None, zoo_splits_of(a.zoo, table.meta)
    if a.train_zoo:
        from phasezoo.wsl.table import concat

        source = load_zoo(a.train_zoo, stream=a.stream, raw_max_mb=a.raw_max_mb)
        train_zoo = str(source.meta["zoo"].iloc[0])
        if train_zoo in set(table.meta["zoo"]):
            raise ValueError(f"--train-zoo {a.train_zoo} is the zoo under test ({train_zoo})")
        table = concat([source, table])
    unknown = sorted(set(a.baselines or ()) - set(BASELINES))
    if unknown:
        raise ValueError(f"--baselines {unknown[0]}: not a baseline; baselines are "
                         f"{sorted(BASELINES)}")
    baselines = {k: v for k, v in BASELINES.items() if not a.baselines or k in a.baselines}
    methods = {} if a.no_learned else dict(LEARNED)
    if a.unterthiner:
        table, baselines = final_checkpoints(table), baselines | UNTERTHINER
    for spec in a.method or []:
        name, factory = load_method(spec)
        if name in methods or name in baselines:
            raise ValueError(f"--method {spec}: its name '{name}' is already scored; give it "
                             "another with a `name` attribute")
        methods[name] = factory
    result = run_benchmark(table, seeds=a.seeds, baselines=baselines, train_zoo=train_zoo,
                           splits=splits, methods=methods, progress=not a.quiet,
                           curve=not a.no_curve)
    result["zoo_build"] = zoo_build(a.zoo)  # the card's version, commit and config digest
    js, md = write_report(result, a.out)
    print(md.read_text())
    print(js)


def _densities(text: str) -> tuple[float, ...]:
    """``--regime-densities`` (a JSON list of numbers, as the rule writes it) as a tuple; the
    settings check their range."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--regime-densities: not a JSON list of numbers ({e.msg}): {text!r}") from None
    if (not isinstance(values, list) or not values
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise ValueError(f"--regime-densities: a non-empty JSON list of numbers needed, got {text!r}")
    return tuple(float(v) for v in values)


def cmd_studies(a: argparse.Namespace) -> None:
    from phasezoo.wsl.regimes import RegimeSettings
    from phasezoo.wsl.studies import run_studies
    from phasezoo.wsl.studies_report import write_report

    from phasezoo.wsl.finetune import FinetuneSettings

    from phasezoo.provenance import zoo_build

    cfg = FinetuneSettings(a.finetune_epochs, a.finetune_lr, a.finetune_batch_size)
    regimes = RegimeSettings(densities=_densities(a.regime_densities), epochs=a.regime_epochs,
                             dense_seeds=a.regime_dense_seeds,
                             retrain_seeds=a.regime_retrain_seeds)
    result = run_studies(a.zoo, a.data_root, progress=not a.quiet,
                         transfer_dataset=a.transfer_dataset, finetune=cfg,
                         allow_download=a.allow_download, allow_local=a.allow_local_data,
                         regimes=regimes)
    md = write_report({**result, "zoo_build": zoo_build(a.zoo)}, a.out)
    print(md.read_text())


def cmd_diagnose(a: argparse.Namespace) -> None:
    from phasezoo.wsl import diagnose as dg
    from phasezoo.wsl.diagnosis_frame import diagnosis_frame, zoo_cells, zoo_rows
    from phasezoo.wsl.mdtree_paper import md_tree_report, read_md_tree_csv
    from phasezoo.wsl.table import zoo_splits_of

    if a.seeds < 1:
        raise ValueError(f"--seeds must be ≥ 1, got {a.seeds}")
    if a.zoo.endswith(".csv"):  # the MD tree's published dataframe: the paper's cases
        if a.train_zoo:
            raise ValueError("--train-zoo applies to phasezoo zoos, not to an MD tree CSV")
        result = md_tree_report(read_md_tree_csv(a.zoo))
    else:
        rows = zoo_rows(a.zoo)
        frame = diagnosis_frame(zoo_cells(rows))
        sources = {Path(z).name: diagnosis_frame(zoo_cells(zoo_rows(z)))
                   for z in a.train_zoo or []}
        splits = zoo_splits_of(a.zoo, rows.drop_duplicates("cell"))
        result = dg.zoo_report(frame, splits, a.seeds, sources)
        from phasezoo.provenance import zoo_build

        result["zoo_build"] = zoo_build(a.zoo)
    js, md = dg.write_report(result, a.out)
    print(md.read_text())
    print(js)


def _stage_flags(p: argparse.ArgumentParser, name: str) -> None:
    """The options of report stage ``name`` that carry a zoo's config keys (the stage table's
    flags, typed and defaulted by the schema)."""
    for flag in STAGES[name].flags:
        p.add_argument(flag.option, **flag_argument(flag))


def add_report_commands(sub) -> None:
    """Add the report subcommands to the CLI's subparsers ``sub``; the config keys each takes
    as options come from the stage table (:mod:`phasezoo.stages`)."""
    p = _report_parser(sub, "benchmark", "phase-aware WSL benchmark of a zoo",
                       "Baselines × tasks × cell-grouped splits on any zoo that "
                       "datasets.load_dataset reads (a local folder or a hub id).")
    _stage_flags(p, "benchmark")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--train-zoo", help="zoo transfer: fit on this zoo (folder or hub id), test "
                                       "on ZOO")
    p.add_argument("--stream", action="store_true",
                   help="read weights in batches, computing features on the way (zoos larger "
                        "than memory); raw weights kept only within --raw-max-mb")
    p.add_argument("--raw-max-mb", type=float, default=1024.0,
                   help="with --stream: raw-weight budget in MB; above it the raw+linear "
                        "baseline is skipped (default %(default)s)")
    p.add_argument("--method", action="append", metavar="MODULE:FACTORY",
                   help="score your own method too (module:factory or file.py:factory; see "
                        "phasezoo.wsl.methods); repeatable")
    p.add_argument("--unterthiner", action="store_true",
                   help="Unterthiner et al. (2020)'s configuration: the final checkpoint of every "
                        "run, plus stats+gbm with their statistics and a larger boosted model")
    p.add_argument("--baselines", nargs="+", metavar="NAME",
                   help="only these built-in baselines (default: all; docs/wsl.md lists them)")
    p.add_argument("--no-learned", action="store_true",
                   help="skip the learned baselines (nfn, neuron_sets), which train a network "
                        "per split")
    p.add_argument("--no-curve", action="store_true",
                   help="skip the learning curve (the learned baselines' R² against the number "
                        "of training cells; 4 refits of each per seed)")
    p.set_defaults(fn=cmd_benchmark)
    p = _report_parser(sub, "studies", "weight averaging and pruning by phase",
                       "Does a cell's phase predict how well weight averaging "
                       "(naive, weight-matched) and magnitude pruning work?")
    p.add_argument("--data-root", default="data", help="dataset folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-download", action="store_true",
                   help="let the studies download the dataset the zoo names when it is not in "
                        "--data-root (off by default: a zoo never makes phasezoo download)")
    p.add_argument("--allow-local-data", action="store_true",
                   help="let a zoo's text source name files under --data-root (off by default: a "
                        "downloaded zoo never makes phasezoo read a local file; the workflow "
                        "passes it for the zoo its own config built)")
    _stage_flags(p, "studies")
    p.set_defaults(fn=cmd_studies)
    p = _report_parser(sub, "diagnose", "model diagnosis (the MD tree) on a zoo",
                       "From each cell's landscape metrics, is its temperature too small or too "
                       "large, and is the load or the batch size the failure source? The MD "
                       "tree and its baselines, fit and scored on the zoo's grouped splits. "
                       "ZOO may also be the MD tree's published dataframe (a .csv): the "
                       "paper's cases are run on it.", stem="diagnosis")
    p.add_argument("--seeds", type=int, default=10, help="repeats of every split (default 10)")
    p.add_argument("--train-zoo", action="append", metavar="ZOO",
                   help="dataset transfer: fit on all cells of this zoo, score on ZOO; "
                        "repeatable")
    p.set_defaults(fn=cmd_diagnose)
