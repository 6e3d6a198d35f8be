"""Shared fixtures: tiny configs and one trained population, built in code (nothing downloaded)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# A Hugging Face cache of this run's own (set before `datasets` is imported, which reads it
# once): the tests never read or fill the user's cache, and no zoo cached by an earlier run is
# served to this one. Subprocesses (the DAG) inherit it.
_HF_HOME = tempfile.mkdtemp(prefix="phasezoo-tests-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from phasezoo.config import load_config  # noqa: E402
from phasezoo_testkit import publish_stages, tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One trained tiny population: (config, cell, path of train.h5)."""
    from phasezoo.train import train_cell

    tmp = tmp_path_factory.mktemp("trained")
    cfg = load_config(tiny_config(tmp))
    cell = cfg.zoo("tiny").cells()[0]
    out = train_cell(cell, tmp / "train.h5", torch.device("cpu"), cfg.data_root, progress=False)
    return cfg, cell, out


@pytest.fixture(scope="session")
def published(trained, tmp_path_factory):
    """The tiny trained population run through metrics, pairs, phases and publish."""
    cfg, cell, train_h5 = trained
    return cfg, cell, train_h5, publish_stages(cfg.raw, cell, train_h5,
                                               tmp_path_factory.mktemp("published"))
