"""The Textual app: header, three panes, footer. The model loads on a daemon thread, so the
first frame shows before torch and transformers have even been imported, and ctrl+q quits
at once even mid-load."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Static, TabbedContent, TabPane

from tui.panes.lesson.panel import LessonPanel
from tui.panes.tokenize.pane import TokenizePane
from tui.process import guard, heap, textual_fixes
from tui.process.shutdown import DaemonWorkers
from tui.shell.actions import PaneActions
from tui.shell.clipboard import Clipboard
from tui.shell.ending import Ending
from tui.shell.first_frame import FirstFrame
from tui.shell.keeper import WorkspaceKeeper
from tui.shell.lesson_guide import LessonGuide
from tui.shell.models.loader import load_in_background
from tui.shell.palette import palette_commands
from tui.shell.windows import Windows
from tui.widgets.messages import (
    SessionChanged,
    SessionFailed,
    SessionLoaded,
    SessionNotice,
    WeightsChanged,
)

if TYPE_CHECKING:
    from core.model.session import ModelSession
    from tui.panes.train.run import TrainRun
    from tui.process.early_frame import EarlyFrame
    from tui.widgets.windows import Palette


class RuGPTApp(FirstFrame, Clipboard, Windows, PaneActions, LessonGuide, Ending, App):
    CSS_PATH = "app.tcss"
    TITLE = "rugpt-tui"
    SETTLE_QUIET_S = 0.5  # no key for this long before the heap is settled
    # The screen gets -narrow/-medium/-wide and -short/-tall: under 120 columns side panels
    # fold behind ctrl+g (beside them the settings would be cut), up to 140 they are
    # slimmer, under 32 rows the header goes and fixed heights shrink (app.tcss).
    NARROW_BELOW = 120
    WIDE_FROM = 140
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-medium"), (WIDE_FROM, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    # Priority: a focused editor must never swallow the app's keys.
    BINDINGS = [
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "show_tab('tokenize')", "Tokenize", priority=True),
        Binding("f3", "show_tab('generate')", "Generate", priority=True),
        Binding("f4", "show_tab('train')", "Train", priority=True),
        Binding("f10", "show_tab('chat')", "Chat", priority=True),
        Binding("f12", "lesson", "Lesson", priority=True),
        # F5 and F8 are listed where they act (the Generate and Train panes' hint lines), so
        # the footer keeps room for every pane's key at 80 columns
        Binding("f5", "generate", "Run", show=False, priority=True),
        Binding("f6", "stop_generation", "Stop", show=False, priority=True),
        Binding("f7", "regenerate", "Again (same seed)", show=False, priority=True),
        Binding("f8", "start_training", "Fine-tune", show=False, priority=True),
        Binding("f9", "stop_training", "Stop training", show=False, priority=True),
        Binding("ctrl+s", "save_checkpoint", "Save", show=False, priority=True),
        Binding("ctrl+b", "before_after", "Before/after", show=False, priority=True),
        Binding("ctrl+t", "toggle_raw", "Raw tokens", show=False, priority=True),
        Binding("ctrl+o", "toggle_ids", "Token ids", show=False, priority=True),
        Binding("ctrl+g", "toggle_panels", "Panels", show=False, priority=True),
        Binding("ctrl+r", "search_history", "History", show=False, priority=True),
        Binding("ctrl+l", "toggle_log_scale", "Log scale", show=False, priority=True),
        Binding("ctrl+e", "load_finished_run", "Load finished run", show=False, priority=True),
        Binding("ctrl+n", "new_chat", "New chat", show=False, priority=True),
        Binding("ctrl+w", "toggle_seen", "What the model sees", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # not a priority: a text field with a selection copies that (Textual's own), and
        # passes the key on when it has none
        Binding("ctrl+c", "copy", "Copy", show=False),
    ]

    def __init__(self, model: str | None = None, device: str | None = None, dtype: str | None = None,
                 trust_remote_code: bool = False, session: ModelSession | None = None,
                 lesson: bool = False, early_frame: EarlyFrame | None = None) -> None:
        super().__init__()
        self.early_frame = early_frame   # the terminal as the command left it (read by the driver)
        guard.install()
        textual_fixes.install()
        self.guard = guard.ErrorGuard(self)   # armed once the app is up (on_mount)
        self.thread_workers = DaemonWorkers()  # never keeps the process alive after quit
        # What the workspace remembers; a flag given on the command line wins.
        self.workspace = WorkspaceKeeper(self)
        self.saved, self.store = self.workspace.saved, self.workspace.store
        self.model_name = self.saved.starting_model(model)
        self.device = device or self.saved.device
        self.dtype = dtype or self.saved.dtype
        self.detached: TrainRun | None = None   # a run going on after the terminal hung up
        self._detach_once = threading.Lock()
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.trust_remote_code = trust_remote_code
        self.session: ModelSession | None = None
        self._preloaded = session
        self._lesson_at_start = lesson
        self.load_error: str | None = None
        # The panes, held here: a modal screen on top hides them from queries.
        self.tokenize_pane = TokenizePane(id="tokenize-pane")
        self._last_key_at = 0.0
        self._palette: Palette | None = None   # the last one opened (it may still be closing)
        self._waiting_windows: list[Screen] = []   # results that arrived while a window was open
        self._notice_text = ""                # the notice bar's text
        self._notices_hidden: set[str] = set()   # notices the user hid (not shown again)

    def get_default_screen(self) -> Screen:
        """The main screen, with its size's breakpoint classes from the start: given at the
        first resize instead, they would restyle every widget of all four panes once more
        before the first frame."""
        screen = super().get_default_screen()
        width, height = self.size
        for breakpoints, size in ((self.HORIZONTAL_BREAKPOINTS, width),
                                  (self.VERTICAL_BREAKPOINTS, height)):
            screen.add_class(max((b for b in breakpoints if b[0] <= size), default=breakpoints[0])[1])
        return screen

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="status-bar"):
            yield LoadingIndicator(id="loading")
            yield Static(f"loading {self.model_name}…", id="model-status")
        yield Static(id="notice")
        with TabbedContent(initial="tokenize", id="tabs"):
            with TabPane("Tokenize F2", id="tokenize"):
                yield self.tokenize_pane
            yield TabPane("Generate F3", id="generate")   # the panes: after the first frame
            yield TabPane("Train F4", id="train")
            yield TabPane("Chat F10", id="chat")
        yield LessonPanel(self.saved.lesson, id="lesson")
        yield Footer()

    def on_mount(self) -> None:
        self.event_loop = asyncio.get_running_loop()
        self.event_loop.set_default_executor(self.thread_workers)
        self._fit_footer()
        self.query_one("#notice").display = False
        self.query_one("#tok-input").focus()   # type at once: the Tokenize editor has the cursor
        # the other panes a moment after the first frame: keys typed by then go in first
        self.after_first_frame(lambda: self.set_timer(0.1, self.mount_other_panes))
        self.workspace.restore()
        self._show_notice(None)
        self.workspace.announce_finished_runs()
        self.screen_change_signal.subscribe(self, self._open_waiting_window)
        if self._lesson_at_start:
            self.when_panes_ready(self.open_lesson)
        if self._preloaded is not None:
            self.post_message(SessionLoaded(self._preloaded))
        else:
            self.after_first_frame(lambda: self.load_model(self.model_name))
        self.guard.armed = True

    # -- model loading -------------------------------------------------------------------

    def load_model(self, name: str, trained: str | None = None) -> None:
        """Load in the background (tui.shell.models.loader); with `trained`, that checkpoint's weights go
        on top, the model as loaded staying the "before" of before/after."""
        if self.training():   # the run holds this model: replacing it under the run is no choice
            self.notify("a run is training on this model: stop it first (F9)", title="Load model",
                        severity="warning")
            return
        self.query_one("#loading").display = True
        self.query_one("#model-status", Static).update(f"loading {name}…")
        heap.thaw()  # the model being replaced must be collectable, cycles and all
        self.train_pane.form.loading()

        load_in_background(self.post_message, name, self.device, self.dtype,
                           self.trust_remote_code, trained)

    def on_session_loaded(self, message: SessionLoaded) -> None:
        session = message.session
        self.session = session
        self.load_error = None
        self.model_name = session.info.model
        self.query_one("#loading").display = False
        self._show_model(session)
        self._show_notice(session.notice)
        self._tell_panes(SessionChanged(session, self.saved.train.get(session.info.model, {})))
        self.lesson_model_changed()
        self.schedule_save()
        self._settle_heap_when_idle()

    # -- the workspace: settings that outlive the session ---------------------------------

    @property
    def finished_away(self) -> dict | None:
        return self.workspace.finished_away

    def action_load_finished_run(self) -> None:
        self.workspace.load_finished_run()

    def action_search_history(self) -> None:
        self.workspace.search_history()

    def action_toggle_notify(self) -> None:
        self.workspace.toggle_notify()

    def action_toggle_on_hangup(self) -> None:
        self.workspace.toggle_on_hangup()

    def schedule_save(self) -> None:
        self.workspace.schedule_save()

    def on_input_changed(self) -> None:
        self.schedule_save()

    def on_switch_changed(self) -> None:
        self.schedule_save()

    def on_select_changed(self) -> None:
        self.schedule_save()

    def _tell_panes(self, message: SessionChanged | WeightsChanged) -> None:
        for pane in (self.tokenize_pane, self.generate_pane, self.train_pane, self.chat_pane):
            pane.post_message(message)

    def _show_model(self, session) -> None:
        info = session.info
        dtype = info.dtype + (" (native CPU)" if session.placement.inference_only else "")
        self.sub_title = f"{info.model} · {info.device} · {dtype} · {info.parameters:,} params"
        self.query_one("#model-status", Static).update(
            f"[b]{info.model}[/b]"
            + (f" · LoRA on {info.base_model}" if info.base_model else "")
            + f" · {info.model_class} · {info.parameters:,} params · "
            f"{info.device} {dtype} · vocab {info.vocab_size:,} · ctx {info.max_positions:,}")

    def on_weights_changed(self, message: WeightsChanged) -> None:
        if self.session is not None:   # training may have upcast them
            self._show_model(self.session)
        self._tell_panes(WeightsChanged())

    def _settle_heap_when_idle(self) -> None:
        """Once the new model's first views are up and the one it replaced is gone, collect
        and freeze the heap — at a quiet moment, never while a run is alive."""
        heap.settle_when_idle(self.set_timer, self.training,
                              lambda: time.monotonic() - self._last_key_at > self.SETTLE_QUIET_S)

    def on_unmount(self) -> None:
        self.workspace.save_pending()
        heap.thaw()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_footer(event.size.width)

    def _fit_footer(self, width: int | None = None) -> None:
        """A narrow terminal gets the compact footer, so every key in it stays readable."""
        width = self.size.width if width is None else width
        self.query_one(Footer).compact = width < self.NARROW_BELOW

    def action_toggle_panels(self) -> None:
        """Where side panels are folded away (narrow or short terminals), show them in place
        of the main view, and back."""
        self.screen.toggle_class("-panels")

    def on_session_notice(self, message: SessionNotice) -> None:
        self._show_notice(message.text)
        self.query_one("#model-status", Static).update("loading the demo model…")

    def on_session_failed(self, message: SessionFailed) -> None:
        self.load_error = message.error
        self.query_one("#loading").display = False
        status = "no model loaded" if self.session is None else f"still on {self.session.info.model}"
        self.query_one("#model-status", Static).update(
            f"[red]{message.error}[/red] — {status}; ctrl+p → Load model")
        self.notify(message.error, title="Load model", severity="error", timeout=8)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)
