"""The ``phasezoo`` command: one subcommand per pipeline stage (each Snakemake rule calls one).

Every stage reads the config, does one job, and writes its output next to the others under
``results_dir``; run ``phasezoo <stage> --help`` for its arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from phasezoo.allocator import reuse_freed_memory
from phasezoo.atomic import write_atomic
from phasezoo.config import Config, ZooSpec, load_config
from phasezoo.config_checks import ConfigError
from phasezoo.integrity import check, seal
from phasezoo.report_commands import add_report_commands
from phasezoo.stages import STAGES, flag_argument, stage


def runs(name: str) -> Callable[[Callable], Callable]:
    """Mark a command as running pipeline stage ``name`` of the stage table
    (:mod:`phasezoo.stages`), whose sections it reads."""
    stage(name)  # a name the table does not hold fails at import, not in a job

    def deco(fn: Callable) -> Callable:
        fn.stage = name
        return fn
    return deco


def _zoo(a: argparse.Namespace) -> tuple[Config, ZooSpec]:
    """The config and the zoo ``--zoo``, restricted to the sections of the command's stage."""
    cfg = load_config(a.config)
    return cfg, cfg.zoo(a.zoo).only(STAGES[a.fn.stage].sections, a.fn.stage)


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config/config.yaml", help="config YAML (default: %(default)s)")


def _common(p: argparse.ArgumentParser, cell: bool, cells: bool = False) -> None:
    _config_option(p)
    p.add_argument("--zoo", required=True, help="zoo name in the config")
    if cells:
        p.add_argument("--cell", required=True, nargs="+",
                       help="cell id(s) (see `phasezoo validate`); several: cells that differ only "
                            "in the learning rate, trained as one population")
    elif cell:
        p.add_argument("--cell", required=True, help="cell id (see `phasezoo validate`)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _paths(cfg: Config, zoo: str, cell: str | None = None) -> Path:
    base = Path(cfg.results_dir) / zoo
    return base / cell if cell else base


def cmd_validate(a: argparse.Namespace) -> None:
    cfg = load_config(a.config)
    for name, zoo in cfg.zoos.items():
        cells = zoo.cells()
        print(f"{name}: {len(cells)} cells × {len(zoo.seeds)} seeds "
              f"({zoo.temperature.name} × {zoo.load.name})")
        for c in cells:
            print(f"  {c.id}")


def cmd_list(a: argparse.Namespace) -> None:
    from phasezoo import data, metrics, models

    names = {"models": models.list_models, "datasets": data.list_datasets,
             "metrics": metrics.list_metrics}[a.what]()
    print("\n".join(names))


def cmd_estimate(a: argparse.Namespace) -> None:
    from phasezoo.estimate import estimate, machine, markdown

    on = machine(a.machine, a.cores)
    configs = [load_config(path) for path in a.config]
    print(markdown([estimate(z, cfg.data_root, on) for cfg in configs
                    for z in cfg.zoos.values()]))


def cmd_fetch(a: argparse.Namespace) -> None:
    """Download a dataset into ``--data-root`` (or find it cached) and record what it holds.

    Why a stage of its own: the DAG runs it once per zoo before any ``train`` job (on the
    submitting host under Slurm, whose compute nodes often have no internet), so parallel train
    jobs never download the same files into the data root at the same time.
    """
    import json

    from phasezoo.data import create_dataset

    try:
        options = json.loads(a.options)
    except json.JSONDecodeError as e:
        raise ValueError(f"--options: not JSON ({e.msg}): {a.options}") from None
    split = create_dataset(a.dataset, a.data_root, normalize=False, options=options)
    record = {"dataset": a.dataset, "options": options, "data_root": str(a.data_root),
              "train_samples": len(split.x_train), "test_samples": len(split.x_test),
              "input_shape": list(split.input_shape), "num_classes": split.num_classes,
              "info": split.info}
    if a.out:
        write_atomic(Path(a.out), lambda tmp: tmp.write_text(json.dumps(record, indent=1,
                                                                        default=str)))
    print(f"{a.dataset} in {a.data_root}: {record['train_samples']} train / "
          f"{record['test_samples']} test samples")


@runs("train")
def cmd_train(a: argparse.Namespace) -> None:
    from phasezoo.runtime import resolve_device
    from phasezoo.train import train_cells

    reuse_freed_memory()  # a job is its own process: keep freed blocks for the next step
    cfg, zoo = _zoo(a)
    cells = [zoo.cell_by_id(c) for c in a.cell]
    if a.out and len(a.out) != len(cells):
        raise ValueError(f"--out names {len(a.out)} file(s) for {len(cells)} cell(s)")
    outs = [Path(o) for o in a.out] if a.out else [_paths(cfg, a.zoo, c) / "train.h5" for c in a.cell]
    partial = Path(a.partial) if a.partial else None
    for out in train_cells(cells, outs, resolve_device(cfg.device), cfg.data_root,
                           progress=not a.quiet, partial=partial):
        print(out)


def _cell_inputs(a: argparse.Namespace):
    """The config, the zoo, its cell's data split on the device, the device and the cell's folder."""
    from phasezoo.data import cell_split
    from phasezoo.runtime import resolve_device

    reuse_freed_memory()  # a job is its own process: keep freed blocks for the next step
    cfg, zoo = _zoo(a)
    cell = zoo.cell_by_id(a.cell)
    device = resolve_device(cfg.device)
    base = _paths(cfg, a.zoo, a.cell)
    check(base / "train.h5")  # before the data and the model: a damaged file is named at once
    split = cell_split(cell.recipe, cfg.data_root, device)
    return zoo, split, device, base


def _metrics(a: argparse.Namespace, zoo, split, device, base: Path) -> None:
    from phasezoo.metrics import cell_metrics

    table = cell_metrics(base / "train.h5", split, device, zoo.metrics, progress=not a.quiet)
    _write_parquet(table, base / "metrics.parquet")


def _pairs(a: argparse.Namespace, zoo, split, device, base: Path) -> None:
    from phasezoo.landscape.pairs import cell_pairs

    table = cell_pairs(base / "train.h5", split, zoo.metrics, progress=not a.quiet)
    _write_parquet(table, base / "pairs.parquet")


@runs("metrics")
def cmd_metrics(a: argparse.Namespace) -> None:
    _metrics(a, *_cell_inputs(a))


@runs("metrics")
def cmd_pairs(a: argparse.Namespace) -> None:
    _pairs(a, *_cell_inputs(a))


@runs("metrics")
def cmd_measure(a: argparse.Namespace) -> None:
    inputs = _cell_inputs(a)
    _metrics(a, *inputs)
    _pairs(a, *inputs)


@runs("phases")
def cmd_phases(a: argparse.Namespace) -> None:
    from phasezoo.phase_table import profile_planes, zoo_phases
    from phasezoo.plots import HEATMAP_METRICS, heatmap, landscape_profiles, phase_diagram
    from phasezoo.dataset_facts import dataset_facts

    cfg, zoo = _zoo(a)
    base = _paths(cfg, a.zoo)
    table = zoo_phases(zoo, cfg.results_dir)
    _write_parquet(table, base / "phases.parquet")
    plots = base / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    phase_diagram(table, plots / "phase_diagram.png", zoo.phases)
    task = dataset_facts(zoo.dataset.name).task
    for column in HEATMAP_METRICS:
        heatmap(table, column, plots / f"{column}.png", zoo.phases, task)
    landscape_profiles(profile_planes(table, cfg.results_dir), zoo.metrics.topology_radius,
                       plots / "landscape_profiles.png",
                       empty=("no live checkpoint has a profile" if zoo.metrics.topology else
                              f"{zoo.name}: metrics.topology is off"))
    print(table[["cell", "train_error", "test_accuracy", "ln_hessian_trace", "mc", "cka",
                 "phase", "margin", "margin_rule"]].to_string(index=False))


@runs("publish")
def cmd_publish(a: argparse.Namespace) -> None:
    from phasezoo.verify import verify
    from phasezoo.zoo import publish

    cfg, zoo = _zoo(a)
    out = publish(zoo, cfg.results_dir, cfg.zoos_dir)
    print(f"{out}: {verify(out)} rows, verified")


def cmd_rehearse(a: argparse.Namespace) -> None:
    from phasezoo.rehearsal import largest_cell, rehearse

    cfg = load_config(a.config)
    if a.zoo is None and len(cfg.zoos) != 1:
        raise ValueError(f"{a.config} has {len(cfg.zoos)} zoos ({sorted(cfg.zoos)}); pick one "
                         "with --zoo")
    zoo = cfg.zoo(a.zoo or next(iter(cfg.zoos)))
    by_id = {c.id: c for c in zoo.cells()}
    unknown = [c for c in a.cell or [] if c not in by_id]
    if unknown:
        raise ValueError(f"--cell {unknown[0]}: not a cell of {zoo.name} (phasezoo validate "
                         f"--config {a.config} lists them)")
    cells = [by_id[c] for c in a.cell] if a.cell else [largest_cell(zoo)]
    seeds = a.seeds if a.seeds else list(zoo.seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds}: a seed is given twice")
    rehearse(zoo, cells, seeds, a.out)


def cmd_verify(a: argparse.Namespace) -> None:
    from phasezoo.verify import verify

    print(f"{a.zoo_dir}: OK, {verify(a.zoo_dir)} rows")


def cmd_push(a: argparse.Namespace) -> None:
    """A verified zoo onto the Hugging Face Hub (:mod:`phasezoo.hub`)."""
    from phasezoo.hub import push

    push(a.zoo_dir, a.repo, revision=a.revision, private=a.private)


class _Version(argparse.Action):
    """``--version``: phasezoo's version and git commit, looked up only when asked (the commit
    runs ``git``, which no other command should wait for)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from phasezoo.provenance import version_line

        print(version_line())
        parser.exit()


def cmd_config_doc(a: argparse.Namespace) -> None:
    """The config keys' reference page from the schema (:mod:`phasezoo.config_doc`)."""
    from phasezoo.config_checks import schema
    from phasezoo.config_doc import config_doc

    text = config_doc(schema())
    if a.out:
        write_atomic(Path(a.out), lambda tmp: tmp.write_text(text))
    print(a.out or text, end="\n" if a.out else "")


def cmd_export(a: argparse.Namespace) -> None:
    """Rows of a zoo as files other tools read (:mod:`phasezoo.export`)."""
    from phasezoo.export import export_zoo

    paths = export_zoo(a.zoo, a.out, a.format, a.cell, a.phase, a.epoch, progress=not a.quiet)
    print(f"{a.out}: {len(paths)} {a.format} file(s)")


def cmd_page(a: argparse.Namespace) -> None:
    """Snapshot a finished run's outputs and write its page from them (:mod:`phasezoo.zoo_page`)."""
    import json

    from phasezoo.zoo_page import render, snapshot

    run = json.loads(Path(a.run).read_text()) if a.run else None
    page = Path(a.out)
    snap = snapshot(Path(a.results), Path(a.snapshot) if a.snapshot else page.with_suffix(""),
                    run)
    write_atomic(page, lambda tmp: tmp.write_text(render(snap, page)))
    print(page)


def _write_parquet(table, path: Path) -> None:
    """Write a table by atomic rename, so a killed job leaves no complete-looking file, then
    seal it (:mod:`phasezoo.integrity`)."""
    write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
    seal(path)
    print(path)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per stage."""
    parser = argparse.ArgumentParser(prog="phasezoo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version,
                        help="print phasezoo's version and git commit, and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", add_help=False, help="validate the configs, then run the workflow "
                   "through Snakemake (phasezoo run --help)")
    stages: list[tuple[str, Callable, str, bool | None]] = [
        ("validate", cmd_validate, "validate a config and list its cells", None),
        ("train", cmd_train, "train all seeds of one cell (or of several learning rates) → train.h5",
         True),
        ("metrics", cmd_metrics, "per-checkpoint metrics of one cell → metrics.parquet", True),
        ("pairs", cmd_pairs, "seed-pair CKA and barrier of one cell → pairs.parquet", True),
        ("measure", cmd_measure, "metrics and pairs of one cell in one process (the DAG's rule)",
         True),
        ("phases", cmd_phases, "per-cell aggregates and phase labels → phases.parquet + plots", False),
        ("publish", cmd_publish, "write the HDF5 zoo, card and checksums → zoos/<zoo>", False),
    ]
    for name, fn, help_, cell in stages:
        p = sub.add_parser(name, help=help_, description=help_)
        if cell is None:
            _config_option(p)
        else:
            _common(p, cell, cells=name == "train")
        if name == "train":
            p.add_argument("--out", nargs="+",
                           help="output file per cell (default: <results_dir>/<zoo>/<cell>/train.h5)")
            p.add_argument("--partial", help="where the unfinished state lives, to resume a killed "
                                             "job (default: beside the output; see "
                                             "phasezoo.train.group_partial_path)")
        p.set_defaults(fn=fn)
    p = sub.add_parser("fetch", help="download a dataset once (the DAG does it before training)")
    for flag in STAGES["fetch"].flags:
        p.add_argument(flag.option, **flag_argument(flag))
    p.add_argument("--data-root", default="data", help="download folder (default: %(default)s)")
    p.add_argument("--out", help="JSON record of what was fetched (sizes, shapes, source)")
    p.set_defaults(fn=cmd_fetch)
    p = sub.add_parser("rehearse", help="publish, verify and load a zoo's real models at "
                                        "initialisation: sizes and peak memory before training",
                       description="Build the chosen cells' real models at initialisation (no "
                                   "data, no training), publish them as publish does, verify, "
                                   "load them back with datasets.load_dataset (in memory and "
                                   "streamed) and load_model, and print each step's time and "
                                   "peak memory and the bytes on disk.")
    p.add_argument("--config", required=True, help="config YAML")
    p.add_argument("--zoo", help="zoo name (needed when the config has several)")
    p.add_argument("--cell", nargs="+", help="cell id(s) (default: the cell with the largest "
                                             "models)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="seeds, i.e. rows per cell (default: the zoo's seeds)")
    p.add_argument("--out", required=True,
                   help="folder for zoos/<zoo>, hf-cache/ and rehearsal.json")
    p.set_defaults(fn=cmd_rehearse)
    p = sub.add_parser("page", help="a zoo's results page from its run's outputs → docs/<zoo>.md",
                       description="Copy a finished run's phase table, report tables, pictures "
                                   "and timing into a snapshot folder, and write the page from "
                                   "that folder alone (so it can be regenerated and checked).")
    p.add_argument("results", help="the zoo's results folder, e.g. results-showcase/showcase")
    p.add_argument("--out", required=True, help="the page, e.g. docs/showcase.md")
    p.add_argument("--snapshot", help="folder for the copied outputs (default: the page's path "
                                      "without .md)")
    p.add_argument("--run", help="JSON with the run's wall time etc. (make showcase writes it)")
    p.set_defaults(fn=cmd_page)
    p = sub.add_parser("verify", help="check a published zoo's checksums and schema")
    p.add_argument("zoo_dir", help="folder of a published zoo")
    p.set_defaults(fn=cmd_verify)
    p = sub.add_parser("export", help="a zoo's rows as safetensors files, one per model and "
                                      "epoch, with the row's metadata",
                       description="Write each selected row's module (its own parameter names) "
                                   "as a safetensors file with the row's columns in its "
                                   "metadata, for WeightWatcher, PyHessian, nfn, ...")
    p.add_argument("zoo", help="folder of a published zoo, or a hub id")
    p.add_argument("--format", choices=["safetensors"], default="safetensors",
                   help="file format (default: %(default)s)")
    p.add_argument("--out", required=True, help="folder for the files")
    p.add_argument("--cell", nargs="+", help="only these cells")
    p.add_argument("--phase", nargs="+", help="only these phases (I, II, III, IV-A, IV-B)")
    p.add_argument("--epoch", type=int, nargs="+", help="only these kept epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("config-doc", help="every config key's type, default and description, "
                                          "from the schema (config/README.md)")
    p.add_argument("--out", help="write it here (e.g. config/README.md) instead of printing")
    p.set_defaults(fn=cmd_config_doc)
    p = sub.add_parser("push", help="upload a verified zoo to a Hugging Face dataset repository",
                       description="Verify the zoo, create the dataset repository (if missing), "
                                   "upload the shards (resumable: rerun after an interruption), "
                                   "then the card (its loading snippet naming the repository), "
                                   "checksums and splits in one commit that also removes files "
                                   "of an earlier build. Token: `hf auth login` or HF_TOKEN.")
    p.add_argument("zoo_dir", help="folder of a published zoo, e.g. zoos/mnist-mlp")
    p.add_argument("--repo", required=True, help="dataset repository id, owner/name")
    p.add_argument("--revision", help="branch to push to, created from main if missing "
                                      "(default: main)")
    p.add_argument("--private", action="store_true",
                   help="create the repository private (an existing one keeps its visibility)")
    p.set_defaults(fn=cmd_push)
    add_report_commands(sub)
    p = sub.add_parser("estimate", help="models, parameters and GPU-hour estimate of zoos",
                       description="Models, parameters (exact, built on the meta device), training "
                                   "FLOPs and a cost-model GPU-hour estimate of every zoo of the "
                                   "configs, as a markdown table (see phasezoo.estimate).")
    p.add_argument("config", nargs="+", help="config YAML(s)")
    p.add_argument("--machine", choices=["gpu", "cpu"], default="gpu",
                   help="cost model: one GPU (default) or a CPU running --cores jobs at once")
    p.add_argument("--cores", type=int, default=2, help="CPU cores (--machine cpu; default 2)")
    p.set_defaults(fn=cmd_estimate)
    p = sub.add_parser("list", help="list registered models, datasets or metrics")
    p.add_argument("what", choices=["models", "datasets", "metrics"])
    p.set_defaults(fn=cmd_list)
    return parser


RUN_HELP = """usage: phasezoo run [SNAKEMAKE ARGS ...]

Run the workflow: every --configfile is read and validated by phasezoo first (plain YAML only;
Snakemake's template marker __use_yte__ is refused), handed to Snakemake as a checked JSON copy
(.snakemake/phasezoo/), a killed run's stale lock is removed (never while a Snakemake runs in the
folder), and Snakemake runs with this installation's tools on PATH. Where the working folder
has no Snakefile and no -s is given (phasezoo installed from a wheel), the workflow packaged
with phasezoo runs, on its default config unless --configfile is given. Every other argument
is Snakemake's (snakemake --help), e.g.

  phasezoo run --configfile my-zoo.yaml -n
  phasezoo run --profile slurm --configfile my-zoo.yaml
"""


def cmd_run(argv: list[str]) -> int:
    """``phasezoo run``: the checked way into Snakemake (:mod:`phasezoo.launch`)."""
    from phasezoo.bundled import with_bundled_workflow
    from phasezoo.launch import run

    if argv[:1] in (["-h"], ["--help"]):
        print(RUN_HELP, end="")
        return 0
    try:
        return run(with_bundled_workflow(argv, Path.cwd()))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"phasezoo run: error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors are one line on stderr and a non-zero exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # Snakemake's arguments pass through untouched
        return cmd_run(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.fn(args)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"phasezoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped reading (`phasezoo validate ... | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
