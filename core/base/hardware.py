"""What the machine is doing while a run trains: per NVIDIA GPU its utilisation, memory,
temperature and power (NVML, through `nvidia-ml-py`); on a machine without an NVIDIA driver,
this process's CPU use and resident memory instead.

    monitor = HardwareMonitor()
    monitor.read().line()      # "GPU0 97% · 61.2/79.6 GB · 71 °C · 512 W" or "CPU 190% · RSS 1.4 GB"

Reading NVML takes a few milliseconds per GPU: callers read on a worker, at most once a
second. A process that has gone away raises OSError.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

from core.base.host_memory import cpu_seconds, resident_bytes


@dataclass
class GpuReading:
    index: int
    name: str
    utilization: int | None          # % of the last sample period the GPU was busy
    memory_used: int | None          # bytes
    memory_total: int | None
    temperature: int | None          # °C
    power: float | None              # watts

    def line(self) -> str:
        parts = [f"GPU{self.index} " + (f"{self.utilization}%" if self.utilization is not None else "?")]
        if self.memory_used is not None and self.memory_total:
            parts.append(f"{self.memory_used / 1e9:.1f}/{self.memory_total / 1e9:.1f} GB")
        if self.temperature is not None:
            parts.append(f"{self.temperature} °C")
        if self.power is not None:
            parts.append(f"{self.power:.0f} W")
        return " · ".join(parts)


@dataclass
class HostReading:
    cpu_percent: float               # this process, since the last reading (100 = one core busy)
    rss: int                         # resident memory, bytes
    cores: int

    def line(self) -> str:
        return f"CPU {self.cpu_percent:.0f}% of {self.cores * 100}% · RSS {self.rss / 1e9:.2f} GB"


@dataclass
class Reading:
    host: HostReading
    gpus: list[GpuReading] = field(default_factory=list)

    def line(self) -> str:
        """One line for a status bar: the GPUs where there are any, else the process."""
        return "  ".join(g.line() for g in self.gpus) if self.gpus else self.host.line()

    def memory_used(self) -> int:
        return memory_held(self.as_json())

    def as_json(self) -> dict:
        return asdict(self)


def memory_held(sample: dict) -> int:
    """What a reading (as JSON) says the run holds: the GPUs' memory in use, else the
    process's resident set."""
    if sample["gpus"]:
        return sum(g["memory_used"] or 0 for g in sample["gpus"])
    return sample["host"]["rss"]


class HardwareMonitor:
    """Reads the GPUs, and the CPU and memory of one process: this one, or `pid` (a run
    training in another process, on this machine)."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self._nvml = None
        self._handles: list = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                             for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception:   # no package, no driver, no GPU: the process's figures only
            self._handles = []
        self._cpu_at = (time.monotonic(), self._cpu_seconds())

    @property
    def has_gpus(self) -> bool:
        return bool(self._handles)

    def _cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def read(self) -> Reading:
        now, cpu = time.monotonic(), self._cpu_seconds()
        then, cpu_then = self._cpu_at
        self._cpu_at = (now, cpu)
        percent = 100 * (cpu - cpu_then) / max(now - then, 1e-6)
        host = HostReading(round(percent, 1), resident_bytes(self.pid), os.cpu_count() or 1)
        return Reading(host, [self._gpu(i, h) for i, h in enumerate(self._handles)])

    def _gpu(self, index: int, handle) -> GpuReading:
        nvml = self._nvml
        assert nvml is not None   # handles exist only with NVML

        def asked(read, default=None):
            try:
                return read()
            except nvml.NVMLError:   # a figure this GPU does not report
                return default

        name = asked(lambda: nvml.nvmlDeviceGetName(handle), "GPU")
        memory = asked(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = asked(lambda: nvml.nvmlDeviceGetPowerUsage(handle))   # milliwatts
        return GpuReading(
            index, name.decode() if isinstance(name, bytes) else str(name),
            asked(lambda: int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
            int(memory.used) if memory is not None else None,
            int(memory.total) if memory is not None else None,
            asked(lambda: int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            power / 1000 if power is not None else None)
