"""The queue: runs started one after another by a headless runner that needs no app and no
terminal, failures not stopping it; sweeps that queue a grid; the queue listed and steered
from the command line."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.base.errors import UserError
from core.queue.items import RunQueue
from core.queue.runner import runner_pid
from core.queue.sweep import grid, parse_sweep
from core.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "core/resources/corpus_ru.txt"


def cli(*args, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                            text=True, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def queue_json() -> list[dict]:
    return json.loads(cli("queue", "--json").stdout)


def wait_until_the_runner_is_done(timeout: float = 180) -> None:
    """Until the queue is empty and its runner has exited; fails after `timeout` seconds."""
    end = time.monotonic() + timeout
    while queue_json() or runner_pid() is not None:
        assert time.monotonic() < end, f"the queue still holds {queue_json()} after {timeout:.0f} s"
        time.sleep(0.5)


def test_three_queued_runs_run_in_order_with_no_app_a_failure_not_stopping_them(tmp_path):
    doomed = tmp_path / "gone-by-its-turn.txt"
    doomed.write_text(CORPUS.read_text(encoding="utf-8"), encoding="utf-8")
    cli("queue", "--pause")                  # nothing starts until all three are queued
    for n, data in enumerate([CORPUS, doomed, CORPUS], 1):
        cli("train", "--model", "demo", "--train", str(data), "--max-steps", "3",
            "--out", str(tmp_path / f"run-{n}"), "--queue")
    doomed.unlink()                         # the second run fails when its turn comes
    assert [item["state"] for item in queue_json()] == ["paused"] * 3
    cli("queue", "--resume")
    wait_until_the_runner_is_done()
    runs = json.loads(cli("runs", "--json").stdout)[::-1]   # oldest first
    assert [r["status"] for r in runs] == ["done", "failed", "done"]
    assert str(doomed) in runs[1]["error"]
    assert [r["out"] for r in runs] == [str(tmp_path / "run-1"), None, str(tmp_path / "run-3")]
    assert all(r["sweep"] is None for r in runs)
    assert (tmp_path / "run-3" / "tb").is_dir()


def test_a_sweep_queues_its_grid_with_the_right_settings_and_has_a_table(tmp_path):
    cli("queue", "--pause")
    out = tmp_path / "sweep"
    said = cli("train", "--model", "demo", "--train", str(CORPUS), "--max-steps", "2",
               "--sweep", "lr=1e-4,3e-4,1e-3", "--sweep", "lora_r=4,8", "--lora", "--out", str(out))
    assert "sweep 1: 6 runs" in said.stdout
    items = queue_json()
    assert len(items) == 6 and {item["sweep"] for item in items} == {1}
    grid_seen = [(item["config"]["lr"], item["config"]["lora_r"]) for item in items]
    assert grid_seen == [(lr, r) for lr in (1e-4, 3e-4, 1e-3) for r in (4, 8)]
    assert all(item["config"]["lora"] is True and item["config"]["max_steps"] == 2 for item in items)
    assert [item["config"]["out"] for item in items] == [
        str(out / f"lr={lr},lora_r={r}") for lr in ("1e-4", "3e-4", "1e-3") for r in (4, 8)]
    table = json.loads(cli("runs", "--sweep", "1", "--json").stdout)
    assert [row["settings"] for row in table] == [{"lr": lr, "lora_r": r} for lr, r in grid_seen]
    assert all(row["status"] == "paused" and row["run"] is None for row in table)
    printed = cli("runs", "--sweep", "1").stdout.splitlines()
    assert printed[0].split() == ["run", "lr", "lora_r", "best", "eval", "steps", "time", "peak", "memory",
                                  "status"]
    assert len(printed) == 7
    assert "6 waiting runs" in cli("queue", "--clear").stderr and queue_json() == []


def test_the_queue_is_reordered_and_edited_from_two_connections():
    first, second = RunQueue(Store.open()), RunQueue(Store.open())   # two apps, one workspace
    first.pause()
    a, b, c = (first.add("demo", {"train": str(CORPUS), "seed": n}) for n in range(3))
    assert [i.id for i in second.items()] == [a, b, c]
    assert second.move(c, -2)                       # c to the front
    assert [i.id for i in first.items()] == [c, a, b]
    assert first.remove(a) and [i.id for i in second.items()] == [c, b]
    assert second.paused() and all(i.state == "paused" for i in first.items())
    first.resume()
    assert [i.state for i in second.items()] == ["waiting", "waiting"]
    assert second.clear() == 2 and first.items() == []


@pytest.mark.parametrize("spec, error", [
    ("lr", "write SETTING=VALUE"), ("speed=1,2", "not a training setting"),
    ("processes=1,2", "processes cannot be swept"),
    ("lr=1e-3,,3e-3", "empty value"), ("lr=1e-3,abc", "not a number"),
    ("lr=-1", "must be"), ("lr=1e-3,1e-3", "given twice"), ("pack=yes,maybe", "not on or off"),
])
def test_a_bad_sweep_is_one_line_naming_it(spec, error):
    with pytest.raises(UserError, match=error) as caught:
        parse_sweep(spec)
    assert spec in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_sweep_on_the_command_line_queues_nothing(tmp_path):
    result = cli("train", "--model", "demo", "--train", str(CORPUS), "--sweep", "lr=1e-3,oops",
                 check=False)
    assert result.returncode == 2 and "--sweep lr=1e-3,oops" in result.stderr
    assert "Traceback" not in result.stderr and queue_json() == []
    dry = cli("train", "--model", "demo", "--train", str(CORPUS), "--queue", "--dry-run", check=False)
    assert dry.returncode == 2 and "--dry-run: not with --queue" in dry.stderr and queue_json() == []


def test_grid_names_each_run_by_what_differs():
    combos = grid([parse_sweep("lr=1e-4,3e-4"), parse_sweep("pack=on,off")])
    assert [c.name for c in combos] == ["lr=1e-4,pack=on", "lr=1e-4,pack=off",
                                        "lr=3e-4,pack=on", "lr=3e-4,pack=off"]
    assert combos[1].values == {"lr": 1e-4, "pack": False}


def test_a_killed_runner_leaves_no_item_running_forever():
    queue = RunQueue(Store.open())
    item = queue.add("demo", {"train": str(CORPUS)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    queue.store.write([("UPDATE queue SET state = 'running', pid = ?, host = ? WHERE id = ?",
                        (dead.pid, os.uname().nodename, item))])
    queue.drop_orphans()
    assert queue.items() == []


def test_a_queued_run_on_two_processes_goes_to_torchrun_and_is_recorded_once(tmp_path):
    """The pane queues runs with its `processes` field: the runner starts those under torchrun
    (gloo on this CPU); rank 0 alone records the run."""
    queue = RunQueue(Store.open())
    queue.pause()
    queue.add("demo", {"train": str(CORPUS), "processes": 2, "max_steps": 3, "batch_size": 2,
                       "block_size": 32, "device": "cpu", "out": str(tmp_path / "two")})
    cli("queue", "--resume")
    wait_until_the_runner_is_done(timeout=300)
    (run,) = json.loads(cli("runs", "--json").stdout)
    assert run["status"] == "done" and run["steps"] == 3 and run["out"] == str(tmp_path / "two")
    assert (tmp_path / "two" / "model.safetensors").is_file()


def test_a_queued_two_process_run_stops_as_the_pane_stops_it(tmp_path):
    """F9 on a run of another process sends its recorded process (rank 0) SIGTERM: the ranks
    agree to stop, rank 0 saves, and the queue's runner moves on."""
    import signal

    from core.queue.runner import ensure_runner

    queue = RunQueue(Store.open())
    queue.add("demo", {"train": str(CORPUS), "processes": 2, "epochs": 50.0, "batch_size": 2,
                       "block_size": 32, "device": "cpu", "out": str(tmp_path / "stopped")})
    ensure_runner()
    end = time.monotonic() + 120
    while not ((runs := json.loads(cli("runs", "--json").stdout)) and runs[0]["steps"] >= 2):
        assert time.monotonic() < end, "the queued run never trained"
        time.sleep(0.3)
    row = Store.open().run(runs[0]["id"])
    os.kill(row["pid"], signal.SIGTERM)
    wait_until_the_runner_is_done(timeout=180)
    (run,) = json.loads(cli("runs", "--json").stdout)
    assert run["status"] == "cancel" and run["out"] == str(tmp_path / "stopped")
    assert (tmp_path / "stopped" / "model.safetensors").is_file()
