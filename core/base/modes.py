"""File modes: what the app writes gets the modes the user's umask gives any program's
files, whatever the library that wrote it chose."""

from __future__ import annotations

import os
import threading
from pathlib import Path

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask: from /proc where there is one; elsewhere reading it means setting
    it for a moment, so readers take turns."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def follow_umask(folder: Path) -> None:
    """Give `folder` and everything we wrote in it the modes any program's files get under
    the user's umask: safetensors and `mkdtemp` create theirs private (0600, 0700), and a
    colleague on a shared machine could read a model's config but not its weights."""
    mask = current_umask()
    for entry in (folder, *folder.rglob("*")):
        if entry.is_symlink():
            continue
        os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~mask)
