"""Never destroy a user's file: every place a model is written follows one rule (a new folder,
an empty one, or one of our checkpoints), is refused before any work otherwise, keeps a user's
own files across re-saves, survives a full disk, and lets one writer in at a time."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.base.errors import SaveError, UserError
from core.base.safe_write import FolderLock, check_output_folder
from core.model.checkpoint import check_resumable, save_checkpoint, save_locked
from core.model.session import load_session
from tests.helpers import ROOT, run_cli, tree_digest, wait_for

CORPUS = "\n".join(f"Это строка номер {i}, в ней несколько русских слов." for i in range(60))


def user_folder(root: Path) -> Path:
    """A folder as a user has it: data, code, notes, a subfolder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.txt").write_text(CORPUS, encoding="utf-8")
    (root / "train.py").write_text("print('my code')\n")
    (root / "notes").mkdir()
    (root / "notes" / "ideas.md").write_text("# ideas\n")
    return root


def weights(session) -> dict:
    return {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def assert_weights(folder: Path, expected: dict) -> None:
    reloaded = load_session(str(folder), device="cpu")
    for name, tensor in reloaded.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def no_leftovers(folder: Path) -> list[str]:
    """Our temporary, old-copy and lock files beside a checkpoint folder."""
    return sorted(p.name for p in folder.parent.iterdir()
                  if p.name.startswith(f".{folder.name}."))


# -- the rule --------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["current folder", "home", "existing file", "folder of files"])
def test_train_refuses_an_unsafe_out_before_any_step(where, tmp_path, demo_dir):
    home = user_folder(tmp_path / "home")
    work = user_folder(home / "project")
    (work / "notes.txt").write_text("keep me\n")
    out = {"current folder": ".", "home": "~", "existing file": "notes.txt",
           "folder of files": "notes"}[where]
    before_home = tree_digest(home)
    result = run_cli("train", "--model", "demo", "--train", "data.txt", "--out", out, "--jsonl",
                     cwd=work, env={"HOME": str(home)})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""   # not a single event: refused before the data or the model
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rugpt-tui: error: --out {out}: ")
    assert tree_digest(home) == before_home


def test_the_rule_in_words(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output_folder("new/deeper") == tmp_path / "new" / "deeper"
    (tmp_path / "empty").mkdir()
    assert check_output_folder("empty") == tmp_path / "empty"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / ".hidden").write_text("x")
    with pytest.raises(UserError, match="not a rugpt-tui checkpoint"):
        check_output_folder("full")
    # somebody else's trainer_state.json (a Hugging Face Trainer folder) is not our marker
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    with pytest.raises(UserError, match=r"\(trainer_state.json\)"):
        check_output_folder("hf")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_output_folder("a-file/model")


def test_resave_keeps_the_users_files_and_replaces_only_ours(tmp_path, fresh_session):
    out = tmp_path / "ckpt"
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 1})
    (out / "README.md").write_text("my notes on this run\n")
    (out / "eval").mkdir()
    (out / "eval" / "scores.csv").write_text("a,b\n1,2\n")
    (out / "link-to-readme").symlink_to("README.md")
    users = {k: v for k, v in tree_digest(out).items() if k in ("README.md", "eval/scores.csv")}
    with torch.no_grad():
        for p in fresh_session.model.parameters():
            p.add_(0.5)
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 2})
    after = tree_digest(out)
    assert {k: after[k] for k in users} == users
    assert os.readlink(out / "link-to-readme") == "README.md"
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 2
    assert "README.md" not in json.loads((out / "trainer_state.json").read_text())["files"]
    assert_weights(out, weights(fresh_session))
    assert no_leftovers(out) == []


def test_demo_model_command_follows_the_rule(tmp_path):
    mine = user_folder(tmp_path / "mine")
    before = tree_digest(mine)
    refused = run_cli("demo-model", "--out", str(mine))
    assert refused.returncode == 2 and "not a rugpt-tui checkpoint" in refused.stderr
    assert tree_digest(mine) == before
    out = tmp_path / "demo-copy"
    assert run_cli("demo-model", "--out", str(out)).returncode == 0
    (out / "NOTES.md").write_text("mine\n")
    again = run_cli("demo-model", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "NOTES.md").read_text() == "mine\n"
    assert load_session(str(out), device="cpu").info.model_class == "GPT2LMHeadModel"


# -- saves that survive faults ---------------------------------------------------------------

def limit_file_size(limit: int):
    """In the child: writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored survives exec)."""
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_file_size_limit_mid_save_keeps_the_previous_checkpoint(tmp_path, fresh_session):
    out = tmp_path / "ckpt"
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 1})
    before = weights(fresh_session)
    (tmp_path / "train.txt").write_text(CORPUS, encoding="utf-8")
    # model.safetensors is ~1.2 MB: the save fails part-way through the new checkpoint
    result = run_cli("train", "--model", "demo", "--train", str(tmp_path / "train.txt"),
                     "--epochs", "1", "--block-size", "32", "--out", str(out), "--jsonl",
                     preexec_fn=limit_file_size(600_000))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"rugpt-tui: error: could not save {out}: the file size limit was reached "
                    f"writing {out}: previous checkpoint kept")
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["out"] is None
    assert_weights(out, before)
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 1
    assert no_leftovers(out) == []


def failing_writer(tokenizer, monkeypatch):
    """The tokenizer's writer runs out of disk after writing part of its files."""
    original = tokenizer.save_pretrained

    def no_space(folder, **kw):
        original(folder, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tokenizer, "save_pretrained", no_space)


def test_disk_full_is_one_line_and_the_old_checkpoint_stays(tmp_path, fresh_session, monkeypatch):
    out = tmp_path / "ckpt"
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 1})
    before = weights(fresh_session)
    with torch.no_grad():
        for p in fresh_session.model.parameters():
            p.mul_(2)
    failing_writer(fresh_session.tokenizer, monkeypatch)
    with pytest.raises(SaveError) as caught:
        save_locked(out, fresh_session.model, fresh_session.tokenizer, {"step": 2})
    assert str(caught.value) == f"could not save {out}: no space left on {tmp_path}: previous checkpoint kept"
    assert_weights(out, before)
    assert no_leftovers(out) == []
    with pytest.raises(SaveError, match="nothing was written"):
        save_locked(tmp_path / "new", fresh_session.model, fresh_session.tokenizer, {"step": 2})
    assert not (tmp_path / "new").exists() and no_leftovers(tmp_path / "new") == []


async def test_disk_full_in_the_app_is_a_notice_and_the_app_goes_on(tmp_path, fresh_session, monkeypatch):
    from textual.widgets import Input

    from tui.shell.app import RuGPTApp

    out = tmp_path / "ckpt"
    save_checkpoint(out, fresh_session.model, fresh_session.tokenizer, {"step": 1})
    before = tree_digest(out)
    failing_writer(fresh_session.tokenizer, monkeypatch)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45), notifications=True) as pilot:
        await pilot.press("f4")
        app.query_one("#train-out", Input).value = str(out)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("no space left" in str(n.message) for n in app._notifications))
        assert app.is_running
        await pilot.press("f2")           # still answering keys
        await pilot.pause()
    assert tree_digest(out) == before


async def test_the_train_pane_refuses_an_unsafe_folder_before_starting(tmp_path, fresh_session, monkeypatch):
    from textual.widgets import Input

    from tui.panes.train.pane import TrainPane
    from tui.shell.app import RuGPTApp

    work = user_folder(tmp_path / "project")
    monkeypatch.chdir(work)
    before = tree_digest(work)
    app = RuGPTApp(session=fresh_session)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f4")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: "samples" in str(app.query_one("#train-preview").render()))
        for unsafe in (".", "data.txt", "notes"):
            field = app.query_one("#train-out", Input)
            field.value = unsafe
            await pilot.pause()
            assert field.has_class("-invalid")
            await pilot.press("f8")
            await pilot.pause()
            assert pane.run is None
            assert f"output folder {unsafe}: " in str(app.query_one("#train-status").render())
            await pilot.press("ctrl+s")      # Save checkpoint: the same rule
            await pilot.pause(0.3)
        app.query_one("#train-out", Input).value = "fresh-model"
        await pilot.pause()
        assert not app.query_one("#train-out", Input).has_class("-invalid")
    assert tree_digest(work) == before


# -- one writer at a time --------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_is_refused(tmp_path, demo_dir):
    (tmp_path / "train.txt").write_text(CORPUS, encoding="utf-8")
    out = tmp_path / "model"
    first = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "train", "--model", "demo", "--train", str(tmp_path / "train.txt"),
         "--epochs", "500", "--block-size", "16", "--batch-size", "1", "--out", str(out), "--jsonl"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout:   # the first run is past its start: it holds the folder
            if '"event": "step"' in line:
                break
        second = run_cli("train", "--model", "demo", "--train", str(tmp_path / "train.txt"),
                         "--out", str(out), "--jsonl")
        assert second.returncode == 2
        assert second.stdout == ""
        assert second.stderr.strip() == (
            f"rugpt-tui: error: --out {out}: another rugpt-tui run is writing to this folder "
            f"(pid {first.pid}); wait for it or choose another folder")
        first.send_signal(signal.SIGINT)   # stop after this step and save
        first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0
    assert (out / "model.safetensors").exists()
    assert no_leftovers(out) == []   # the lock went with its run


def test_a_stale_lock_from_a_dead_run_is_taken_over(tmp_path):
    out = tmp_path / "model"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".model.lock").write_text(f"{dead.pid}\n")
    with FolderLock(out) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match=f"pid {os.getpid()}"):
            FolderLock(out).acquire()
    assert not lock.path.exists()


# -- resume only from a whole checkpoint -----------------------------------------------------

@pytest.fixture
def resumable(tmp_path, fresh_session):
    from core.training.config import TrainConfig, TrainControl
    from core.training.events import Step
    from core.training.loop import train

    (tmp_path / "train.txt").write_text(CORPUS, encoding="utf-8")
    out = tmp_path / "ckpt"
    steps = []
    train(fresh_session, TrainConfig(train=str(tmp_path / "train.txt"), epochs=3, block_size=16,
                                     batch_size=2, out=str(out), sample_tokens=2),
          on_event=lambda e: steps.append(e) if isinstance(e, Step) else None,
          control=TrainControl(cancelled=lambda: len(steps) >= 2))
    check_resumable(out)
    return tmp_path, out


@pytest.mark.parametrize("damage", ["truncated weights", "truncated state weights",
                                    "truncated optimizer", "no training_state"])
def test_resume_from_a_damaged_checkpoint_is_refused_and_changes_nothing(damage, resumable):
    import shutil

    folder, out = resumable
    if damage == "no training_state":
        shutil.rmtree(out / "training_state")
    else:
        name = {"truncated weights": "model.safetensors",
                "truncated state weights": "training_state/model.safetensors",
                "truncated optimizer": "training_state/optimizer.bin"}[damage]
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) * 2 // 3])
    before = tree_digest(folder)
    result = run_cli("train", "--model", "demo", "--train", str(folder / "train.txt"), "--block-size", "16",
                     "--out", str(out), "--resume", str(out), "--jsonl")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0], lines
    assert tree_digest(folder) == before
    assert no_leftovers(out) == []


# -- the demo model cache --------------------------------------------------------------------

BUILD = "from core.model.demo import demo_model_dir; print(demo_model_dir())"


def test_two_processes_building_the_demo_at_once_share_one_whole_copy(tmp_path):
    env = dict(os.environ, RUGPT_TUI_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", BUILD], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    folders = {out.strip() for out, _ in outputs}
    assert len(folders) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [Path(folders.pop()).name]
    load_session(str(next((tmp_path / "cache").iterdir())), device="cpu")


def test_a_half_written_demo_cache_is_rebuilt(tmp_path, monkeypatch):
    from core.model import demo

    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path))
    folder = demo.demo_model_dir()
    (folder / demo.COMPLETE_MARK).unlink()
    (folder / "model.safetensors").write_bytes(b"half")
    assert demo.demo_model_dir() == folder
    load_session(str(folder), device="cpu")


# -- file modes ------------------------------------------------------------------------------

def modes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)) or ".": oct(p.stat().st_mode & 0o777)
            for p in (folder, *folder.rglob("*")) if not p.is_symlink()}


def test_every_file_a_save_writes_follows_the_umask(tmp_path, monkeypatch):
    """On a shared machine a colleague reads a saved model like any other file: every file
    and folder of a run's save (its training state too), of a LoRA run, of `export`, of
    `demo-model` and of the demo's cache gets the user's umask (safetensors and mkdtemp make
    theirs private), and of the token cache. A file of the user's inside the folder keeps the
    mode it had."""
    from core.model.demo import demo_model_dir
    from tests.helpers import cli

    (tmp_path / "data.txt").write_text(CORPUS, encoding="utf-8")
    monkeypatch.setenv("RUGPT_TUI_CACHE", str(tmp_path / "cache"))
    old = os.umask(0o027)   # group may read, others nothing: not the usual 0o022
    try:
        run = cli("train", "--model", "demo", "--train", str(tmp_path / "data.txt"),
                  "--out", str(tmp_path / "run"), "--max-steps", "2")
        assert run.returncode == 0, run.stderr
        mine = tmp_path / "run" / "my-notes.txt"
        mine.write_text("private\n")
        mine.chmod(0o600)
        lora = cli("train", "--model", "demo", "--train", str(tmp_path / "data.txt"), "--lora",
                   "--out", str(tmp_path / "adapter"), "--max-steps", "2")
        assert lora.returncode == 0, lora.stderr
        again = cli("train", "--model", "demo", "--train", str(tmp_path / "data.txt"),
                    "--out", str(tmp_path / "run"), "--max-steps", "1")
        assert again.returncode == 0, again.stderr
        merged = cli("export", "--model", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged"))
        assert merged.returncode == 0, merged.stderr
        assert cli("demo-model", "--out", str(tmp_path / "demo")).returncode == 0
        cache = demo_model_dir()
        tokens = sorted(p for p in (tmp_path / "cache").rglob("meta.json") if p.parent != cache)
    finally:
        os.umask(old)
    assert (tmp_path / "run" / "training_state" / "model.safetensors").exists()
    assert tokens, "the run's tokens were not cached where the test looks"
    folders = [tmp_path / "run", tmp_path / "adapter", tmp_path / "merged", tmp_path / "demo", cache]
    for folder in folders + [meta.parent for meta in tokens]:
        seen = modes(folder)
        seen.pop("my-notes.txt", None)
        wrong = {name: mode for name, mode in seen.items()
                 if mode != oct(0o750 if (folder / name).is_dir() else 0o640)}
        assert not wrong, (folder.name, wrong)
    assert oct(mine.stat().st_mode & 0o777) == oct(0o600)
