"""The C allocator setting of phasezoo's processes: freed memory is kept for reuse.

Kept free of torch so that ``phasezoo``'s command line can apply it before anything else runs
(light commands like ``validate`` never import torch).
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks for reuse instead of handing them back to the kernel.

    Why: glibc serves every block above its mmap threshold (32 MiB at most) with fresh pages
    that the kernel zero-fills on first touch and unmaps on free. A stacked training step
    allocates the activations of all K members at once (16 small CNNs at batch 256: ~100 MiB
    per layer), so it paid those page faults again every step: 30 ms per member-step against
    13.2 ms with this setting (the small CNN at width 8, K = 16; ``benchmarks/
    train_population.py`` runs both trainers in one process with it). ``M_MMAP_MAX = 0`` serves
    all blocks from the heap and a large ``M_TRIM_THRESHOLD`` keeps freed heap for the next
    step, which is what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc, without a
    preloaded library. The cost: the process keeps its peak memory until it exits, so it is
    applied by the ``train`` and ``measure`` commands (one process per job), not on import.
    Under an ``LD_PRELOAD``-ed jemalloc or tcmalloc glibc still accepts the call, which then
    changes nothing (those allocators already reuse freed memory).

    Returns:
        True if glibc accepted both settings; False (nothing changed) with another C library.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already uses
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
