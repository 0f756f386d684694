"""Shared fixtures. No test downloads anything: the hub is switched off and the demo model
is built locally into a temporary cache."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# The tests' models are tiny: one thread each, so the test processes (and the ones they
# start) share the cores instead of fighting over them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RUGPT_TUI_CACHE", tempfile.mkdtemp(prefix="rugpt-tui-test-cache-"))
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="rugpt-tui-test-hf-")   # datasets' caches too
# Never the real home: settings and the workspace database go to a temporary folder (and
# to a fresh one per test, below).
os.environ["RUGPT_TUI_HOME"] = tempfile.mkdtemp(prefix="rugpt-tui-test-home-")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def workspace_home(tmp_path_factory, monkeypatch):
    """Each test starts with no settings and an empty history: what one test saves never
    changes another."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RUGPT_TUI_HOME", str(home))
    yield home
    stop_queue_runner()


def stop_queue_runner(timeout: float = 60) -> None:
    """A runner a test's queue started (F8 during a run, say) stops with its test, its run
    saved and stopped: no run of one test trains on into the next ones."""
    import signal
    import time

    from core.base.errors import UserError
    from core.queue.items import RunQueue
    from core.queue.runner import runner_pid
    from core.store.database import Store
    from core.store.workspace import database_path

    if database_path().exists():
        try:   # a runner still starting up finds the queue paused
            RunQueue(Store.open()).pause()
        except UserError:   # a workspace the test made unusable holds no queue
            pass
    pid = runner_pid()   # read from the queue's lock file
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while runner_pid() is not None:
        assert time.monotonic() < end, f"the queue's runner {pid} did not stop"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def strict_errors(monkeypatch):
    """An error inside the app fails the test that meets it: the guard that lets a user's
    app survive one (tui.process.guard) would otherwise hide it. Tests of the guard turn it off."""
    from tui.process.guard import ErrorGuard

    monkeypatch.setattr(ErrorGuard, "strict", True)


@pytest.fixture(autouse=True)
def panes_mounted(request, monkeypatch):
    """A test's pilot starts once the three panes behind the first tab are mounted: they
    mount just after the first frame (tui.shell.startup), and a test that queries one at once
    would otherwise race them. Tests marked `first_moments` start at the first frame."""
    if request.node.get_closest_marker("first_moments"):
        return
    from contextlib import asynccontextmanager

    from tui.shell.app import RuGPTApp

    run_test = RuGPTApp.run_test

    @asynccontextmanager
    async def run_test_with_panes(app, *args, **kwargs):
        async with run_test(app, *args, **kwargs) as pilot:
            for _ in range(1500):   # 30 s
                if app.panes_ready():
                    break
                await pilot.pause(0.02)
            else:
                raise AssertionError("the app's panes were not mounted within 30 s")
            yield pilot

    monkeypatch.setattr(RuGPTApp, "run_test", run_test_with_panes)


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch):
    """Editors in tests show a steady cursor: a blinking one would make a snapshot depend on
    the moment it is taken."""
    from textual.widgets import Input, TextArea

    monkeypatch.setattr(TextArea.__dict__["cursor_blink"], "_default", False)
    monkeypatch.setattr(Input.__dict__["cursor_blink"], "_default", False)


@pytest.fixture
def frozen_figures(monkeypatch):
    """What a snapshot shows is the same on every machine and every run: durations come from
    a clock that ticks 10 ms a reading (core.base.clock), and the memory plan's measured
    activations are a fixed 2 MB per sequence (core.training.memory), and the hardware reads
    the same figures every second (core.base.hardware)."""
    import itertools

    from core.base import clock, hardware
    from core.training import memory

    ticks = itertools.count(1)
    monkeypatch.setattr(clock, "_source", lambda: next(ticks) * 0.01)
    monkeypatch.setattr(memory, "saved_activation_bytes", lambda *args, **kwargs: 2_000_000)
    monkeypatch.setattr(hardware.HardwareMonitor, "read",
                        lambda self: hardware.Reading(hardware.HostReading(150.0, 1_250_000_000, 2)))


@pytest.fixture(scope="session")
def demo_dir():
    """The demo model folder, built once per test session through the same cache users get."""
    from core.model.demo import demo_model_dir

    return demo_model_dir()


@pytest.fixture(scope="session")
def demo_session(demo_dir):
    """A read-only demo session (tests that change weights load their own)."""
    from core.model.session import load_session

    return load_session("demo", device="cpu")


@pytest.fixture
def fresh_session(demo_dir):
    from core.model.session import load_session

    return load_session("demo", device="cpu")


# -- model families: every family-level test runs on GPT-2 (the demo) and on Llama ----------

FAMILIES = ["demo", "llama"]


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    """A tiny Llama-family model with a SentencePiece-style tokenizer (tests/families.py)."""
    from tests.families import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session", params=FAMILIES)
def family_model(request, demo_dir):
    """What `--model` is given for each family: `demo`, or the Llama folder."""
    return "demo" if request.param == "demo" else str(request.getfixturevalue("llama_dir"))


@pytest.fixture(scope="session")
def family_session(family_model):
    """A read-only session of each family (tests that change weights use fresh_family_session)."""
    from core.model.session import load_session

    return load_session(family_model, device="cpu")


@pytest.fixture
def fresh_family_session(family_model):
    from core.model.session import load_session

    return load_session(family_model, device="cpu")


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """The shipped corpus split into fixed train/test files (deterministic data)."""
    from core.base.paths import corpus_path

    folder = tmp_path_factory.mktemp("corpus")
    lines = [line for line in corpus_path().read_text(encoding="utf-8").splitlines() if line.strip()]
    (folder / "train.txt").write_text("\n".join(lines[:200]), encoding="utf-8")
    (folder / "test.txt").write_text("\n".join(lines[200:260]), encoding="utf-8")
    return folder / "train.txt", folder / "test.txt"
