#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs on a bare PyTorch image, downloaded here into .whl/
# (git-ignored) for the device machine's Python (default 3.12), before any device time is spent:
#   bash benchmarks/gpu_wheels.sh [PYTHON_VERSION]
# then run gpu_check.sh there with .whl and tests/.data-cache carried. The versions are the ones
# this project's environment resolves (read from .venv when it exists, else the pins below); a
# package the image already has (torchvision, h5py, PyYAML, tqdm, attrs, pandas, scipy, ...) does
# not travel: gpu_check.json's device.packages says what the image lacked. Bash 4+; the
# wheels are for the device image's x86-64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root, where gpu_check.sh looks for .whl/
py="${1:-3.12}"
venv_python=".venv/bin/python"
declare -A pins=([jsonschema]=4.26.0 [jsonschema-specifications]=2025.9.1 [referencing]=0.37.0
                 [rpds-py]=2026.9.1 [mlxtend]=0.25.0)
rm -rf .whl && mkdir -p .whl
for name in "${!pins[@]}"; do
    version="${pins[$name]}"
    if [ -x "$venv_python" ]; then
        version="$("$venv_python" -c 'import sys; from importlib.metadata import version; print(version(sys.argv[1]))' "$name" 2>/dev/null || echo "$version")"
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$name==$version"
done
ls -1 .whl
