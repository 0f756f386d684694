"""Text fields and setting fields shared by the panes: an input and an editor that take keys
in the order they were typed, an input with its label, a declared setting drawn as the right
control, path completion, and reading the fields back.

Keys reach a text field in the order they were typed. Textual's Input and TextArea insert a
typed character as soon as its key arrives, but run their own bound keys (ctrl+a, ctrl+k,
backspace, arrows) only after the key has bubbled up through every widget above them to the
app. Typed fast — or sent by a terminal as one burst, or arriving while the app is busy —
the characters after a bound key overtook it: ctrl+a ctrl+k followed by a path lost the
path's first characters (Textual issue #6605). `Field` and `Editor` run their own bindings
when the key reaches them, as they insert characters; keys they do not bind bubble up as
before. Every text field of the app is one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import events
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Switch, TextArea

from core.base.errors import UserError
from core.base.settings import Setting


def short_path(path: Path) -> str:
    """Relative to the working folder when inside it (shorter, and the same on every machine)."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


async def run_own_binding(field: Widget, event: events.Key) -> None:
    """A key bound by `field` itself (not by a priority binding above it) runs its action
    now, before the key bubbles, so the characters typed after it cannot overtake it."""
    if event.is_printable:
        return
    active = field.screen.active_bindings.get(event.key)
    if active is None or active.node is not field or active.binding.priority or not active.enabled:
        return
    if await field.app.run_action(active.binding.action, field):
        event.stop()
        event.prevent_default()   # the field's own key handler has nothing left to do


class Field(Input):
    """An Input that runs its bound keys in typing order."""

    async def on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)


class Editor(TextArea):
    """A TextArea that runs its bound keys in typing order."""

    async def on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)


class PathSuggester(Suggester):
    """Completes file and folder names as you type a path."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        folder, prefix = (path, "") if value.endswith(os.sep) else (path.parent, path.name)
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in folder.iterdir()
                           if p.name.startswith(prefix) and not p.name.startswith("."))
        except (OSError, ValueError):   # not there, not a folder, a NUL in the name
            return None
        return value + names[0][len(prefix):] if names else None


class LabeledInput(Vertical):
    """An Input with its name above it: `width` cells wide, or as wide as its grid cell."""

    DEFAULT_CSS = """
    LabeledInput { width: auto; height: 3; }
    LabeledInput.-fill { width: 1fr; }
    LabeledInput > Label { padding: 0 1; color: $text-muted; }
    LabeledInput Input { width: 14; }
    LabeledInput.-fill Input { width: 1fr; }
    """

    def __init__(self, label: str, value: str, input_id: str, width: int | None = 14,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.label, self.value, self.input_id, self.width = label, value, input_id, width
        self.set_class(width is None, "-fill")

    def compose(self):
        yield Label(self.label)
        field = Field(self.value, id=self.input_id, compact=True)
        if self.width is not None:
            field.styles.width = self.width
        yield field


class SettingField(LabeledInput):
    """A declared setting (core.base.settings) as a field: an Input, a Switch for a flag, a
    Select for a choice. Its id is `PREFIX-NAME`, e.g. `train-batch-size`."""

    DEFAULT_CSS = """
    SettingField.-switch, SettingField.-select { width: 1fr; }
    SettingField Switch { border: none; height: 1; padding: 0 1; }
    """

    def __init__(self, setting: Setting, value, prefix: str, width: int | None = None,
                 **kwargs) -> None:
        super().__init__(setting.label, setting.show(value), f"{prefix}-{setting.name.replace('_', '-')}",
                         width, **kwargs)
        self.setting, self.initial = setting, value
        self._shown = setting.show(value) if setting.kind is not bool and not setting.choices else value
        self.set_class(setting.kind is bool, "-switch")
        self.set_class(bool(setting.choices), "-select")

    def compose(self):
        if self.setting.kind is bool:
            yield Label(self.label)
            yield Switch(bool(self.initial), id=self.input_id)
        elif self.setting.choices:
            yield Label(self.label)
            yield Select([(v, v) for v in self.setting.choices], value=self.initial,
                         allow_blank=False, id=self.input_id, compact=True)
        else:
            yield from super().compose()

    @property
    def control(self) -> Input | Switch | Select:
        control = self.query_one(f"#{self.input_id}")
        if not isinstance(control, (Input, Switch, Select)):
            raise TypeError(f"#{self.input_id} is a {type(control).__name__}")
        return control

    def read(self):
        """The value on screen, or a one-line error naming the field."""
        if self.setting.kind is bool or self.setting.choices:
            return self.control.value
        return self.setting.parse(self.control.value)

    def show(self, value) -> None:
        if self.setting.kind is bool or self.setting.choices:
            self._shown = value
        else:
            self._shown = self.setting.show(value)
        self.control.value = self._shown

    def edited(self) -> bool:
        """The value on screen is not the one last shown: the user changed it."""
        return self.control.value != self._shown


def changed_values(fields, defaults: dict) -> dict:
    """The fields' valid values that differ from `defaults` (what a settings file keeps)."""
    changed = {}
    for field in fields:
        try:
            value = field.read()
            field.setting.check(value)
        except UserError:
            continue
        if value != defaults.get(field.setting.name):
            changed[field.setting.name] = value
    return changed


def read_fields(root: Widget, skip: Iterable[str] = ()) -> dict:
    """Every SettingField under `root` (but those named in `skip`), read: name → value."""
    return {f.setting.name: f.read() for f in root.query(SettingField) if f.setting.name not in skip}
