"""Endless or slow input never blocks: data that is not a file or a folder (a device, a FIFO)
is refused at once, without being opened; and the app's process ends within 2 s of ctrl+q —
or of its terminal dying, with no run going — whatever a worker is doing."""

import os
import select
import signal
import time

import pytest
from textual.widgets import Input

from core.base.errors import UserError
from core.data.source import check_source, resolve_source, text_files
from core.store.database import Store
from core.store.workspace import settings_path
from tests.helpers import ROOT, cli, run_cli, wait_for
from tests.test_hangup import spawn, wait_exit, wait_loaded
from tui.shell.app import RuGPTApp

CORPUS = ROOT / "core" / "resources" / "corpus_ru.txt"


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "fifo"])
def test_train_refuses_data_that_never_ends(source, fifo, demo_dir, tmp_path):
    source = str(fifo) if source == "fifo" else source
    kind = "named pipe (FIFO)" if source == str(fifo) else "character device"
    for args in (["--train", source], ["--train", str(CORPUS), "--test", source]):
        # its own process, so a hang would show as a timeout rather than block the suite
        done = run_cli("train", "--model", "demo", *args, "--out", str(tmp_path / "out"),
                       timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == f"rugpt-tui: error: {source}: a {kind}, not a file or a folder of texts"
        assert not (tmp_path / "out").exists()
    assert cli("runs", "--json").stdout.strip() == "[]"   # refused: no run recorded


def test_a_folder_of_texts_skips_what_is_not_a_file(fifo, tmp_path):
    (tmp_path / "a.txt").write_text("Кот спал.\n", encoding="utf-8")
    (tmp_path / "sub.txt").mkdir()
    assert text_files(tmp_path) == [tmp_path / "a.txt"]
    check_source(str(tmp_path))
    assert resolve_source(str(tmp_path)).fingerprint.startswith("sha256:")   # the FIFO is never opened
    with pytest.raises(UserError, match="named pipe"):
        check_source(str(fifo))


async def test_the_train_pane_refuses_a_fifo_at_once(demo_session, fifo):
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        app.query_one("#train-data", Input).value = str(fifo)
        await wait_for(pilot, lambda: "named pipe" in str(app.query_one("#train-preview").render()),
                       timeout=10)
        await pilot.press("f8")
        await pilot.pause(0.3)
        assert app.train_pane.run is None   # refused before it started: no run
        assert "named pipe" in str(app.query_one("#train-status").render())
    assert Store.open().runs() == []



@pytest.mark.parametrize("field", ["train-data", "train-test", "train-out"])
async def test_a_path_with_a_nul_character_is_one_line(demo_session, field):
    """A paste can put a NUL into a path field; no file system takes one (Python raises
    ValueError, not OSError): the preview and F8 say so in one line, and nothing fails."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        typed = app.query_one(f"#{field}", Input)
        typed.value = "/tmp/a\x00b"
        said = "a path cannot hold a NUL character"
        await wait_for(pilot, lambda: said in str(app.query_one("#train-preview").render())
                       or said in str(typed.tooltip))   # the output folder: marked on its field
        await pilot.press("f8")
        await wait_for(pilot, lambda: said in str(app.query_one("#train-status").render())
                       or any(said in n.message for n in app._notifications))
        assert app.train_pane.run is None

# A worker that never returns: the Train pane's preview stuck in a read no check can
# interrupt (a dead network mount, say). The real app runs in its own process with that one
# function replaced.
STUCK_PREVIEW = """
import sys, threading
import core.data.tokenized
def never_returns(*args, **kwargs):
    open(sys.argv[1], "w").close()   # it has started
    threading.Event().wait()
core.data.tokenized.quick_estimate = never_returns
from tui.cli.main import main
sys.exit(main(["--model", "demo"]))
"""


def spawn_stuck(tmp_path, block_sighup=False):
    started = tmp_path / "stuck-started"
    settings_path().write_text(f'model = "demo"\n[data]\ntrain = "{CORPUS}"\n', encoding="utf-8")
    pid, fd = spawn(block_sighup=block_sighup, python=["-c", STUCK_PREVIEW, str(started)])
    wait_loaded(fd)
    os.write(fd, b"\x1bOS")   # F4: the preview starts, and never returns
    end = time.monotonic() + 30
    while not started.exists() and time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            os.read(fd, 1 << 16)
    assert started.exists(), "the preview did not start"
    return pid, fd


def gone_within(pid, seconds, fd=None) -> float:
    """Seconds until `pid` exits (reading its terminal meanwhile); fails after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if fd is not None and select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 1 << 16)
            except OSError:
                fd = None
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return time.monotonic() - start
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the process was still there after {seconds} s")


def test_ctrl_q_ends_the_process_within_2_s_whatever_a_worker_does(demo_dir, tmp_path):
    pid, fd = spawn_stuck(tmp_path)
    try:
        os.write(fd, b"\x11")   # ctrl+q
        assert gone_within(pid, 2.0, fd) < 2.0
    finally:
        os.close(fd)


def test_an_idle_app_whose_terminal_dies_leaves_no_process(demo_dir, tmp_path):
    """No run going: a hangup (here a terminal that dies without SIGHUP, the harder case)
    ends the process within 5 s, its stuck worker too."""
    pid, fd = spawn_stuck(tmp_path, block_sighup=True)
    os.close(fd)
    assert gone_within(pid, 5.0) < 5.0


def test_the_app_with_dev_zero_in_the_data_field_quits_at_once(demo_dir):
    """The path is remembered in settings.toml: every start reads the field again."""
    settings_path().write_text('model = "demo"\n[data]\ntrain = "/dev/zero"\n', encoding="utf-8")
    pid, fd = spawn("--model", "demo")
    try:
        wait_loaded(fd)
        os.write(fd, b"\x1bOS")   # F4: the preview says what it is
        time.sleep(1.0)
        os.write(fd, b"\x11")
        assert gone_within(pid, 2.0, fd) < 2.0
    finally:
        os.close(fd)


# The app's process with two witnesses: an exit function, and an object whose finalizer only
# the interpreter's teardown would run (it clears the main module's names).
WITNESSED = """
import atexit, sys
def mark(line, path=sys.argv[1], open=open):
    with open(path, "a") as marks:
        marks.write(line + "\\n")
atexit.register(mark, "exit functions ran")
class Witness:
    def __del__(self, mark=mark):
        mark("teardown ran")
witness = Witness()
from tui.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def test_the_app_runs_its_exit_functions_then_ends_without_the_interpreters_teardown(demo_dir, tmp_path):
    """The teardown of torch and its kin takes 1–3 s after the exit functions: ctrl+q ends
    the process without it (`--help`, which never starts the app, shows both witnesses)."""
    helped = tmp_path / "help-marks"
    pid, fd = spawn(python=["-c", WITNESSED, str(helped), "--help"])
    try:
        assert wait_exit(pid, 60) == 0
    finally:
        os.close(fd)
    assert helped.read_text(encoding="utf-8").splitlines() == ["exit functions ran", "teardown ran"]

    marks = tmp_path / "app-marks"
    pid, fd = spawn(python=["-c", WITNESSED, str(marks), "--model", "demo"])
    try:
        wait_loaded(fd)
        os.write(fd, b"\x11")   # ctrl+q
        assert gone_within(pid, 2.0, fd) < 2.0
    finally:
        os.close(fd)
    assert marks.read_text(encoding="utf-8").splitlines() == ["exit functions ran"]
