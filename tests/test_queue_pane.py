"""The queue from the Train pane: F8 while a run goes queues the next run, which the
headless runner starts when that run ends — and finishes after the app has quit or its
terminal hung up; a field typed with several values queues a sweep; the Queue window
(ctrl+u) reorders, removes and pauses, and sees what another process changes."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import Input, OptionList

from core.queue.items import RunQueue
from core.queue.runner import runner_pid
from core.store.database import Store
from core.store.workspace import settings_path
from tests.helpers import start_unsaved_run, wait_for
from tests.test_hangup import spawn, wait_exit, wait_loaded
from tui.panes.train.queue_view import QueueScreen
from tui.shell.app import RuGPTApp

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "core/resources/corpus_ru.txt"


def queue() -> RunQueue:
    return RunQueue(Store.open())


def cli(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def wait_until_the_runner_is_done(timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while queue().items() or runner_pid() is not None:
        assert time.monotonic() < end, f"the queue still holds {queue().items()}"
        time.sleep(0.5)


def runs_oldest_first() -> list[dict]:
    return json.loads(cli("runs", "--json").stdout)[::-1]


async def test_f8_while_a_run_goes_queues_the_next_which_outlives_the_app(fresh_session, tmp_path):
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await start_unsaved_run(pilot, "50")              # the app's run: long
        app.query_one("#train-epochs", Input).value = "0.2"
        app.query_one("#train-out", Input).value = str(tmp_path / "queued")
        await pilot.press("f8")                                  # while it trains: queued
        await wait_for(pilot, lambda: len(queue().items()) == 1)
        assert pane.training and queue().items()[0].state == "waiting"
        assert runner_pid() is not None                          # started, and waiting its turn
        assert any("queued the run" in n.message for n in app._notifications)
        await pilot.press("f9")                                  # the app's run ends…
        await wait_for(pilot, lambda: not pane.training, timeout=60)
        # …and the runner starts the queued one
        await wait_for(pilot, lambda: [i.state for i in queue().items()] == ["running"], timeout=60)
        await pilot.press("ctrl+q")
    wait_until_the_runner_is_done()
    first, second = runs_oldest_first()
    assert first["status"] == "cancel" and first["out"] is None
    assert second["status"] == "done" and second["out"] == str(tmp_path / "queued")
    assert json.loads((tmp_path / "queued" / "trainer_state.json").read_text())["config"]["epochs"] == 0.2


async def test_a_sweep_typed_in_fields_is_queued_and_the_queue_window_edits_it(demo_session, tmp_path):
    queue().pause()                                   # nothing trains in this test
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-lr", Input).value = "1e-3, abc"
        await pilot.press("f8")
        await wait_for(pilot, lambda: any("lr" in n.message and "abc" in n.message
                                          for n in app._notifications))
        assert queue().items() == []                  # a bad value queues nothing
        app.query_one("#train-lr", Input).value = "1e-3, 3e-3"
        app.query_one("#train-batch-size", Input).value = "4,8"
        app.query_one("#train-out", Input).value = str(tmp_path / "sweep")
        await pilot.press("f8")
        await wait_for(pilot, lambda: len(queue().items()) == 4)
        items = queue().items()
        assert [(i.config["lr"], i.config["batch_size"]) for i in items] == [
            (1e-3, 4), (1e-3, 8), (3e-3, 4), (3e-3, 8)]
        assert [i.config["out"] for i in items] == [
            str(tmp_path / "sweep" / f"lr={lr},batch_size={b}") for lr in ("1e-3", "3e-3") for b in (4, 8)]
        assert len({i.sweep for i in items}) == 1 and items[0].sweep is not None

        await pilot.press("ctrl+u")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        window = app.screen
        listing = window.query_one("#queue-items", OptionList)
        await wait_for(pilot, lambda: listing.option_count == 4)
        table = str(window.query_one("#queue-sweep").render())
        assert "lr" in table and "batch_size" in table and table.count("paused") == 4
        first = items[0].id
        await pilot.press("plus")                     # later by one
        assert [i.id for i in queue().items()][1] == first
        await pilot.press("x")                        # the highlighted one (it moved with it)
        await wait_for(pilot, lambda: first not in [i.id for i in queue().items()])
        other = queue().items()[-1].id
        cli("queue", "--remove", str(other))          # another process edits the same queue
        await wait_for(pilot, lambda: listing.option_count == 2, timeout=10)
        cli("queue", "--clear")
        await wait_for(pilot, lambda: listing.option_count == 0, timeout=10)
        await pilot.press("p")                        # resume: nothing left to start
        assert not queue().paused()
        await pilot.press("p")                        # pause after the current run
        assert queue().paused()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QueueScreen))
    queue().resume()


def seen_on_screen(fd: int, text: bytes, timeout: float = 60) -> None:
    """Read the app's terminal until `text` has been drawn; fails after `timeout` seconds."""
    import select

    seen, end = b"", time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < end, f"{text!r} never drawn"
        if select.select([fd], [], [], 0.2)[0]:
            seen = (seen + os.read(fd, 1 << 16))[-100_000:]


def test_the_runner_the_app_started_finishes_after_its_terminal_hangs_up(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("".join(CORPUS.read_text(encoding="utf-8").splitlines(True)[:200]), encoding="utf-8")
    out = tmp_path / "after-hangup"
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(f'model = "demo"\n[train.demo]\nepochs = 2.0\n'
                               f'[data]\ntrain = "{small}"\nout = "{out}"\n', encoding="utf-8")
    pid, fd = spawn("--model", "demo")
    try:
        wait_loaded(fd)
        os.write(fd, b"\x1bOS")                       # F4
        os.write(fd, b"\x10")                         # ctrl+p: the palette
        seen_on_screen(fd, b"Search for commands")
        os.write(fd, b"Queue this run")
        seen_on_screen(fd, b"a headless runner")      # the command, found (its help line)
        os.write(fd, b"\r")
        end = time.monotonic() + 60
        while not queue().items() and not runs_oldest_first():
            assert time.monotonic() < end, "nothing was queued"
            time.sleep(0.2)
    finally:
        os.close(fd)                                  # the terminal goes away: SIGHUP
    assert wait_exit(pid) is not None
    wait_until_the_runner_is_done()
    (run,) = runs_oldest_first()
    assert run["status"] == "done" and run["out"] == str(out)


async def test_c_in_the_queue_window_compares_the_sweeps_best_runs(demo_session, tmp_path):
    from tui.shell.models.compare import CompareSetupScreen

    cli("train", "--model", "demo", "--train", str(CORPUS), "--max-steps", "3",
        "--sweep", "lr=1e-3,3e-3,1e-2", "--out", str(tmp_path / "sweep"))
    wait_until_the_runner_is_done()
    rows = json.loads(cli("runs", "--sweep", "1", "--json").stdout)
    assert [row["status"] for row in rows] == ["done"] * 3
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        # nobody watched the queue's runs end: the app says so when it starts
        await wait_for(pilot, lambda: sum("finished while you were away" in n.message
                                          for n in app._notifications) == 3)
        await pilot.press("f4", "ctrl+u")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        await wait_for(pilot, lambda: "sweep 1" in str(app.screen.query_one("#queue-sweep").render()))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareSetupScreen))
        setup = app.screen
        await wait_for(pilot, lambda: len(setup.choices) >= 3)
        ticked = [setup.choices[i].run_id for i in setup.query_one("#cmp-models").selected]
        assert sorted(ticked) == sorted(row["run"] for row in rows)   # three runs: all of them
        await pilot.press("escape")
