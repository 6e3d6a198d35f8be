#!/usr/bin/env bash
# `make test-slurm`: the tiny zoos of config/test-slurm.yaml through `phasezoo run --profile slurm`
# on a localhost Slurm (started by start-localhost.sh), then checks of what Slurm was asked for
# and of the published zoos. Run from the repository root with the venv's bin first on PATH.
set -euo pipefail
here=$(dirname "$0")
bash "$here/start-localhost.sh"
rm -rf results-slurm zoos-slurm logs/tiny-cpu logs/tiny-gpu .snakemake/slurm_logs
log=$(mktemp)
# No accounting database here: sacct fails, so status comes from squeue (MinJobAge=300 in
# slurm.conf keeps finished jobs visible); the short first wait keeps the test quick.
# The README's command (phasezoo run: the config checked first), with one scheduler argument
# through the profile's PHASEZOO_SLURM_EXTRA and the others (qos, constraint, GPU model) unset.
PHASEZOO_SLURM_EXTRA="--mail-type=NONE" \
phasezoo run --profile slurm --configfile config/test-slurm.yaml \
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2 --verbose \
    >"$log" 2>&1 || { tail -n 60 "$log"; exit 1; }
calls=$(grep -o 'sbatch call: sbatch .*--wrap' "$log" | grep 'group_cells-' || true)
echo "$calls" | cut -c1-200
check() { if ! eval "$1"; then echo "test-slurm: FAILED: $2" >&2; exit 1; fi; }
check '[ "$(echo "$calls" | wc -l)" -eq 2 ]' "one grouped Slurm job per zoo (2 cells each), got: $calls"
check 'echo "$calls" | grep "cells-gpu-" | grep -q -- "--gpus=1"' "the GPU zoo's job asks for one GPU"
check '! echo "$calls" | grep "cells-cpu-" | grep -q -- "--gpus"' "the CPU zoo's job asks for no GPU"
check '[ "$(echo "$calls" | grep -c -- "--mail-type=NONE")" -eq 2 ]' "PHASEZOO_SLURM_EXTRA reaches sbatch"
check '! echo "$calls" | grep -q -e "--qos" -e " -C "' "unset scheduler arguments are not passed"
for zoo in tiny-cpu tiny-gpu; do
    phasezoo verify "zoos-slurm/$zoo"
    check "[ -s results-slurm/$zoo/benchmark.json ]" "the WSL benchmark of $zoo ran"
    check "[ -s results-slurm/$zoo/studies.json ]" "the downstream studies of $zoo ran"
done
check '[ -s results-slurm/tiny-gpu/transfer-from-tiny-cpu/benchmark.json ]' "the zoo-transfer benchmark ran"
echo "test-slurm: OK"
