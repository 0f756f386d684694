"""Shared fixtures. No test downloads anything: the hub is switched off and the demo model
is built locally into a temporary cache."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("RUGPT_TUI_CACHE", tempfile.mkdtemp(prefix="rugpt-tui-test-cache-"))

import pytest  # noqa: E402


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
