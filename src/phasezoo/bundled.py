"""The workflow shipped inside the package, for ``phasezoo run`` where no checkout is.

Why: installed from a wheel, phasezoo has no repository around it, and Snakemake looks for a
Snakefile in the working directory only. The wheel carries the workflow as package data
(``phasezoo/workflow/``: the Snakefile, ``workflow/`` rules, schema and report, ``config/``,
``envs/`` and ``profiles/``; in a checkout those are links to the repository's own files, so
there is one copy of each). Where the working directory has no Snakefile and none is given,
``phasezoo run`` runs that one, with its default config when no ``--configfile`` is given;
results go to the working directory as usual.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SNAKEFILE_OPTIONS = ("-s", "--snakefile")
CONFIG_OPTIONS = ("--configfile", "--configfiles")
WORKFLOW_SNAKEFILES = ("Snakefile", "snakefile", "workflow/Snakefile", "workflow/snakefile")


def bundled_workflow() -> Path:
    """The folder of the packaged workflow (its Snakefile, ``config/``, ``profiles/``, ...)."""
    return Path(str(resources.files("phasezoo") / "workflow"))


def _given(argv: list[str], names: tuple[str, ...]) -> bool:
    """Whether one of Snakemake's options ``names`` is among ``argv`` (``-s F`` or ``-s=F``)."""
    return any(arg.partition("=")[0] in names for arg in argv)


def with_bundled_workflow(argv: list[str], cwd: Path) -> list[str]:
    """Snakemake arguments, with ``-s`` the packaged Snakefile (and ``--configfile`` its default
    config, when none is given) if neither ``-s`` nor a Snakefile where Snakemake looks for one
    (``cwd``, whatever ``--directory`` says) names a workflow; ``argv`` unchanged otherwise."""
    if _given(argv, SNAKEFILE_OPTIONS) or any((cwd / name).is_file()
                                               for name in WORKFLOW_SNAKEFILES):
        return argv
    folder = bundled_workflow()
    extra = ["-s", str(folder / "Snakefile")]
    if not _given(argv, CONFIG_OPTIONS):
        extra += ["--configfile", str(folder / "config" / "config.yaml")]
    return [*argv, *extra]
