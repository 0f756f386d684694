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
    return home


@pytest.fixture(autouse=True)
def strict_errors(monkeypatch):
    """An error inside the app fails the test that meets it: the guard that lets a user's
    app survive one (tui.guard) would otherwise hide it. Tests of the guard turn it off."""
    from tui.guard import ErrorGuard

    monkeypatch.setattr(ErrorGuard, "strict", True)


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch):
    """Editors in tests show a steady cursor: a blinking one would make a snapshot depend on
    the moment it is taken."""
    from textual.widgets import TextArea

    monkeypatch.setattr(TextArea.__dict__["cursor_blink"], "_default", False)


@pytest.fixture(scope="session")
def demo_dir():
    """The demo model folder, built once per test session through the same cache users get."""
    from core.demo import demo_model_dir

    return demo_model_dir()


@pytest.fixture(scope="session")
def demo_session(demo_dir):
    """A read-only demo session (tests that change weights load their own)."""
    from core.session import load_session

    return load_session("demo", device="cpu")


@pytest.fixture
def fresh_session(demo_dir):
    from core.session import load_session

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
    from core.session import load_session

    return load_session(family_model, device="cpu")


@pytest.fixture
def fresh_family_session(family_model):
    from core.session import load_session

    return load_session(family_model, device="cpu")


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """The shipped corpus split into fixed train/test files (deterministic data)."""
    from core.data import sample_corpus_path

    folder = tmp_path_factory.mktemp("corpus")
    lines = [line for line in sample_corpus_path().read_text(encoding="utf-8").splitlines() if line.strip()]
    (folder / "train.txt").write_text("\n".join(lines[:200]), encoding="utf-8")
    (folder / "test.txt").write_text("\n".join(lines[200:260]), encoding="utf-8")
    return folder / "train.txt", folder / "test.txt"
