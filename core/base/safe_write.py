"""The one rule for every folder rugpt-tui writes a model into, and the means to keep it.

A model goes only into a folder that does not exist yet, an empty folder, or a folder that is
already ours (it holds our marker, `trainer_state.json` with our format tag). Anything else is
refused before any work starts. Writing happens in a temporary folder beside the target that is
renamed into place when complete; files a user put into one of our folders come along to the
new one as hard links, so at every moment each of them exists in at least one of the two.
One writer per folder: a lock file beside it, holding the owner's pid.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from core.base.errors import SaveError, UserError, one_line
from core.base.modes import follow_umask

FORMAT = "rugpt-tui-checkpoint"
FORMAT_VERSION = 1
MARKER_FILE = "trainer_state.json"
TEMP_MARK = ".rugpt-tui-temp"    # inside a folder that is only ever ours to delete


# -- what a folder is ------------------------------------------------------------------------

def read_marker(folder: Path) -> dict | None:
    """Our marker's contents, or None when `folder` is not one of our folders."""
    try:
        state = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    if state.get("format") == FORMAT:
        return state
    # Written before the format tag existed: a training checkpoint or an app save.
    if "step" in state and ("scheduler" in state or state.get("note") == "saved from the app"):
        return state
    return None


def is_ours(folder: Path) -> bool:
    return folder.is_dir() and read_marker(folder) is not None


LOGS_DIR = "tb"                    # a run's TensorBoard event files, in its output folder
LOG_PREFIX = "events.out.tfevents."


def holds_only_run_logs(folder: Path) -> bool:
    """`folder` holds nothing but a run's TensorBoard logs: a run that ended before its first
    save leaves its output folder so, and the folder is still free for a model."""
    try:
        if os.listdir(folder) != [LOGS_DIR] or (folder / LOGS_DIR).is_symlink():
            return False
        logs = folder / LOGS_DIR
        return all(name.startswith(LOG_PREFIX) and (logs / name).is_file()
                   and not (logs / name).is_symlink() for name in os.listdir(logs))
    except OSError:
        return False


def check_output_folder(out: str | os.PathLike, setting: str = "--out") -> Path:
    """The resolved target if a model may be written there, else a UserError naming why."""
    shown = f"{setting} {out}"
    if "\x00" in os.fspath(out):
        raise UserError(f"{setting} {os.fspath(out)!r}: a path cannot hold a NUL character")
    path = Path(out).expanduser()
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise UserError(f"{shown}: cannot be resolved ({exc})") from None
    if target == Path.cwd().resolve():
        raise UserError(f"{shown}: is the current folder; name a new folder for the model")
    if target == Path.home().resolve():
        raise UserError(f"{shown}: is your home folder; name a new folder for the model")
    if target.parent == target:
        raise UserError(f"{shown}: is the root folder; name a new folder for the model")
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise UserError(f"{shown}: is an existing file; name a new folder for the model")
        if not is_ours(target) and not holds_only_run_logs(target):
            try:
                names = sorted(os.listdir(target))
            except OSError as exc:
                raise UserError(f"{shown}: cannot be read ({exc.strerror})") from None
            if names:
                listed = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
                raise UserError(f"{shown}: folder holds files that are not a rugpt-tui checkpoint "
                                f"({listed}); name a new or empty folder")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{shown}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{shown}: no permission to write in {existing}")
    return target


# -- one writer per folder -------------------------------------------------------------------

class FolderLock:
    """Held while a run or a save writes to `out`. The kernel drops the lock when its owner
    dies, so the file a killed run leaves behind is simply taken over."""

    def __init__(self, out: Path, setting: str = "--out") -> None:
        self.out, self.setting = Path(out), setting
        self.path = self.out.parent / f".{self.out.name}.lock"
        self.fd: int | None = None

    def _owner(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def _refuse(self) -> None:
        raise UserError(f"{self.setting} {self.out}: another rugpt-tui run is writing to this "
                        f"folder (pid {self._owner()}); wait for it or choose another folder")

    def acquire(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                self._refuse()
            try:  # the previous owner may have removed the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- writing a folder whole ------------------------------------------------------------------

def temp_beside(out: Path) -> Path:
    return out.with_name(f".{out.name}.writing")


def old_beside(out: Path) -> Path:
    return out.with_name(f".{out.name}.old")


def remove_if_ours(folder: Path) -> bool:
    """Delete a leftover of ours (a temp or old copy). A folder we cannot prove is ours stays."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    if not ((folder / TEMP_MARK).exists() or is_ours(folder) or not any(folder.iterdir())
            or holds_only_run_logs(folder)):
        return False
    # The mark goes last, so a deletion cut half-way still leaves a folder we know is ours.
    (folder / TEMP_MARK).touch()
    for entry in folder.iterdir():
        if entry.name == TEMP_MARK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (folder / TEMP_MARK).unlink()
    folder.rmdir()
    return True


def recover(out: str | os.PathLike) -> Path:
    """If a save was cut between its two renames, put the previous folder back."""
    out = Path(out)
    old = old_beside(out)
    if not out.exists() and is_ours(old):
        os.replace(old, out)
    return out


def start_temp(out: Path) -> Path:
    """A fresh temporary folder beside `out`, marked as ours from its first moment."""
    recover(out)
    remove_if_ours(old_beside(out))
    tmp = temp_beside(out)
    remove_if_ours(tmp)
    if tmp.exists():
        raise UserError(f"{tmp}: is in the way and is not ours; move it and try again")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    (tmp / TEMP_MARK).touch()
    return tmp


def write_marker(folder: Path, state: dict) -> None:
    """Our marker, last: it names every file we wrote, so a later save knows the others are
    the user's."""
    ours = {p.name for p in folder.iterdir()} - {TEMP_MARK}
    marker = {"format": FORMAT, "format_version": FORMAT_VERSION, **state,
              "files": sorted(ours | {MARKER_FILE})}
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")


@contextmanager
def writing_folder(out: Path, state: dict):
    """A fresh temporary folder beside `out` to write into. When the block completes, our
    marker (with `state`) goes in last and the folder becomes `out`, the user's files carried
    over; on any failure it is removed, `out` stays as it was, and an OS-level failure
    becomes one SaveError line."""
    had_previous = out.exists()
    tmp = start_temp(out)
    try:
        yield tmp
        follow_umask(tmp)   # only our files are in it yet: the user's come over next
        write_marker(tmp, state)
        finish_temp(tmp, out)
    except BaseException as exc:
        remove_if_ours(tmp)
        if isinstance(exc, Exception) and not isinstance(exc, UserError):
            raise save_error(exc, out, had_previous) from exc
        raise


def finish_temp(tmp: Path, out: Path) -> Path:
    """Carry the user's files over, flush to disk, and swap the complete folder into place."""
    _carry_user_files(out, tmp)
    (tmp / TEMP_MARK).unlink()
    _fsync_tree(tmp)
    old = old_beside(out)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    if old.exists():
        remove_if_ours(old)
    return out


def _carry_user_files(previous: Path, new: Path) -> None:
    if not previous.is_dir():
        return
    marker = read_marker(previous) or {}
    ours = set(marker.get("files") or []) | {MARKER_FILE, TEMP_MARK}
    if "files" not in marker:   # an older checkpoint: what we write now is what we wrote then
        ours |= {p.name for p in new.iterdir()}
    for entry in previous.iterdir():
        if entry.name in ours:
            continue
        target = new / entry.name
        if target.exists() or target.is_symlink():   # a name we now use: keep theirs beside it
            target = new / f"{entry.name}.user"
        _link_tree(entry, target)


def _link_tree(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:   # a file system without hard links: a copy is as safe, only slower
        shutil.copy2(source, target)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- saying what went wrong ------------------------------------------------------------------

_REASONS = [
    (errno.ENOSPC, ("no space left", "os error 28", "storagefull"), "no space left on {where}"),
    (errno.EFBIG, ("file too large", "os error 27", "filetoolarge"),
     "the file size limit was reached writing {out}"),
    (errno.EDQUOT, ("quota exceeded", "os error 122"), "disk quota exceeded on {where}"),
    (errno.EACCES, ("permission denied", "os error 13"), "permission denied writing {out}"),
    (errno.EROFS, ("read-only file system", "os error 30"), "{where} is read-only"),
]


def save_error(exc: BaseException, out: Path, had_previous: bool) -> SaveError:
    """One line for a failed save, whatever layer raised it (Python, torch, safetensors' Rust)."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    reason = None
    for number, phrases, wording in _REASONS:
        if code == number or any(p in text for p in phrases):
            reason = wording.format(where=out.parent, out=out)
            break
    if reason is None:
        reason = one_line(exc)
    kept = "previous checkpoint kept" if had_previous else "nothing was written"
    return SaveError(f"could not save {out}: {reason}: {kept}")
