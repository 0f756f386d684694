"""This process's memory on Linux: now, and at its peak.

The app leaves glibc's heap as it is. It used to restart every command with heap tunables
(`glibc.malloc.mmap_threshold=1 MB` on transparent huge pages) that cut a CPU run's resident
peak by a fifth, but every activation then became a mapping of its own, faulted in and zeroed
again each step: training ran at 0.6× the speed of Hugging Face's Trainer on the same work,
and a GPU run gained nothing. `python -m bench.train_vs_trainer --tuned-heap` shows both.
"""

from __future__ import annotations

import os


def resident_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """This process image's peak resident memory (VmHWM, Linux). Not `ru_maxrss`: that one
    keeps the peak of the process before exec — a copy of the forked parent, which may hold
    hundreds of MB — so a child would report its parent's memory, not its own."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
