"""The hardware's figures while a run trains: on this machine (no NVIDIA driver) the
process's CPU use and resident memory, measured against what the process did; and one
sample per evaluation kept in the workspace, so a finished run shows its peak memory."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.base.hardware import HardwareMonitor, memory_held
from core.base.host_memory import resident_bytes
from core.store.database import Store

ROOT = Path(__file__).resolve().parents[1]


def burn_cpu(seconds: float) -> None:
    start = sum(os.times()[:2])
    while sum(os.times()[:2]) - start < seconds:
        sum(i * i for i in range(10_000))


def test_the_cpu_figure_is_the_processs_cpu_time_over_the_wall_clock():
    monitor = HardwareMonitor()
    monitor.read()
    time.sleep(0.3)
    idle = monitor.read().host.cpu_percent
    began = time.monotonic()
    burn_cpu(0.5)
    busy = monitor.read()
    wall = time.monotonic() - began
    assert idle < busy.host.cpu_percent
    # 0.5 s of CPU (and a little more) over the time it took
    assert 0.9 * 50 / wall <= busy.host.cpu_percent <= 1.2 * 100 * 0.5 / wall + 5
    assert busy.host.cores == os.cpu_count()


def test_resident_memory_grows_with_what_the_process_holds():
    before = HardwareMonitor().read().host.rss
    held = bytearray(200 * 2**20)
    held[::4096] = b"x" * len(held[::4096])   # touched: resident, not only reserved
    after = HardwareMonitor().read()
    assert after.host.rss - before >= 190 * 2**20
    assert abs(after.host.rss - resident_bytes()) < 16 * 2**20
    del held


def test_another_processs_cpu_and_memory_are_its_own():
    """A run training in another process (the queue's) is read by its pid."""
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\n"
        "sys.stdin.readline(); start = sum(os.times()[:2])\n"
        "held = bytearray(150 * 2**20); held[::4096] = b'x' * len(held[::4096])\n"
        "while sum(os.times()[:2]) - start < 0.5: sum(i * i for i in range(10_000))\n"
        "print('done', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        monitor = HardwareMonitor(child.pid)
        before = monitor.read().host.rss
        began = time.monotonic()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        reading = monitor.read()
        wall = time.monotonic() - began
        assert 0.45 <= reading.host.cpu_percent / 100 * wall <= 0.8   # its 0.5 s of CPU, not ours
        assert reading.host.rss - before >= 140 * 2**20                # the 150 MB it took since
    finally:
        child.kill()
        child.wait()


def test_the_line_shows_the_gpus_where_nvml_sees_any_else_the_process():
    monitor = HardwareMonitor()
    reading = monitor.read()
    if monitor.has_gpus:
        assert reading.line().startswith("GPU0 ") and reading.gpus[0].memory_total > 0
        assert memory_held(reading.as_json()) == sum(g.memory_used for g in reading.gpus)
    else:
        assert reading.gpus == [] and reading.line().startswith("CPU ")
        assert memory_held(reading.as_json()) == reading.host.rss


def test_a_run_keeps_a_sample_per_evaluation_and_shows_its_peak(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                          str(ROOT / "core/resources/corpus_ru.txt"), "--max-steps", "6",
                          "--eval-every", "2", "--jsonl"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    store = Store.open()
    row = store.runs()[0]
    samples = store.hardware(row["id"])
    assert [step for step, _ in samples] == [step for step, _, _ in store.evals(row["id"])]
    peak = max(memory_held(sample) for _, sample in samples)
    assert peak > 100 * 2**20 and store.peak_memory(row["id"]) == peak   # torch alone holds more
    listed = json.loads(subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--json"],
                                       capture_output=True, text=True, cwd=ROOT).stdout)
    assert listed[0]["peak_memory"] == peak
