"""Peak memory of a block of code: what the rehearsal and the zoo benchmark report per step.

Kept free of torch (the zoo benchmark's reference side imports only ``datasets`` and ``h5py``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

_STATUS = Path("/proc/self/status")


def private_bytes() -> int:
    """The process's resident anonymous memory (``RssAnon``), 0 where ``/proc`` has none.

    Why anonymous memory and not RSS: a loaded ``datasets`` zoo is a memory-mapped Arrow file,
    whose pages count in RSS while they are read but are the kernel's page cache, dropped under
    pressure. What a machine must hold is the private part.
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Context manager sampling :func:`private_bytes` every ``interval`` seconds in a thread.

    ``peak`` is the largest sample (including the memory held on entry), ``start`` the memory
    on entry. Copies of multi-GB rows last far longer than the 5 ms default interval.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.start, self.peak = interval, 0, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = private_bytes()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, private_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, private_bytes())


def human_bytes(n: float) -> str:
    """``n`` bytes with a binary unit, 3 significant digits (``1.41 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if n < 999.5 else f"{n:.0f} {unit}"  # not 1.02e+03
        n /= 1024
    return f"{n:.3g} TiB"


def folder_bytes(path: str | Path) -> int:
    """Bytes of every file under ``path`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
