"""Each run keeps its model: the Train pane gives every run a folder of its own, says whose
model a chosen folder holds before F8 replaces it, and the workspace records a replaced
model (`replaced_by`). A start that is refused records no run."""

import json
from pathlib import Path

from textual.widgets import Input

from core.store.database import Store
from core.store.workspace import runs_dir
from tests.helpers import ROOT, cli, tree_digest, wait_for
from tui.panes.train.pane import TrainPane
from tui.shell.app import RuGPTApp

CORPUS = ROOT / "core" / "resources" / "corpus_ru.txt"


async def run_once(pilot, epochs="0.3"):
    app = pilot.app
    pane = app.query_one(TrainPane)
    app.query_one("#train-epochs", Input).value = epochs
    await pilot.press("f8")
    await wait_for(pilot, lambda: pane.run is not None and pane.run.result is not None
                   and pane.run.result.out is not None, timeout=90)
    await pilot.pause(0.3)
    return pane.run


async def test_two_runs_in_a_row_keep_two_models(fresh_session, tmp_path, monkeypatch):
    """Runs save under the workspace's runs folder by default, not into the folder the app
    was started in, each into a folder of its own."""
    monkeypatch.chdir(tmp_path)
    runs = runs_dir()
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        out = app.query_one("#train-out", Input)
        assert out.value == str(runs / "rugpt-finetuned")
        first = await run_once(pilot)
        assert first.result.out == str(runs / "rugpt-finetuned")
        assert out.value == str(runs / "rugpt-finetuned-2")
        kept = tree_digest(runs / "rugpt-finetuned")
        second = await run_once(pilot)
        assert second.result.out == str(runs / "rugpt-finetuned-2")
        assert out.value == str(runs / "rugpt-finetuned-3")
        assert tree_digest(runs / "rugpt-finetuned") == kept   # byte for byte
        # a new app starts on the next free name as well
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        assert app.query_one("#train-out", Input).value == str(runs / "rugpt-finetuned-3")
    recorded = json.loads(cli("runs", "--json").stdout)
    assert [r["out"] for r in recorded] == [str(runs / "rugpt-finetuned-2"), str(runs / "rugpt-finetuned")]
    assert [r["replaced_by"] for r in recorded] == [None, None]
    assert list(tmp_path.iterdir()) == []   # nothing in the folder the app was started in


async def test_a_default_remembered_by_an_older_version_moves_to_the_runs_folder(demo_session, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        app.train_pane.form.restore_paths({"out": "rugpt-finetuned-2"})
        await pilot.pause()
        assert app.query_one("#train-out", Input).value == str(runs_dir() / "rugpt-finetuned")
        app.train_pane.form.restore_paths({"out": "my-model"})   # the user's own name stays
        await pilot.pause()
        assert app.query_one("#train-out", Input).value == "my-model"


async def test_a_folder_holding_a_runs_model_is_named_before_f8_replaces_it(fresh_session, tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        first = await run_once(pilot)
        app.query_one("#train-out", Input).value = str(runs_dir() / "rugpt-finetuned")   # chosen again
        status = app.query_one("#train-status")
        await wait_for(pilot, lambda: "holds run #" in str(status.render()))
        assert str(status.render()) == (f"output folder holds run #{first.number}'s model, "
                                        f"eval {first.result.eval_loss:.3f}: F8 replaces it")
        second = await run_once(pilot)
        assert second.result.out == str(runs_dir() / "rugpt-finetuned")
        toasts = " ".join(n.message for n in app._notifications)
        assert f"replace the model of run #{first.number}" in toasts
    runs = {r["id"]: r for r in json.loads(cli("runs", "--json").stdout)}
    assert runs[first.number]["replaced_by"] == second.number
    assert runs[second.number]["replaced_by"] is None


def test_the_cli_records_a_model_it_replaces(demo_dir, tmp_path):
    out = tmp_path / "model"
    for _ in range(2):
        done = cli("train", "--model", "demo", "--train", str(CORPUS), "--max-steps", "2",
                   "--out", str(out))
        assert done.returncode == 0, done.stderr
    second, first = json.loads(cli("runs", "--json").stdout)
    assert first["out"] == second["out"] == str(out)
    assert first["replaced_by"] == second["id"] and second["replaced_by"] is None
    assert f"(replaced there by run #{second['id']})" in cli("runs").stdout


async def test_a_refused_start_records_no_run(demo_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ок"}\n{"input": \n', encoding="utf-8")
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        data = app.query_one("#train-data", Input)
        app.query_one("#train-out", Input).value = ""
        for value in ("", "   ", str(tmp_path / "missing.txt")):
            data.value = value
            await pilot.press("f8")
            await pilot.pause(0.2)
            assert app.train_pane.run is None
        data.value = str(bad)   # found bad only when read: the run starts, then is refused
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.train_pane.run is not None and not app.train_pane.training)
        assert "bad.jsonl:2" in app.train_pane.run.error
    assert Store.open().runs() == []
    done = cli("train", "--model", "demo", "--train", str(bad))
    assert done.returncode == 2 and "bad.jsonl:2" in done.stderr
    assert Store.open().runs() == []
    assert not Path("rugpt-finetuned").exists()


async def test_at_80x24_the_output_field_shows_the_end_of_its_path(demo_session):
    """The default folder is longer than the field at 80 columns: its end — the name that
    tells runs apart — is what shows, not the path's start."""
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        field = app.query_one("#train-out", Input)
        await wait_for(pilot, lambda: field.value.endswith("rugpt-finetuned") and field.size.width > 0)
        await pilot.pause(0.3)
        assert len(field.value) > field.content_size.width   # it does not fit
        shown = field.value[field.scroll_offset.x: field.scroll_offset.x + field.content_size.width]
        assert shown.rstrip().endswith("rugpt-finetuned")


async def test_a_default_folder_another_app_started_writing_to_is_not_taken(fresh_session, tmp_path,
                                                                              monkeypatch):
    """Two apps on one workspace show the same free default folder; the one whose F8 comes
    second gets the next free folder when its run starts, instead of being refused because
    the other app's run is writing there. The other app is a real one: a CLI run in its own
    process, holding the folder's lock and recorded as running in the shared workspace."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        shown = app.query_one("#train-out", Input).value
        other = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train", str(CORPUS),
             "--epochs", "50", "--out", str(Path(shown).expanduser()), "--jsonl"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            for line in other.stdout:   # its events, until it trains (or ends: it failed)
                if '"event": "step"' in line:
                    break
            else:
                raise AssertionError("the other run never trained")
            assert [r["status"] for r in Store.open().runs()] == ["running"]
            pane = app.query_one(TrainPane)
            app.query_one("#train-epochs", Input).value = "0.1"
            await pilot.press("f8")
            await wait_for(pilot, lambda: pane.run is not None, timeout=30)
            assert pane.run.config.out is not None
            assert Path(pane.run.config.out).resolve() != Path(shown).expanduser().resolve()
            await wait_for(pilot, lambda: pane.run.result is not None, timeout=90)
            assert pane.run.result.stop_reason == "done" and pane.run.error is None
        finally:
            other.kill()
            other.wait()
