"""The workspace: settings that outlive the app, a history and runs that survive restarts,
kills and a second instance, and the `history` / `runs` commands."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from core.base.errors import UserError
from core.base.settings import DEFAULT_THEME
from core.store.database import Store
from core.store.workspace import (
    SavedSettings,
    database_path,
    load_settings,
    peek_settings,
    save_settings,
    settings_path,
)
from tests.helpers import ROOT, cli, wait_for


def test_settings_round_trip_and_only_settings_are_written(workspace_home):
    saved = SavedSettings(model="demo", theme="nord", generate={"top_k": 7, "seed": 3},
                          train={"demo": {"epochs": 3.0, "pack": False}}, data={"train": "x.txt"})
    assert save_settings(saved) is True
    assert save_settings(saved) is False          # unchanged: not written again
    loaded, problem = load_settings()
    assert problem is None and loaded == saved
    assert sorted(p.name for p in workspace_home.iterdir()) == ["settings.toml"]


@pytest.mark.parametrize("text, names", [
    ("model = \"demo\"\n[generate\ntop_k = 5\n", "line 2"),
    ("[generate]\ntop_k = -3\n", "generate.top_k"),
    ("[train.demo]\nlr = \"fast\"\n", "lr"),
    ("device = \"tpu\"\n", "device"),
])
def test_a_broken_settings_file_is_kept_aside_and_defaults_are_used(workspace_home, text, names):
    path = settings_path()
    path.write_text(text, encoding="utf-8")
    (workspace_home / "settings.toml.bad").write_bytes(b"an older broken file")
    loaded, problem = load_settings()
    assert loaded == SavedSettings()
    assert names in problem and "settings.toml.bad.1" in problem and "\n" not in problem
    assert (workspace_home / "settings.toml.bad.1").read_text(encoding="utf-8") == text
    assert (workspace_home / "settings.toml.bad").read_bytes() == b"an older broken file"
    assert not path.exists()


def test_peeking_at_the_settings_reads_only(workspace_home):
    """What the command reads before the app starts (its early first frame): a broken file
    stays where it is for the app to report and move aside."""
    assert peek_settings() == SavedSettings()                 # no file yet: the defaults
    save_settings(SavedSettings(model="demo", theme="nord"))
    peeked = peek_settings()
    assert peeked.starting_model(None) == "demo" and peeked.starting_model("gpt2") == "gpt2"
    assert peeked.starting_theme(None) == "nord"              # the app's themes not known yet
    assert peeked.starting_theme({"textual-dark"}) == DEFAULT_THEME   # not one the app has
    path = settings_path()
    path.write_text("[broken", encoding="utf-8")
    assert peek_settings() is None
    assert sorted(p.name for p in workspace_home.iterdir()) == ["settings.toml"]
    assert path.read_text(encoding="utf-8") == "[broken"


def test_a_broken_file_that_cannot_be_moved_is_never_overwritten(workspace_home):
    """The move aside fails — here because the aside name (`<name>.bad`) is longer than any
    file system allows, which stops root as much as anyone, unlike a read-only folder —
    so the broken file stays where it is, is said to, and is never written over."""
    path = workspace_home / ("s" * 250 + ".toml")   # 255 bytes: the most a name can have
    path.write_text("[broken", encoding="utf-8")
    _, problem = load_settings(path)
    assert "left in place" in problem
    assert save_settings(SavedSettings(model="demo"), path) is False
    assert path.read_text(encoding="utf-8") == "[broken"
    assert sorted(p.name for p in workspace_home.iterdir()) == [path.name]


def test_cli_history_and_runs(tmp_path, capsys):
    Store.open().add_generation("demo", "Кот", " спал", 3, {"top_k": 50}, 1, 10.0, "length")
    assert cli("generate", "--model", "demo", "--prompt", "СОБАКА и кот", "--max-new-tokens", "4",
                   "--seed", "5").returncode == 0
    history = json.loads(cli("history", "--json").stdout)
    assert [h["prompt"] for h in history] == ["СОБАКА и кот", "Кот"]   # newest first
    entry = history[0]
    assert set(entry) >= {"time", "model", "prompt", "text", "seed", "settings"}
    assert entry["model"] == "demo" and entry["seed"] == 5 and entry["settings"]["top_k"] == 50
    assert "T" in entry["time"]
    found = json.loads(cli("history", "--json", "--search", "собака").stdout)
    assert [h["prompt"] for h in found] == ["СОБАКА и кот"]           # any case, Cyrillic too

    out = tmp_path / "model"
    train = cli("train", "--model", "demo", "--train", str(ROOT / "core/resources/corpus_ru.txt"),
                    "--max-steps", "3", "--out", str(out), "--jsonl")
    assert train.returncode == 0, train.stderr
    runs = json.loads(cli("runs", "--json").stdout)
    assert len(runs) == 1
    run = runs[0]
    assert set(run) >= {"id", "time", "model", "train", "steps", "eval_loss", "status", "out"}
    assert run["steps"] == 3 and run["status"] == "done" and run["out"] == str(out)
    assert run["eval_loss"] == json.loads(train.stdout.splitlines()[-1])["eval_loss"]
    store = Store.open()
    steps, evals = store.curves(run["id"])
    assert [s for s, _ in steps] == [1, 2, 3] and evals[0][0] == 0   # the step-0 eval too
    from tui.cli.main import main

    assert main(["runs"]) == 0 and "3 steps" in capsys.readouterr().out   # the table, in-process


def committed_steps() -> int:
    """Steps of the newest run that another process has committed to the workspace."""
    if not database_path().exists():
        return 0
    store = Store.open()
    try:
        runs = store.runs(limit=1)
        return len(store.curves(runs[0]["id"])[0]) if runs else 0
    finally:
        store.close()


def test_a_run_killed_mid_way_keeps_its_steps(tmp_path):
    corpus = ROOT / "core/resources/corpus_ru.txt"
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train",
                             str(corpus), "--epochs", "200", "--jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    seen, first_at = 0, None
    try:
        for line in proc.stdout:
            if '"event": "step"' in line:
                seen = json.loads(line)["step"]
                first_at = first_at or time.monotonic()
                if time.monotonic() - first_at > 2.5:
                    break
        kept_by_now = seen
        # steps are committed at least once a second: wait until they are in, then kill
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and committed_steps() < kept_by_now:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    runs = json.loads(cli("runs", "--json").stdout)
    assert runs[0]["status"] == "killed"     # its process is gone without an end
    steps, evals = Store.open().curves(runs[0]["id"])
    assert len(steps) >= kept_by_now > 0 and evals[0][0] == 0
    check = sqlite3.connect(database_path()).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"


WRITER = """
import sys
from core.store.database import Store
store = Store.open()
for i in range(150):
    store.add_generation("demo", f"{sys.argv[1]} {i}", "текст", i, {"top_k": 50}, 1, 1.0, "length")
"""


def test_two_instances_write_at_once():
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name], cwd=ROOT) for name in ("a", "b")]
    reader = Store.open()
    while any(w.poll() is None for w in writers):
        reader.history(limit=10)          # reading meanwhile never fails or blocks for long
    assert [w.returncode for w in writers] == [0, 0]
    rows = reader.history(limit=1000)
    assert len(rows) == 300
    assert {r["prompt"] for r in rows} == {f"{n} {i}" for n in "ab" for i in range(150)}
    check = sqlite3.connect(database_path()).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"


def test_a_database_from_a_newer_version_is_left_alone(workspace_home):
    Store.open().close()
    db = sqlite3.connect(database_path())
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = database_path().read_bytes()
    with pytest.raises(UserError, match="newer rugpt-tui"):
        Store.open()
    assert database_path().read_bytes() == before


async def test_the_app_remembers_settings_runs_and_history(fresh_session, demo_session):
    """Change settings, generate, train; quit; a new app on the same workspace shows them."""
    from textual.widgets import Input, SelectionList, TextArea

    from tui.shell.app import RuGPTApp

    app = RuGPTApp(session=fresh_session)   # it trains: not the shared read-only session
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        app.query_one("#gen-top-k", Input).value = "7"
        app.query_one("#gen-max-new-tokens", Input).value = "5"
        app.query_one("#gen-seed", Input).value = "11"
        prompt = app.query_one("#gen-prompt", TextArea)
        prompt.load_text("Кот спал")
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.generate_pane.run is not None
                       and app.generate_pane.run.done is not None)
        await pilot.press("f4")
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        app.query_one("#train-out", Input).value = ""
        app.query_one("#train-epochs", Input).value = "0.3"
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.train_pane.run is not None and not app.train_pane.training,
                       timeout=60)
        steps = app.train_pane.run.result.steps
        await pilot.press("ctrl+q")
    saved, problem = load_settings()
    assert problem is None and saved.generate == {"top_k": 7, "max_new_tokens": 5, "seed": 11}
    assert saved.train["demo"] == {"epochs": 0.3} and saved.model == "demo"

    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.query_one("#gen-top-k", Input).value == "7"
        await wait_for(pilot, lambda: app.query_one("#train-epochs", Input).value == "0.3")
        runs = app.query_one("#train-runs", SelectionList)
        assert runs.option_count == 1 and f"{steps} steps" in str(runs.get_option_at_index(0).prompt)
        await pilot.press("f4")
        await wait_for(pilot, lambda: "run #" in app.query_one("#train-chart").border_title)
        app.query_one("#gen-seed", Input).value = ""
        prompt = app.query_one("#gen-prompt", TextArea)
        prompt.load_text("другое")
        await pilot.press("ctrl+r")
        await pilot.pause(0.3)
        await pilot.press(*"кот", "enter")
        await wait_for(pilot, lambda: prompt.text == "Кот спал")
        assert app.query_one("#gen-seed", Input).value == "11"


async def test_the_app_says_a_settings_file_is_broken_and_keeps_it(demo_session, workspace_home):
    from tui.shell.app import RuGPTApp

    settings_path().write_text("[generate]\ntop_p = 7\n", encoding="utf-8")
    app = RuGPTApp(session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        notice = str(app.query_one("#notice").render())
        assert "settings.toml" in notice and "top_p" in notice and "defaults" in notice
        assert app.query_one("#gen-top-p").value == "0.95"   # the defaults, and the app works
        await pilot.press("f3", "f5")
        await wait_for(pilot, lambda: app.generate_pane.run is not None
                       and app.generate_pane.run.done is not None)
    assert (workspace_home / "settings.toml.bad").read_text(encoding="utf-8") == "[generate]\ntop_p = 7\n"
