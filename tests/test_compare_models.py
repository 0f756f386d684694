"""Compare models (palette): three models — the demo, a run's model, a run's LoRA adapter — side
by side: their held-out losses equal `rugpt-tui eval`'s, a second comparison takes them from
the workspace, and the same prompt and seed stream in a column each; snapshots at 80×24 and
120×40."""

import json
import shutil

import pytest
from textual.widgets import SelectionList, Static

from core.base.paths import corpus_path
from tests.helpers import cli, wait_for
from tui.shell.app import RuGPTApp
from tui.shell.models.compare import CompareScreen, CompareSetupScreen

DATA = "core/resources/corpus_ru.txt"   # the Train pane's default data, as the field shows it


@pytest.fixture(scope="module")
def three_models(tmp_path_factory, demo_dir):
    where = tmp_path_factory.mktemp("compare")
    data = where / "data.txt"
    data.write_text("\n".join(f"Кот спал на окне номер {i}." for i in range(40)), encoding="utf-8")
    home = where / "home"
    for extra, out in (([], "full"), (["--lora"], "adapter")):
        done = cli("train", "--model", "demo", "--train", str(data), "--max-steps", "3", "--seed", "5",
                   "--out", str(where / out), *extra, env={"RUGPT_TUI_HOME": str(home)})
        assert done.returncode == 0, done.stderr
    return home, where / "full", where / "adapter"


@pytest.fixture
def workspace(three_models, tmp_path, monkeypatch):
    """A copy of the workspace that recorded the runs: scores one test keeps stay its own."""
    home = tmp_path / "home"
    shutil.copytree(three_models[0], home)
    monkeypatch.setenv("RUGPT_TUI_HOME", str(home))
    return three_models


async def compare_all(pilot):
    app = pilot.app
    await pilot.pause()
    app.action_compare_models()
    await wait_for(pilot, lambda: isinstance(app.screen, CompareSetupScreen) and app.screen.choices)
    setup = app.screen
    listing = setup.query_one("#cmp-models", SelectionList)
    for value in range(3):   # the demo, then the runs, newest first
        listing.select(value)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
    screen = app.screen
    await wait_for(pilot, lambda: all("·" in line for line in screen.lines), timeout=120)
    return screen


def texts_done(screen):
    return all(len(str(screen.query_one(f"#cmp-text-{i}", Static).render())) > len(screen.request.prompt)
               for i in range(3))


async def test_losses_equal_eval_and_are_kept(workspace, demo_dir):
    _, full, adapter = workspace
    app = RuGPTApp(model="demo", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        screen = await compare_all(pilot)
        names = [c.trained or c.name for c in screen.request.choices]
        assert names == ["demo", str(adapter), str(full)]
        await wait_for(pilot, lambda: texts_done(screen), timeout=60)
        shown = [float(line.split(" · ")[0]) for line in screen.lines]
        await pilot.press("escape")
        again = await compare_all(pilot)
        assert all(line.endswith("(kept)") for line in again.lines)
    evaluated = json.loads(cli("eval", "--model", "demo", "--model", str(adapter), "--model", str(full),
                               "--data", str(corpus_path()), "--json").stdout)
    assert shown == pytest.approx([m["loss"] for m in evaluated["models"]], abs=1e-4)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_compare_snapshot(snap_compare, frozen_figures, workspace, demo_dir, size):
    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.session is not None, timeout=60)
        screen = await compare_all(pilot)
        await wait_for(pilot, lambda: texts_done(screen) and not screen.workers, timeout=60)
        await pilot.pause(0.3)
    assert snap_compare(RuGPTApp(model="demo", device="cpu"), terminal_size=size, run_before=run_before)


async def test_two_ticked_runs_say_how_they_differ(workspace):
    """Two runs ticked in the Train pane's list: the settings they differ in, and whether they
    read the same data, in the pane's log (here: one LoRA run, one full, on the same file)."""
    from textual.widgets import RichLog

    from core.store.database import Store
    from core.store.run_diff import runs_difference

    store = Store.open()
    first, second = (store.run(r["id"]) for r in sorted(store.runs(), key=lambda r: r["id"]))
    line = runs_difference(first, second)
    assert line.startswith(f"run #{first['id']} vs #{second['id']}: ")
    assert "lora False → True" in line and line.endswith("; the same data")
    assert "out " not in line   # where a run saves is not a setting it trained with
    app = RuGPTApp(model="demo", device="cpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None, timeout=60)
        await pilot.press("f4")
        runs = app.query_one("#train-runs", SelectionList)
        await wait_for(pilot, lambda: runs.option_count == 2)
        runs.select(first["id"])
        runs.select(second["id"])
        log = app.query_one("#train-log", RichLog)
        def logged() -> str:   # the log wraps long lines: compare without the spaces
            return "".join(strip.text for strip in log.lines).replace(" ", "")

        await wait_for(pilot, lambda: line.replace(" ", "") in logged())
