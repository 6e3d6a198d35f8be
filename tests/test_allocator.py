"""The allocator setting: a freed large block is reused without new page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Mallocs, writes and frees a 256 MiB block twice (through glibc, as torch's CPU allocator does)
# and prints the minor page faults of the second round: a fresh mmap'd block faults once per
# 4 KiB page (~65,000).
_PROBE = """
import ctypes, ctypes.util, resource, sys
from phasezoo.allocator import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "on" else None
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def touch():
    block = libc.malloc(2**28)
    ctypes.memset(block, 1, 2**28)
    libc.free(block)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_round_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True, capture_output=True,
                         text=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_large_block_is_reused_without_page_faults():
    applied, faults_on = _second_round_faults("on")
    _, faults_off = _second_round_faults("off")
    assert applied == "True"
    assert faults_off > 30_000  # the default: fresh pages for every large block
    assert faults_on < 1_000  # the heap block of the first round, reused
