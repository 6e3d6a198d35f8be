"""The CLI turns every config error into one line on stderr and exit code 2, before any stage
runs; ``validate`` takes ``--config`` like the other stages (and its old positional)."""

from __future__ import annotations

import copy

import pytest
import yaml

from phasezoo.cli import main
from phasezoo_testkit import TINY


def _write(tmp_path, raw: dict | str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_validate_takes_the_config_option_like_every_stage(tmp_path, capsys):
    """``validate --config FILE`` lists the cells; the old positional FILE is refused by argparse
    (exit 2), not taken as a second way to name the config."""
    path = _write(tmp_path, TINY)
    assert main(["validate", "--config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "tiny: 1 cells × 2 seeds (batch_size × width)", "  batch_size-256_width-16"]
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(path)])
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("zoos: {tiny: {seeds: [0, 1]\n", "{path}, line 2, column 1: invalid YAML: expected ',' or '}}'"),
    ("zoos: {}\nzoos: {}\n", "{path}, line 2, column 1: invalid YAML: duplicate key 'zoos' "
                             "(first on line 1)"),
    ({**TINY, "zoos": {"tiny": {**TINY["zoos"]["tiny"], "seeds": [0]}}},
     "zoos.tiny.seeds: [0] is too short (at least 2 needed)"),
    ({**TINY, "zoos": {"tiny": {**TINY["zoos"]["tiny"], "model": {"name": "resnet"}}}},
     "zoos.tiny.model.name: unknown model 'resnet'"),
])
@pytest.mark.parametrize("stage", ["validate", "train"])
def test_config_errors_are_one_line_with_exit_code_2(tmp_path, capsys, content, message, stage):
    path = _write(tmp_path, copy.deepcopy(content))
    argv = [stage, "--config", str(path)] + (["--zoo", "tiny", "--cell", "x"] if stage == "train"
                                             else [])
    line = _one_line_error(capsys, argv)
    assert line.startswith(f"phasezoo {stage}: error: " + message.format(path=path))
