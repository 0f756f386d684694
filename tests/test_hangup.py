"""A dropped connection never loses a run: the app (and `train`) run in a real pseudo-terminal,
the terminal is closed mid-run — what sshd does when a connection drops — and the run goes on
to its end, saves, is recorded as finished, and the process exits by itself."""

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

import pytest
import torch
from safetensors.torch import load_file

from core.base.host_memory import resident_bytes
from core.model.session import load_session
from core.store.database import Store
from core.store.workspace import settings_path
from tests.helpers import ROOT, wait_for
from tui.shell.app import RuGPTApp

CORPUS = ROOT / "core" / "resources" / "corpus_ru.txt"


def spawn(*args, block_sighup=False, python=None):
    """`rugpt-tui ARGS` (or `python PYTHON…`) on a new 120×40 pseudo-terminal: (pid, the
    terminal's master side). `block_sighup`: the child never gets SIGHUP — its terminal just
    dies (EIO)."""
    pid, fd = pty.fork()
    if pid == 0:   # the child: a session leader whose controlling terminal is the pty
        if block_sighup:   # the mask outlives exec
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, *(python or ["-m", "tui.cli", *args])])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return pid, fd


def read_until(fd, predicate, timeout=90.0):
    """Read the terminal until `predicate(run)` holds for the workspace's newest run."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                os.read(fd, 1 << 16)
            except OSError:
                break
        runs = Store.open().runs()
        if runs and predicate(runs[0]):
            return runs[0]
    raise AssertionError("the run did not get there in time")


def wait_exit(pid, timeout=120.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, 9)
    raise AssertionError("the process did not exit by itself")


def wait_loaded(fd, timeout=90.0) -> None:
    """Until the app's model line shows the demo loaded; fails after `timeout` seconds."""
    ready, end = b"", time.monotonic() + timeout
    while b"GPT2LMHeadModel" not in ready:
        if time.monotonic() > end:
            raise AssertionError(f"the model was not loaded within {timeout:.0f} s")
        if select.select([fd], [], [], 0.2)[0]:
            ready = (ready + os.read(fd, 1 << 16))[-4096:]


def start_training(fd) -> None:
    """Wait for the model, press F8 (again, until the pane has taken it), wait for steps."""
    wait_loaded(fd)
    for _ in range(20):
        os.write(fd, b"\x1b[19~")   # F8
        try:
            read_until(fd, lambda run: True, timeout=3)
            break
        except AssertionError:
            continue
    read_until(fd, lambda run: run["steps"] >= 5)


def check_finished(out, status="done"):
    run = Store.open().runs()[0]
    assert run["status"] == status and run["out"] == str(out)
    steps, evals = Store.open().curves(run["id"])
    assert len(steps) == run["steps"] >= 5 and evals[0][0] == 0
    if status == "done":
        assert evals[-1][0] == run["steps"]   # the final eval, after the hangup
    assert (out / "model.safetensors").is_file()
    assert not list(out.parent.glob(f".{out.name}.lock")), "the folder lock was left behind"
    return run


async def test_the_app_keeps_training_after_its_terminal_hangs_up(demo_dir, tmp_path):
    """…and the next launch says the run finished while you were away; ctrl+e loads its
    weights over the model as loaded, for before/after."""
    out = tmp_path / "model"
    settings_path().write_text(
        f'model = "demo"\n[train.demo]\nepochs = 2.0\n[data]\ntrain = "{CORPUS}"\nout = "{out}"\n',
        encoding="utf-8")
    pid, fd = spawn("--model", "demo")
    try:
        start_training(fd)
    finally:
        os.close(fd)   # the terminal goes away: the app gets SIGHUP
    assert wait_exit(pid) == 0
    run = check_finished(out)
    assert run["steps"] == 126   # 2 epochs of 63 steps: all of them, after the hangup

    app = RuGPTApp(session=load_session("demo", device="cpu"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert app.workspace.finished_away["id"] == run["id"]
        toasts = " ".join(note.message for note in app._notifications)
        assert "finished while you were away" in toasts and str(out) in toasts
        preloaded = app.session
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: app.session is not preloaded, timeout=60)
        trained = load_file(str(out / "model.safetensors"))
        name = "transformer.h.0.attn.c_attn.weight"
        assert torch.equal(app.session.model.state_dict()[name], trained[name])
        assert not torch.equal(app.session.base_state[name], trained[name])   # "before" kept
    assert Store.open().unseen_ends() == []   # announced once


def test_a_terminal_that_dies_without_sighup_is_a_hangup_too(demo_dir, tmp_path):
    """SIGHUP blocked: the terminal just fails (EIO). A run still goes on to its end and the
    process exits; an idle app notices the dead terminal and quits."""
    out = tmp_path / "model"
    settings_path().write_text(
        f'model = "demo"\n[train.demo]\nepochs = 1.0\n[data]\ntrain = "{CORPUS}"\nout = "{out}"\n',
        encoding="utf-8")
    pid, fd = spawn("--model", "demo", block_sighup=True)
    try:
        start_training(fd)
    finally:
        os.close(fd)
    assert wait_exit(pid) == 0
    assert check_finished(out)["steps"] == 63

    pid, fd = spawn("--model", "demo", block_sighup=True)
    try:
        wait_loaded(fd)
    finally:
        os.close(fd)
    assert wait_exit(pid, timeout=30) == 0


def test_train_keeps_going_or_saves_and_stops_on_a_hangup(demo_dir, tmp_path):
    """Keep, on SIGHUP; stop, on a terminal that dies without one (SIGHUP blocked)."""
    for on_hangup, status in (("keep", "done"), ("stop", "cancel")):
        out = tmp_path / on_hangup
        pid, fd = spawn("train", "--model", "demo", "--train", str(CORPUS), "--epochs", "2",
                        "--out", str(out), "--on-hangup", on_hangup, block_sighup=on_hangup == "stop")
        try:
            read_until(fd, lambda run: run["steps"] >= 5 and run["out"] is None)
        finally:
            os.close(fd)
        assert wait_exit(pid) == 0
        run = check_finished(out, status)
        assert (run["steps"] == 126) == (on_hangup == "keep")


async def test_a_second_app_shows_a_run_of_another_process_and_stops_it(demo_dir, tmp_path):
    """A run going in another process (here `train`) is shown live from the workspace —
    status with its ETA, curve, evals and samples — and F9 asks it to save and stop."""
    import subprocess

    out = tmp_path / "model"
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                             str(CORPUS), "--epochs", "100", "--out", str(out), "--jsonl"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 90
        while not ((runs := Store.open().runs()) and runs[0]["steps"] >= 3):
            assert time.monotonic() < end and proc.poll() is None
            time.sleep(0.2)
        app = RuGPTApp(session=load_session("demo", device="cpu"))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f4")
            status = app.query_one("#train-status")
            await wait_for(pilot, lambda: f"in process {proc.pid}" in str(status.render()), timeout=30)
            curve = lambda: app.train_pane.runs_list.curve(runs[0]["id"], app.store)   # noqa: E731
            seen = len(curve().steps)
            await wait_for(pilot, lambda: len(curve().steps) > seen + 5, timeout=30)  # it grows
            log = " ".join(str(line.text) for line in app.query_one("#train-log").lines)
            assert f"#{runs[0]['id']} step 0: eval loss" in log
            # the hardware it trains on: here (no GPU) that process's CPU and memory, not ours
            pane = app.train_pane
            await wait_for(pilot, lambda: pane.watched_pid == proc.pid and pane.hardware is not None)
            assert "CPU " in str(app.query_one("#train-chart").border_subtitle)
            assert pane.hardware.host.rss == pytest.approx(resident_bytes(proc.pid), rel=0.2)
            await pilot.press("f9")
            assert proc.wait(timeout=60) == 0
            await wait_for(pilot, lambda: "cancel" in str(
                app.query_one("#train-runs").get_option_at_index(0).prompt), timeout=10)
            # its figures go with it: nothing reads as if it still trained
            await wait_for(pilot, lambda: pane.hardware is None
                           and not app.query_one("#train-chart").border_subtitle, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = Store.open().runs()[0]
    assert run["status"] == "cancel" and run["out"] == str(out) and (out / "model.safetensors").is_file()

