"""Where rugpt-tui keeps its caches."""

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """The user cache dir; `RUGPT_TUI_CACHE` overrides it (tests point it at a temp dir)."""
    override = os.environ.get("RUGPT_TUI_CACHE")
    return Path(override) if override else Path(user_cache_dir("rugpt-tui"))
