"""Where a Snakemake run's time goes: job-seconds per rule, the run's wall time, and how much of
it is process start-up rather than computation.

Reads a Snakemake log (default: the newest under ``.snakemake/log/``, e.g. right after
``rm -rf results zoos logs && make demo``): each job's time is from its start line to its
``Finished jobid`` line (one-second resolution). Start-up is measured in the same run: the
fastest of three ``python -c "import torch"`` (less a bare interpreter's start) and of three
``phasezoo --help`` (interpreter and CLI),
times the jobs that import torch (every job but ``job_config``, which runs inside Snakemake, and
the rules in ``--light``, which do not import torch).

    python benchmarks/dag_cost.py [LOG] [--light phases]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import subprocess
import sys
import time
from pathlib import Path

STAMP = re.compile(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]")
STARTED = re.compile(r"(?:Job|jobid:) (\d+)")
FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: (\w+)\)")
IN_PROCESS = {"job_config", "all"}  # rules Snakemake runs itself (run:, or no action)


def rule_seconds(log: Path) -> tuple[dict[str, list[float]], float]:
    """({rule: [seconds of each job]}, wall seconds from the first to the last time stamp)."""
    started: dict[str, datetime.datetime] = {}
    jobs: dict[str, list[float]] = collections.defaultdict(list)
    now = first = None
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            now = datetime.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            first = first or now
        elif (m := STARTED.match(line.strip())) and m.group(1) not in started:
            started[m.group(1)] = now
        elif (m := FINISHED.match(line)) and m.group(1) in started:
            jobs[m.group(2)].append((now - started[m.group(1)]).total_seconds())
    if first is None:
        raise SystemExit(f"{log}: no time stamps (not a Snakemake log?)")
    return dict(jobs), (now - first).total_seconds()


def fastest(cmd: list[str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", type=Path)
    ap.add_argument("--light", nargs="*", default=["phases"],
                    help="rules whose jobs do not import torch (diagnose does: datasets imports it)")
    args = ap.parse_args()
    log = args.log or max(Path(".snakemake/log").glob("*.log"), key=lambda p: p.stat().st_mtime)
    jobs, wall = rule_seconds(log)
    bare_s = fastest([sys.executable, "-c", "pass"])
    torch_s = fastest([sys.executable, "-c", "import torch"]) - bare_s
    cli_s = fastest([str(Path(sys.executable).with_name("phasezoo")), "--help"])
    print(f"{log}: wall {wall:.0f} s")
    print("| rule | jobs | job-seconds | per job | share |\n|---|---|---|---|---|")
    total = sum(sum(v) for v in jobs.values())
    for rule, times in sorted(jobs.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {rule} | {len(times)} | {sum(times):.0f} | {sum(times) / len(times):.1f} | "
              f"{100 * sum(times) / total:.0f} % |")
    heavy = sum(len(v) for r, v in jobs.items() if r not in IN_PROCESS | set(args.light))
    light = sum(len(v) for r, v in jobs.items() if r in args.light)
    startup = heavy * (cli_s + torch_s) + light * cli_s
    print(f"start-up: `import torch` {torch_s:.2f} s, the phasezoo CLI {cli_s:.2f} s; "
          f"{heavy} jobs import torch, {light} do not: {startup:.0f} of {total:.0f} "
          f"job-seconds ({100 * startup / total:.0f} %) are start-up")


if __name__ == "__main__":
    main()
