"""This process's memory on Linux: now, and at its peak.

The app leaves glibc's heap as it is and never restarts itself to tune it: heap tunables
(`glibc.malloc.mmap_threshold=1 MB` on transparent huge pages) cut a CPU run's resident peak
by a fifth, but make every activation a mapping of its own, faulted in and zeroed again each
step — 0.6× the Trainer's speed on the same work — and buy a GPU run nothing.
`python -m bench.train_vs_trainer --tuned-heap` measures both.
"""

from __future__ import annotations

import os


def resident_bytes(pid: int | None = None) -> int:
    """A process's resident memory now (this one's by default; Linux)."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time a process has used, user and system (this one's by default)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:   # the fields after the command's ")" are plain
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_resident_bytes() -> int:
    """This process image's peak resident memory (VmHWM, Linux). Not `ru_maxrss`: that one
    keeps the peak of the process before exec — a copy of the forked parent, which may hold
    hundreds of MB — so a child would report its parent's memory, not its own."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
