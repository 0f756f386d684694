"""Where a run from the pane saves by default: a folder of its own in the workspace's runs
folder (rugpt-finetuned, rugpt-finetuned-2, …), so no run replaces another's model unasked."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from core.store.database import resolved
from core.store.workspace import runs_dir

DEFAULT_OUT = "rugpt-finetuned"   # in the workspace's runs folder: -2, -3, … as runs take them


def default_out(n: int = 1) -> str:
    """The n-th default output folder, as the field shows it (~ for the home folder)."""
    path = runs_dir() / (DEFAULT_OUT if n == 1 else f"{DEFAULT_OUT}-{n}")
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return path.as_posix()


def is_default_out(value: str) -> bool:
    """A folder the form chose, not the user: a default of the runs folder (or of older
    versions, a bare name in the working folder)."""
    auto = rf"{re.escape(DEFAULT_OUT)}(-\d+)?"
    return bool(re.fullmatch(auto, value) or re.fullmatch(re.escape(default_out().rsplit("/", 1)[0])
                                                         + "/" + auto, value))


def free_out_folder(taken: set[str]) -> str:
    """The first of rugpt-finetuned, rugpt-finetuned-2, … in the runs folder that holds
    nothing yet, that no run in `taken` saves to and that no run — of another app, or the
    CLI — is writing to now (its folder lock is there): each run gets a folder of its own."""
    for n in itertools.count(1):
        name = default_out(n)
        path = Path(name).expanduser()
        if resolved(str(path)) in taken or (path.parent / f".{path.name}.lock").exists():
            continue
        try:
            if not path.exists() or (path.is_dir() and not any(path.iterdir())):
                return name
        except OSError:
            continue
    raise AssertionError("unreachable")


def running_out_folders(store) -> set[str]:
    """The folders the workspace's running runs (of any process) save to."""
    if store is None:
        return set()
    return {resolved(row["out"]) for row in store.runs() if row["status"] == "running" and row["out"]}
