"""The model picker behind "Load model": the demo, a model in the Hugging Face cache (a cache
built here, as the hub client lays it out), runs' saved models and adapters — each loaded
from the picker in the real app; a broken folder leaves the loaded model in place; a run in
the Train pane's list loads with `l`."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from textual.widgets import Input, OptionList

from core.model.session import load_session
from core.store.catalog import model_choices
from core.store.database import Store
from tests.helpers import cli, wait_for
from tui.shell.app import RuGPTApp
from tui.shell.models.picker import ModelPickerScreen

REPO = "tiny-org/picker-gpt"


def fake_hub_cache(model_dir: Path) -> Path:
    """`model_dir`'s files as the hub client caches a download: blobs named by their hash,
    a snapshot of links to them, and refs/main naming the snapshot."""
    import huggingface_hub.constants

    root = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{REPO.replace('/', '--')}"
    shutil.rmtree(root, ignore_errors=True)
    commit = "0" * 39 + "1"
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for f in model_dir.iterdir():
        if f.is_file() and not f.name.startswith("."):
            blob = root / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
            shutil.copyfile(f, blob)
            os.symlink(os.path.relpath(blob, snapshot), snapshot / f.name)
    return root


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory, demo_dir):
    """A full run's model and a LoRA adapter, saved by `train` and recorded in a workspace."""
    where = tmp_path_factory.mktemp("runs")
    data = where / "data.txt"
    data.write_text("\n".join(f"Кот спал на окне номер {i}." for i in range(40)), encoding="utf-8")
    home = where / "home"
    env = {"RUGPT_TUI_HOME": str(home)}
    for extra, out in (([], "full"), (["--lora"], "adapter")):
        done = cli("train", "--model", "demo", "--train", str(data), "--max-steps", "3",
                   "--out", str(where / out), *extra, env=env)
        assert done.returncode == 0, done.stderr
    return home, where / "full", where / "adapter"


def test_the_catalog_lists_the_demo_runs_adapters_and_the_cache(saved_runs, demo_dir, monkeypatch):
    home, full, adapter = saved_runs
    monkeypatch.setenv("RUGPT_TUI_HOME", str(home))
    fake_hub_cache(demo_dir)
    choices = model_choices(Store.open())
    kinds = {(c.kind, c.trained or c.name) for c in choices}
    assert ("demo", "demo") in kinds and ("cache", REPO) in kinds
    assert ("run", str(full)) in kinds and ("run", str(adapter)) in kinds
    labels = {c.trained: c.label for c in choices if c.kind == "run"}
    assert "adapter on demo" in labels[str(adapter)] and "adapter" not in labels[str(full)]
    assert "3 steps" in labels[str(full)]
    cached = next(c for c in choices if c.kind == "cache")
    assert "in the cache" in cached.label and ("KB" in cached.label or "M" in cached.label)


async def pick(pilot, typed: str):
    """ctrl+p → Load model → type → Enter on the first match."""
    app = pilot.app
    app.action_load_model()
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
    picker = app.screen
    await wait_for(pilot, lambda: picker.choices)
    picker.query_one("#picker-input", Input).focus()
    await pilot.press(*typed)
    await pilot.pause()
    return picker


async def test_each_kind_loads_from_the_picker_and_a_broken_folder_changes_nothing(
        saved_runs, demo_dir, tmp_path, monkeypatch):
    home, full, adapter = saved_runs
    monkeypatch.setenv("RUGPT_TUI_HOME", str(home))
    fake_hub_cache(demo_dir)
    app = RuGPTApp(session=load_session("demo", device="cpu"))
    async with app.run_test(size=(80, 24)) as pilot:
        picker = await pick(pilot, "picker-gpt")
        assert picker.query_one("#picker-list", OptionList).option_count == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None and app.session.info.model == REPO, timeout=60)

        await pick(pilot, "run #")
        listing = app.screen.query_one("#picker-list", OptionList)
        assert listing.option_count == 2
        labels = [str(listing.get_option_at_index(i).prompt) for i in range(2)]
        full_at = next(i for i, label in enumerate(labels) if str(full) in label)
        await pilot.press("down", *["down"] * full_at, "enter")
        expected = load_session(str(full), device="cpu").model.state_dict()
        await wait_for(pilot, lambda: app.session is not None and app.session.info.model == "demo"
                       and torch.equal(app.session.model.state_dict()["lm_head.weight"],
                                       expected["lm_head.weight"]), timeout=60)

        await pick(pilot, "adapter on demo")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None and app.session.adapter is not None, timeout=60)
        loaded = app.session

        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "config.json").write_text("{ not json", encoding="utf-8")
        await pick(pilot, str(broken))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.load_error is not None, timeout=60)
        assert app.session is loaded   # the loaded model stays
        assert str(broken) in app.load_error
        assert "still on" in str(app.query_one("#model-status").render())


async def test_a_run_in_the_train_list_loads_with_one_key(saved_runs, monkeypatch):
    home, full, _ = saved_runs
    monkeypatch.setenv("RUGPT_TUI_HOME", str(home))
    number = next(r["id"] for r in Store.open().runs() if r["out"] == str(full))
    expected = load_session(str(full), device="cpu").model.state_dict()["lm_head.weight"]
    app = RuGPTApp(session=load_session("demo", device="cpu"))
    before = app.session
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        runs = app.query_one("#train-runs", OptionList)
        await wait_for(pilot, lambda: runs.option_count == 2)
        runs.focus()
        runs.highlighted = next(i for i in range(2) if runs.get_option_at_index(i).value == number)
        await pilot.press("l")
        await wait_for(pilot, lambda: app.session is not before and app.session is not None
                       and torch.equal(app.session.model.state_dict()["lm_head.weight"], expected),
                       timeout=60)
