"""The Train pane's form: the data (with a preview of what it makes), the settings drawn from
their declarations, and the output folder checked as it is typed."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Input, Select, Static, Switch

from core.base.errors import UserError, one_line
from core.base.paths import corpus_path
from core.base.safe_write import check_output_folder
from core.base.settings import (
    TRAIN_SETTINGS,
    block_default,
    by_name,
    default_block_size,
    lr_default,
    train_defaults,
)
from core.training.config import TrainConfig
from tui.panes.host import host
from tui.panes.train.out_folder import (
    default_out,
    free_out_folder,
    is_default_out,
    running_out_folders,
)
from tui.panes.train.run import ProgressMeter, estimate_text, plan_text, preview_text
from tui.widgets.fields import (
    LabeledInput,
    PathSuggester,
    SettingField,
    changed_values,
    read_fields,
    short_path,
)

if TYPE_CHECKING:
    from textual.timer import Timer

    from core.model.session import ModelSession

# The settings the form shows, in its grid's order; the rest keep their defaults.
SHOWN = ("epochs", "lr", "batch_size", "block_size", "eval_every", "patience", "mixed_precision",
         "pack", "lora", "gradient_checkpointing", "keep_best", "processes")
LORA_SHOWN = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets")   # a row shown with LoRA on
# ... which also holds FSDP, shown when the run has several processes to shard over
PATH_FIELDS = (("train", "train-data"), ("test", "train-test"), ("out", "train-out"))


@dataclass
class OutFolderChecked(Message):
    """The output folder field was checked: a problem (refused), or a note (whose model it
    holds), for the pane's status line."""
    problem: str | None
    note: str | None


@dataclass
class BlockFollowsData(Message):
    """The data is of the other kind (dialogues, texts) than the one whose default block the
    field shows: the field moves from `shown` to `block`, this kind's default."""
    shown: int
    block: int


@dataclass
class DataPreview(Message):
    number: int                      # which preview (a newer one replaces an older one's)
    text: Text
    ok: bool
    final: bool = True               # False: an estimate or progress, the stats are to come
    prepared: tuple | None = None    # (PreparedData, block, tokenizer) the stats are of


class TrainForm(Vertical):
    DEFAULT_CSS = "TrainForm { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._preview_timer: Timer | None = None
        self._preview_number = 0
        self._preview_data: tuple | None = None   # the data the newest preview reads
        self.prepared: tuple | None = None        # the newest preview's rows (samples window)
        self._defaults: dict = {}   # what the fields showed for this model
        self._model_name = "default"
        self.filled_out = default_out()   # the output folder as the form last filled it in
        # A model loads in the background: a setting the user changes meanwhile is theirs,
        # and the model's defaults arriving later must not overwrite it.
        self._loading_since = time.monotonic()
        self._edited_at: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        with Grid(id="train-data-row"):
            yield LabeledInput("train data (file, folder, hub)", "", "train-data", None)
            yield LabeledInput("test data (empty: hold out 10 %)", "", "train-test", None)
        yield Static("", id="train-preview")
        # A grid, not a row: at any width every label and field stays whole.
        with Grid(id="train-settings"):
            settings = by_name(TRAIN_SETTINGS)
            for name in SHOWN:
                yield SettingField(settings[name], settings[name].default, "train")
            yield LabeledInput("output folder", default_out(), "train-out", None, id="train-out-box")
        with Grid(id="train-lora-row"):
            for name in LORA_SHOWN:
                yield SettingField(settings[name], settings[name].default, "train",
                                   id="train-lora-targets-box" if name == "lora_targets" else None,
                                   classes="lora-setting")
            yield SettingField(settings["fsdp"], settings["fsdp"].default, "train", id="train-fsdp-box")

    def on_mount(self) -> None:
        self.query_one("#train-data", Input).suggester = PathSuggester()
        self.query_one("#train-test", Input).suggester = PathSuggester()

    def show_model(self, session: ModelSession, remembered: dict) -> None:
        """The model's defaults (the ones `rugpt-tui train` uses), then what was last chosen
        for it — except where the user changed a field while the model loaded."""
        from core.model.lora import adapter_settings
        from core.training.processes import visible_devices

        fixed = adapter_settings(session)   # a loaded adapter trains with its own shape…
        # …and its base's preset (the demo's quick settings for an adapter on the demo)
        self._model_name = session.info.base_model or session.info.model
        self._defaults = train_defaults(self._model_name, session.max_positions, lora=bool(fixed))
        self._defaults["processes"] = visible_devices()   # every GPU this machine shows
        for field in self.query(SettingField):
            name = field.setting.name
            if name not in fixed and self._edited_at.get(name, -1.0) >= self._loading_since:
                continue   # typed while the model loaded: the user's value stays
            field.show(fixed.get(name, remembered.get(name, self._defaults[name])))
        self.schedule_preview()

    def model_loading(self) -> None:
        """Another model starts loading: edits from now on are kept when it arrives."""
        self._loading_since = time.monotonic()

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _note_edit(self, event: Input.Changed | Switch.Changed | Select.Changed) -> None:
        field = next((a for a in event.control.ancestors if isinstance(a, SettingField)), None)
        if field is not None and field.edited():
            self._edited_at[field.setting.name] = time.monotonic()

    @on(Switch.Changed, "#train-lora")
    def lora_switched(self, event: Switch.Changed) -> None:
        """The adapter's settings show with LoRA on. A learning rate left at one mode's
        default follows to the other's (an adapter wants a higher one)."""
        self.show_extra_row()
        if not self._defaults:
            return
        full, lora = (lr_default(self._model_name, lora) for lora in (False, True))
        field = next(f for f in self.query(SettingField) if f.setting.name == "lr")
        try:
            shown = field.read()
        except UserError:
            return
        if event.value and shown == full:
            field.show(lora)
        elif not event.value and shown == lora:
            field.show(full)

    @on(Input.Changed, "#train-processes")
    def show_extra_row(self) -> None:
        """The row under the settings: the adapter's with LoRA on, FSDP with several processes."""
        lora = self.query_one("#train-lora", Switch).value
        several = self.processes() > 1
        for field in self.query(".lora-setting"):
            field.display = lora
        self.query_one("#train-fsdp-box").display = several
        self.query_one("#train-lora-row").display = lora or several

    def processes(self) -> int:
        try:
            return int(self.query_one("#train-processes", Input).value.strip() or 1)
        except ValueError:
            return 1

    def restore_paths(self, paths: dict[str, str]) -> None:
        """The data and output paths last used — at start, before any key is read; with no
        data chosen yet, the shipped corpus, so F8 works at once on a fresh install."""
        paths = {"train": short_path(corpus_path()), **paths}
        for key, field_id in PATH_FIELDS:
            if key in paths:
                self.query_one(f"#{field_id}", Input).value = paths[key]
        self.next_out_folder(set())

    def next_out_folder(self, taken: set[str], only_filled: bool = False) -> None:
        """A default folder name (rugpt-finetuned, -2, …) moves on to a free one (nothing in
        it, no run saving there); a folder the user named, or none, stays. `only_filled`
        (at F8): the name the form put there is chosen again, free of every process's runs."""
        field = self.query_one("#train-out", Input)
        value = field.value.strip()
        if not is_default_out(value):   # empty (the run does not save), or the user's own
            return
        if only_filled and value != self.filled_out:
            return
        free = free_out_folder(taken | (running_out_folders(host(self).store) if only_filled else set()))
        self.filled_out = free
        if value != free:
            field.value = free
            self.call_after_refresh(self.show_out_end)

    def on_show(self) -> None:
        self.call_after_refresh(self.show_out_end)

    def show_out_end(self) -> None:
        """The output folder's end — the name that tells runs apart — in view: at 80 columns
        the field is narrower than the path. Not while the user edits it."""
        field = self.query_one("#train-out", Input)
        if not field.has_focus:
            end = len(field.value)
            field.cursor_position = 0    # moved, so the field scrolls to where it ends up
            field.cursor_position = end

    def model_in_out_folder(self) -> dict | None:
        """The workspace's run whose model the output folder holds, if any."""
        store = getattr(self.app, "store", None)
        value = self.query_one("#train-out", Input).value.strip()
        if store is None or not value or not Path(value).expanduser().is_dir():
            return None
        return store.model_in(value)

    def data_paths(self) -> dict[str, str]:
        values = {key: self.query_one(f"#{field_id}", Input).value.strip() for key, field_id in PATH_FIELDS}
        return {key: value for key, value in values.items() if value}

    def changed_settings(self) -> dict:
        """The valid settings on screen that differ from this model's defaults."""
        return changed_values(self.query(SettingField), self._defaults)

    def focus_data(self) -> None:
        self.query_one("#train-data", Input).focus()

    def out_folder(self) -> str:
        return self.query_one("#train-out", Input).value.strip() or default_out()

    def read_config(self, swept: dict | None = None) -> TrainConfig:   # swept: a sweep's values
        data = self.query_one("#train-data", Input).value.strip()
        if not data:
            raise UserError("train data: choose a file, a folder or a hub dataset")
        fields = {**read_fields(self, skip=swept or {}), **(swept or {})}
        fields["fsdp"] = fields["fsdp"] and fields["processes"] > 1   # hidden, it is off
        return TrainConfig(
            train=data, test=self.query_one("#train-test", Input).value.strip() or None,
            out=self.query_one("#train-out", Input).value.strip() or None,
            **fields,
        ).validate()

    @on(Input.Changed, "#train-out")
    def out_changed(self) -> None:
        problem = self.check_out_field()
        holder = self.model_in_out_folder() if problem is None else None
        note = None
        if holder is not None:
            loss = f", eval {holder['eval_loss']:.3f}" if holder["eval_loss"] is not None else ""
            note = f"output folder holds run #{holder['id']}'s model{loss}: F8 replaces it"
            self.query_one("#train-out", Input).tooltip = note
        self.post_message(OutFolderChecked(problem, note))

    def check_out_field(self) -> str | None:
        """The output folder under the rule every model write follows: a problem is marked on
        the field (its tooltip says why) and returned."""
        field = self.query_one("#train-out", Input)
        value = field.value.strip()
        problem = None
        if value:
            try:
                check_output_folder(value, "output folder")
            except UserError as exc:
                problem = str(exc)
        field.set_class(problem is not None, "-invalid")
        field.tooltip = problem
        return problem

    @on(Input.Changed, "#train-data, #train-test, #train-block-size, #train-batch-size, "
                       "#train-lora-r, #train-lora-targets, #train-processes")
    @on(Switch.Changed, "#train-pack, #train-lora, #train-gradient-checkpointing, #train-fsdp")
    def data_changed(self) -> None:
        self.schedule_preview()

    def schedule_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.4, self._start_preview)

    def _start_preview(self) -> None:
        session = host(self).session
        if session is None:
            return
        try:
            config = self.read_config()
        except UserError as exc:
            self.query_one("#train-preview", Static).update(Text(str(exc), style="red"))
            return
        # A new block size or pack/pad needs no new tokenization: a preview still tokenizing
        # the same data goes on (the new one waits for it); other data abandons it.
        self._preview_number += 1
        self._preview_data = (config.train, config.test, config.test_split, config.seed)
        number, data = self._preview_number, self._preview_data
        blocks = {kind: block_default(self._model_name, session.max_positions, kind) for kind in (False, True)}
        self.app.run_worker(lambda: self._preview(session, config, number, data, blocks), thread=True,
                            group="train-preview", name="train-preview")

    def _preview(self, session: ModelSession, config: TrainConfig, number: int, data: tuple,
                 blocks: dict[bool, int]) -> None:
        """Stats of the data as rows. Big new data answers at once with an estimate from its
        first megabyte, then shows the tokenization's progress, then the stats."""
        from textual.worker import get_current_worker

        from core.base.cancel import Cancelled
        from core.data.source import resolve_source
        from core.data.tokenized import quick_estimate
        from core.training.batches import prepare_data

        worker = get_current_worker()
        meter, estimate = ProgressMeter(), None

        def progress(done: int, total: int) -> None:
            if self._preview_data == data and meter.due():
                self.post_message(DataPreview(number, meter.line(estimate, done, total), True, final=False))
        try:
            estimate = quick_estimate(session.tokenizer, config.train)   # its first megabyte
            if estimate is not None:
                self.post_message(DataPreview(number, estimate_text(estimate), True, final=False))
            dialogues = resolve_source(config.train).dialogues   # read once: the run asks again
            if config.block_size == blocks[not dialogues] != blocks[dialogues]:
                # a block left at the other kind of data's default follows to this one's
                config = replace(config, block_size=blocks[dialogues])
                self.post_message(BlockFollowsData(blocks[not dialogues], blocks[dialogues]))
            block = config.block_size or default_block_size(session.max_positions)
            prepared = prepare_data(session.tokenizer, config, block, progress=progress,
                                    cancelled=lambda: worker.is_cancelled or self._preview_data != data)
        except Cancelled:
            return
        except Exception as exc:  # one line, never a traceback on screen
            error = str(exc) if isinstance(exc, UserError) else one_line(exc)
            self.post_message(DataPreview(number, Text(error, style="red"), False))
            return
        text = preview_text(prepared.stats, block, config.pack)
        try:
            from core.training.memory import as_stacked, memory_plan
            stacked = as_stacked(config, len(prepared.train_rows), config.processes)
            plan = memory_plan(session, stacked, config.processes)
        except UserError as exc:   # a LoRA target that matches nothing, say
            text.append("\n" + str(exc), style="red")
            self.post_message(DataPreview(number, text, False))
            return
        text.append(" · " + plan_text(plan, config.lora), style="cyan")
        self.post_message(DataPreview(number, text, True, prepared=(prepared, block, session.tokenizer)))

    def on_block_follows_data(self, message: BlockFollowsData) -> None:
        field = next(f for f in self.query(SettingField) if f.setting.name == "block_size")
        try:
            shown = field.read()
        except UserError:
            return
        if shown == message.shown:   # not changed meanwhile
            self._defaults["block_size"] = message.block
            field.show(message.block)

    def on_data_preview(self, message: DataPreview) -> None:
        # The newest preview's answer, or progress of an earlier one that tokenizes the same
        # data (the newest waits for it).
        newest = message.number == self._preview_number
        if newest or (not message.final and message.number < self._preview_number):
            preview = self.query_one("#train-preview", Static)
            preview.update(message.text)
            preview.tooltip = message.text   # whole, where a short terminal cuts it
            if newest and message.final:
                self.prepared = message.prepared   # the samples window shows these rows
