"""A zoo's page is generated from its run's outputs, and the committed page is exactly what its
committed snapshot generates (so no figure on it is typed by hand or drifts)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from phasezoo.cli import main
from phasezoo.zoo_page import render
from phasezoo_testkit import REPO

PHASES = ["I", "II", "II", "III", "IV-A", "IV-B", "IV-B", "IV-B"]


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results" / "z"
    (results / "plots").mkdir(parents=True)
    pd.DataFrame({"cell": [f"c{i}" for i in range(len(PHASES))],
                  "temperature_value": range(len(PHASES)), "load_value": 4.0,
                  "train_error": 0.5, "test_accuracy": 0.9, "mc": -3.0, "cka": float("nan"),
                  "phase": PHASES, "margin": 0.25, "margin_rule": "mc_tolerance",
                  "ln_hessian_trace": 1.0}).to_parquet(results / "phases.parquet")
    for name in ("benchmark", "studies", "diagnosis"):
        (results / f"{name}.md").write_text(f"# {name} of z\n\n| a |\n|---|\n| 1 |\n")
    for name in ("phase_diagram", "mc"):
        (results / "plots" / f"{name}.png").write_bytes(b"\x89PNG")
    return results


def test_the_page_shows_the_runs_own_outputs(tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"seconds": 1500, "cores": 2, "command": "make showcase"}))
    page = tmp_path / "docs" / "z.md"
    assert main(["page", str(_results(tmp_path)), "--out", str(page), "--run", str(run)]) == 0
    text = page.read_text()
    for phase, n in pd.Series(PHASES).value_counts().items():
        assert f"| {phase} | {n} |" in text
    assert "25.0 min of wall time on 2 CPU cores" in text
    assert "### benchmark of z" in text and "\n# benchmark" not in text  # demoted under a section
    links = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert sorted(Path(link).name for link in links) == ["mc.png", "phase_diagram.png"]
    assert all((page.parent / link).is_file() for link in links)
    assert "| c0 | 0 | 4 | 0.5 | 0.9 | -3 | — | I | 0.25 | mc_tolerance |" in text
    assert "ln_hessian_trace" not in text  # only the columns the page explains


def test_a_run_that_did_not_finish_writes_no_page(tmp_path, capsys):
    results = _results(tmp_path)
    (results / "studies.md").unlink()
    page = tmp_path / "z.md"
    assert main(["page", str(results), "--out", str(page)]) == 2
    assert "studies.md: missing" in capsys.readouterr().err and not page.exists()


# each committed page and the make target that writes it
PAGES = {"showcase": "make showcase", "mnist-mlp": "make demo && make demo-page",
         "mnist-mlp-deep": "make deep", "mnist-mlp-grid": "make grid"}


@pytest.mark.parametrize("name", list(PAGES))
def test_the_committed_page_is_what_its_snapshot_generates(name):
    page, snap = REPO / "docs" / f"{name}.md", REPO / "docs" / name
    assert page.is_file() and snap.is_dir(), f"{page} and {snap}/ come from `{PAGES[name]}`"
    assert render(snap, page) == page.read_text()


def test_the_readme_states_the_showcase_runs_own_time_and_estimate():
    """The README's minutes for the default and showcase zoos are their runs' records, and the
    showcase's estimate is phasezoo estimate's, not typed."""
    from phasezoo.config import load_config
    from phasezoo.estimate import estimate, machine

    readme = (REPO / "README.md").read_text()
    for name in ("mnist-mlp", "showcase"):
        run = json.loads((REPO / "docs" / name / "run.json").read_text())
        assert f"**{run['seconds'] / 60:.0f} min** (`docs/{name}/run.json`)" in readme
    zoo = load_config(REPO / "config" / "showcase.yaml").zoo("showcase")
    predicted = estimate(zoo, on=machine("cpu", run["cores"])).wall_hours * 60
    assert f"predicts {predicted:.0f} min for its train" in readme


def test_the_cell_table_names_each_cells_sensitive_thresholds(tmp_path):
    """A cell no threshold move relabels reads "none", not a missing value."""
    results = _results(tmp_path)
    table = pd.read_parquet(results / "phases.parquet")
    table["sensitive_to"] = ["cka", *[""] * (len(table) - 1)]
    table.to_parquet(results / "phases.parquet")
    page = tmp_path / "z.md"
    assert main(["page", str(results), "--out", str(page)]) == 0
    rows = [line for line in page.read_text().splitlines() if line.startswith("| c0 |")
            or line.startswith("| c1 |")]
    assert rows[0].endswith("| mc_tolerance | cka |") and rows[1].endswith("| mc_tolerance | none |")
