"""Where rugpt-tui keeps its caches, and the texts that ship inside the package."""

import os
import stat
from importlib import resources
from pathlib import Path

from platformdirs import user_cache_dir


def looks_like_hub_id(name: str) -> bool:
    """`name` reads as a hub id (`gpt2`, `ai-forever/rugpt3small_based_on_gpt2`), not as a
    path: no leading `.`, `/` or `~`, and at most one `/`."""
    return not name.startswith((".", "/", "~")) and name.count("/") <= 1


def cache_dir() -> Path:
    """The user cache dir; `RUGPT_TUI_CACHE` overrides it (tests point it at a temp dir)."""
    override = os.environ.get("RUGPT_TUI_CACHE")
    return Path(override) if override else Path(user_cache_dir("rugpt-tui"))


def resource(name: str) -> Path:
    """A file of `core/resources`, shipped with the package."""
    return Path(str(resources.files("core") / "resources" / name))


def corpus_path() -> Path:
    """The demo's training corpus (core.data.grammar made it): what the Train pane offers first."""
    return resource("corpus_ru.txt")


def texts_path() -> Path:
    """Varied Russian prose of our own, for the demo's tokenizer only: the Tokenize pane shows
    real BPE pieces on any text, not just on the corpus's few words."""
    return resource("texts_ru.txt")


# What a path that is neither a file nor a folder is, for the messages that refuse it.
SPECIAL_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """`a file`, `a folder`, `a character device`, … for a path's `st_mode`."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return next((name for test, name in SPECIAL_FILES if test(mode)), "not a regular file")
