"""Where the app keeps what it remembers, and its settings file.

    settings.toml   in the user's config folder: last model, device/dtype, theme, generation
                    settings, training settings per model, last data paths
    workspace.db    in the user's data folder: history and runs (core.store.database)
    errors.log      beside it: the tracebacks of errors the app survived (shown as one line)

`RUGPT_TUI_HOME=DIR` puts both under DIR instead (tests, and people with several setups).
A settings file that cannot be read is never lost: it is kept aside as `settings.toml.bad`
(or `.bad.1`, `.bad.2`, … when that exists) and the defaults are used.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.base.errors import UserError
from core.base.settings import (
    DEFAULT_MODEL,
    DEFAULT_THEME,
    DEVICES,
    DTYPES,
    SAMPLING_SETTINGS,
    TRAIN_SETTINGS,
    by_name,
)

APP_NAME = "rugpt-tui"
SETTINGS_FILE = "settings.toml"
DATABASE_FILE = "workspace.db"
ERROR_LOG = "errors.log"
RUNS_DIR = "runs"
ERROR_LOG_LIMIT = 1 << 20   # past this size the log keeps its newer half
DATA_PATHS = ("train", "test", "out")
ON_HANGUP = ("keep", "stop")


def config_dir() -> Path:
    home = os.environ.get("RUGPT_TUI_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME))


def data_dir() -> Path:
    home = os.environ.get("RUGPT_TUI_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def database_path() -> Path:
    return data_dir() / DATABASE_FILE


def runs_dir() -> Path:
    """Where the Train pane saves runs' models by default: one place of the workspace, not
    whatever folder the app was started in."""
    return data_dir() / RUNS_DIR


def error_log_path() -> Path:
    return data_dir() / ERROR_LOG


def log_error(text: str, path: Path | None = None) -> None:
    """Append an error's report to the error log, which never grows past about a megabyte.
    Never raises: the log is a help, not a reason to fail."""
    path = path or error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > ERROR_LOG_LIMIT:
            tail = path.read_bytes()[-ERROR_LOG_LIMIT // 2:]
            path.write_bytes(tail[tail.find(b"\n") + 1:])
        with open(path, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    except OSError:
        pass


@dataclass
class SavedSettings:
    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    theme: str | None = None
    on_hangup: str = "keep"          # the terminal hangs up mid-run: keep training | stop (and save)
    notify: bool = True              # a run that ends while the terminal is not focused: bell + notification
    generate: dict[str, Any] = field(default_factory=dict)          # sampling setting → value
    train: dict[str, dict[str, Any]] = field(default_factory=dict)  # model → training settings
    data: dict[str, str] = field(default_factory=dict)              # train / test / out paths
    lesson: dict[str, Any] = field(default_factory=dict)            # step, language, done: the lesson's progress

    def starting_model(self, given: str | None) -> str:
        """The model the app starts with: the one given on the command line, else the last one."""
        return given or self.model or DEFAULT_MODEL

    def starting_theme(self, available) -> str:
        """The theme the app starts with: the saved one if the app has it (`available`: the
        app's themes, or None where they are not known yet)."""
        if self.theme and (available is None or self.theme in available):
            return self.theme
        return DEFAULT_THEME

    def as_toml(self) -> dict:
        # TOML has no null: a setting left empty (a seed, a block size) is simply not stored
        return _drop_none(asdict(self))


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _check_values(table: dict, settings: dict, where: str) -> dict:
    checked = {}
    for name, value in table.items():
        setting = settings.get(name)
        if setting is None:
            continue   # a setting this version does not know: ignored, kept out of the way
        kind_ok = isinstance(value, setting.kind) and not (setting.kind is int and isinstance(value, bool))
        if setting.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, kind_ok = float(value), True
        if not kind_ok:
            raise UserError(f"{where}.{name} = {value!r}: expected {setting.kind.__name__}")
        try:
            setting.check(value)
        except UserError as exc:
            raise UserError(f"{where}.{name}: {exc}") from None
        checked[name] = value
    return checked


def parse_settings(text: str) -> SavedSettings:
    """The settings in a file's text, or a one-line UserError naming the line or the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(str(exc)) from None
    saved = SavedSettings()
    for key in ("model", "theme"):
        if key in raw:
            if not isinstance(raw[key], str):
                raise UserError(f"{key} = {raw[key]!r}: expected a string")
            setattr(saved, key, raw[key])
    for key, choices in (("device", DEVICES), ("dtype", DTYPES), ("on_hangup", ON_HANGUP)):
        if key in raw:
            if raw[key] not in choices:
                raise UserError(f"{key} = {raw[key]!r}: one of {', '.join(choices)}")
            setattr(saved, key, raw[key])
    if "notify" in raw:
        if not isinstance(raw["notify"], bool):
            raise UserError(f"notify = {raw['notify']!r}: true or false")
        saved.notify = raw["notify"]
    for key in ("generate", "train", "data"):
        if not isinstance(raw.get(key, {}), dict):
            raise UserError(f"{key}: expected a table")
    saved.generate = _check_values(raw.get("generate", {}), by_name(SAMPLING_SETTINGS), "generate")
    train_settings = by_name(TRAIN_SETTINGS)
    for model, table in raw.get("train", {}).items():
        if not isinstance(table, dict):
            raise UserError(f"train.{model}: expected a table")
        saved.train[model] = _check_values(table, train_settings, f"train.{model!r}")
    for key, value in raw.get("data", {}).items():
        if key in DATA_PATHS:
            if not isinstance(value, str):
                raise UserError(f"data.{key} = {value!r}: expected a path")
            saved.data[key] = value
    saved.lesson = _lesson(raw.get("lesson", {}))
    return saved


def _lesson(table) -> dict:
    """The lesson's progress: the step open last, its language, the steps done."""
    if not isinstance(table, dict):
        raise UserError("lesson: expected a table")
    for key in ("step", "language"):
        if key in table and not isinstance(table[key], str):
            raise UserError(f"lesson.{key} = {table[key]!r}: expected a string")
    if table.get("language", "ru") not in ("ru", "en"):
        raise UserError(f"lesson.language = {table['language']!r}: ru or en")
    done = table.get("done", [])
    if not isinstance(done, list) or not all(isinstance(key, str) for key in done):
        raise UserError(f"lesson.done = {done!r}: expected a list of step names")
    return {key: table[key] for key in ("step", "language", "done") if key in table}


def _aside(path: Path) -> Path:
    """A name next to `path` that holds nothing yet: settings.toml.bad, .bad.1, …"""
    candidate = path.with_name(path.name + ".bad")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.bad.{n}")
    return candidate


def load_settings(path: Path | None = None) -> tuple[SavedSettings, str | None]:
    """The saved settings, and a one-line problem to show when the file could not be used
    (it is then moved aside, never deleted, and the defaults are used)."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SavedSettings(), None
    except (OSError, UnicodeDecodeError) as exc:
        return SavedSettings(), f"{path}: cannot read it ({exc.__class__.__name__}); using defaults"
    try:
        return parse_settings(text), None
    except UserError as exc:
        try:
            aside = _aside(path)
            os.replace(path, aside)
            kept = f"kept as {aside.name}"
        except OSError:
            kept = "left in place"
        return SavedSettings(), f"{path}: {exc} — {kept}; using defaults"


def peek_settings(path: Path | None = None) -> SavedSettings | None:
    """The saved settings, read only: None when the file cannot be used (`load_settings`
    is the one that reports it and moves it aside)."""
    try:
        return parse_settings((path or settings_path()).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SavedSettings()
    except (OSError, UnicodeDecodeError, UserError):
        return None


def save_settings(saved: SavedSettings, path: Path | None = None) -> bool:
    """Write the settings if they changed: a temporary file beside it, then one rename, so
    the file is always either the old settings or the new ones. True when written."""
    import tomli_w

    path = path or settings_path()
    text = tomli_w.dumps(saved.as_toml())
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError):
        return False   # a file we cannot read is not ours to replace
    if old == text:
        return False
    if old is not None:
        try:
            parse_settings(old)
        except UserError:
            return False   # someone's broken file we could not move aside: never overwritten
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    return True
