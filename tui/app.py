"""The Textual app: header, three panes, footer. The model loads on a daemon thread, so the
first frame shows before torch and transformers have even been imported, and ctrl+q quits
at once even mid-load."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Static, TabbedContent, TabPane

from core import DEFAULT_MODEL
from core.errors import UserError, one_line
from core.hangup import silence_terminal
from core.workspace import error_log_path, log_error
from tui import guard, heap, textual_fixes
from tui.dialogs import (
    AskScreen,
    BeforeAfterReady,
    BeforeAfterScreen,
    QuitWhileTrainingScreen,
    compare_in_background,
)
from tui.help import HelpScreen
from tui.keeper import WorkspaceKeeper
from tui.loader import load_in_background
from tui.messages import (
    SessionChanged,
    SessionFailed,
    SessionLoaded,
    SessionNotice,
    WeightsChanged,
)
from tui.palette import palette_commands
from tui.panes.chat import ChatPane
from tui.panes.generate import GeneratePane
from tui.panes.tokenize import TokenizePane
from tui.panes.train import TrainPane
from tui.shutdown import DaemonWorkers

if TYPE_CHECKING:
    from core.session import ModelSession
    from tui.train_run import TrainRun


class RuGPTApp(App):
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
    ]

    def __init__(self, model: str | None = None, device: str | None = None, dtype: str | None = None,
                 trust_remote_code: bool = False, session: ModelSession | None = None) -> None:
        super().__init__()
        guard.install()
        textual_fixes.install()
        self.guard = guard.ErrorGuard(self)   # armed once the app is up (on_mount)
        self.thread_workers = DaemonWorkers()  # never keeps the process alive after quit
        # What the workspace remembers; a flag given on the command line wins.
        self.workspace = WorkspaceKeeper(self)
        self.saved, self.store = self.workspace.saved, self.workspace.store
        self.model_name = model or self.saved.model or DEFAULT_MODEL
        self.device = device or self.saved.device
        self.dtype = dtype or self.saved.dtype
        self.detached: TrainRun | None = None   # a run going on after the terminal hung up
        self._detach_once = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.trust_remote_code = trust_remote_code
        self.session: ModelSession | None = None
        self._preloaded = session
        self.load_error: str | None = None
        # The panes, held here: a modal screen on top hides them from queries.
        self.tokenize_pane = TokenizePane(id="tokenize-pane")
        self.generate_pane = GeneratePane(id="generate-pane")
        self.train_pane = TrainPane(id="train-pane")
        self.chat_pane = ChatPane(id="chat-pane")
        self._last_key_at = 0.0
        self._waiting_windows: list[Screen] = []   # results that arrived while a window was open
        self._notice_text = ""                # the notice bar's text
        self._notices_hidden: set[str] = set()   # notices the user hid (not shown again)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="status-bar"):
            yield LoadingIndicator(id="loading")
            yield Static(f"loading {self.model_name}…", id="model-status")
        yield Static(id="notice")
        with TabbedContent(initial="tokenize", id="tabs"):
            with TabPane("Tokenize F2", id="tokenize"):
                yield self.tokenize_pane
            with TabPane("Generate F3", id="generate"):
                yield self.generate_pane
            with TabPane("Train F4", id="train"):
                yield self.train_pane
            with TabPane("Chat F10", id="chat"):
                yield self.chat_pane
        yield Footer()

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_default_executor(self.thread_workers)
        self._fit_footer()
        self.query_one("#notice").display = False
        self.query_one("#tok-input").focus()   # type at once: the Tokenize editor has the cursor
        self.workspace.restore()
        self._show_notice(None)
        self.workspace.announce_finished_runs()
        self.screen_change_signal.subscribe(self, self._open_waiting_window)
        if self._preloaded is not None:
            self.post_message(SessionLoaded(self._preloaded))
        else:
            self.load_model(self.model_name)
        self.guard.armed = True

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last resort, which ends the app. The guard survives what it can (one
        line on screen); what it cannot ends the app with one line, never a traceback — and
        a run in progress goes on to its end detached, as after a hangup."""
        if self.guard.catches(error):
            return
        if guard.ErrorGuard.strict:
            super()._handle_exception(error)
            return
        log_error(guard.report(error, "the app ended"))
        self._return_code = 1
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        run = self.train_pane.run
        if run is not None and run.running and self.detached is None:
            self.detached = run
        self._exit_renderables.append(Text(
            f"rugpt-tui: internal error: {one_line(error)} (the traceback is in {error_log_path()})"))
        self._close_messages_no_wait()

    # -- model loading -------------------------------------------------------------------

    def load_model(self, name: str, trained: str | None = None) -> None:
        """Load in the background (tui.loader); with `trained`, that checkpoint's weights go
        on top, the model as loaded staying the "before" of before/after."""
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
        info = session.info
        self.sub_title = f"{info.model} · {info.device} · {info.dtype} · {info.parameters:,} params"
        self.query_one("#loading").display = False
        self.query_one("#model-status", Static).update(
            f"[b]{info.model}[/b]"
            + (f" · LoRA on {info.base_model}" if info.base_model else "")
            + f" · {info.model_class} · {info.parameters:,} params · "
            f"{info.device} {info.dtype} · vocab {info.vocab_size:,} · ctx {info.max_positions:,}")
        self._show_notice(session.notice)
        self._tell_panes(SessionChanged(session, self.saved.train.get(session.info.model, {})))
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

    def on_weights_changed(self, message: WeightsChanged) -> None:
        self._tell_panes(WeightsChanged())

    def _training(self) -> bool:
        """A run's objects must not be frozen: once it ends they could never be collected."""
        return self.train_pane.training

    def _settle_heap_when_idle(self) -> None:
        """Once the new model's first views are up and the one it replaced is gone, collect
        and freeze the heap — at a quiet moment, never while a run is alive."""
        heap.settle_when_idle(self.set_timer, lambda: self._training(),
                              lambda: time.monotonic() - self._last_key_at > self.SETTLE_QUIET_S)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key_at = time.monotonic()
        await super().on_event(event)

    def exit(self, *args, **kwargs) -> None:
        self.workspace.collect_changes()   # while the panes are still there
        super().exit(*args, **kwargs)

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

    def _show_notice(self, text: str | None) -> None:
        """The notice bar: what the model load said, and any workspace problem — one row
        (the whole text in its tooltip and in a notification); a click or the palette's
        `Hide notice` hides it."""
        lines = [line for line in (text, *self.workspace.problems) if line]
        notice = self.query_one("#notice", Static)
        joined = " · ".join(lines)
        if joined and joined != self._notice_text:
            self.notify(joined, title="Notice", timeout=10)
        self._notice_text = joined
        notice.update(joined + ("  ✕" if joined else ""))
        notice.tooltip = joined or None
        notice.display = bool(lines) and joined not in self._notices_hidden

    def action_hide_notice(self) -> None:
        if self._notice_text:
            self._notices_hidden.add(self._notice_text)
        self.query_one("#notice").display = False

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "notice":
            self.action_hide_notice()

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

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def action_command_palette(self) -> None:
        """One palette at a time: with a palette under another window (ctrl+b's answer
        arrived while it was open, say), ctrl+p does not open a second one."""
        if not any(isinstance(screen, CommandPalette) for screen in self.screen_stack):
            super().action_command_palette()

    def pop_screen(self) -> AwaitComplete:
        if len(self.screen_stack) <= 1:   # the main screen always stays
            return AwaitComplete.nothing()
        return super().pop_screen()

    PANE_FOCUS = {"tokenize": "#tok-input", "generate": "#gen-prompt", "train": "#train-data",
                  "chat": "#chat-input"}

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        # Focus left inside the hidden pane would pull its tab back to the front.
        focused = self.focused
        if focused is None or not any(a.id == tab for a in focused.ancestors_with_self):
            self.query_one(self.PANE_FOCUS[tab]).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "generate" and self.session is not None:
            self.generate_pane.schedule_inspect()  # weights may have changed meanwhile

    def action_generate(self) -> None:
        self.action_show_tab("generate")
        self.generate_pane.generate()

    def action_stop_generation(self) -> None:
        self.generate_pane.stop()
        self.chat_pane.stop()

    def action_regenerate(self) -> None:
        """F7: in Chat, the last reply again; elsewhere the last generation, same seed."""
        if self._active_tab() == "chat":
            self.chat_pane.regenerate()
            return
        self.action_show_tab("generate")
        self.generate_pane.regenerate()

    def _active_tab(self) -> str:
        return self.query_one("#tabs", TabbedContent).active

    def action_new_chat(self) -> None:
        self.action_show_tab("chat")
        self.chat_pane.new_chat()

    def action_toggle_seen(self) -> None:
        self.action_show_tab("chat")
        self.chat_pane.toggle_seen()

    def action_start_training(self) -> None:
        self.action_show_tab("train")
        self.train_pane.start()

    def action_stop_training(self) -> None:
        self.train_pane.stop()

    def action_save_checkpoint(self) -> None:
        self.train_pane.save_now()

    def action_before_after(self) -> None:
        session = self.session
        if session is None:
            self.notify("No model loaded yet", severity="warning")
            return
        try:   # in Chat: the conversation's last message, answered by both
            pane = self.chat_pane if self._active_tab() == "chat" else self.generate_pane
            prompt, settings = pane.request()
        except UserError as exc:
            self.notify(str(exc), title="Before / after", severity="error")
            return
        self.notify("generating on base and current weights…", title="Before / after", timeout=2)
        compare_in_background(self, session, prompt, replace(settings, seed=settings.seed or 0))

    def on_before_after_ready(self, message: BeforeAfterReady) -> None:
        """The comparison opens now — or, when another window is open (a question, the
        help), as soon as the user has closed it: a late answer never covers a question."""
        if message.result is None:
            self.notify(message.error or "no result", title="Before / after", severity="error",
                        timeout=8)
            return
        self._waiting_windows.append(BeforeAfterScreen(message.result))
        self._open_waiting_window()

    def _open_waiting_window(self, *_) -> None:
        if self._waiting_windows and len(self.screen_stack) == 1:
            self.push_screen(self._waiting_windows.pop(0))

    def action_toggle_log_scale(self) -> None:
        self.train_pane.toggle_log_scale()

    def action_reset_weights(self) -> None:
        if self.session is None:
            return
        if self._training():
            self.notify("Stop training first (F9)", severity="warning")
            return
        from core.compare import reset_to_base

        reset_to_base(self.session)
        self._tell_panes(WeightsChanged())
        self.notify("weights reset to the model as loaded", title="Reset to base weights")

    async def action_quit(self) -> None:
        pane = self.train_pane
        if not pane.training:
            self.exit()
            return
        if any(isinstance(screen, QuitWhileTrainingScreen) for screen in self.screen_stack):
            return   # already asked

        def chosen(choice: str | None) -> None:
            if choice in (None, "cancel"):
                return
            pane.stop(save=choice == "save")
            self.exit_when_stopped()

        self.push_screen(QuitWhileTrainingScreen(), chosen)

    def exit_when_stopped(self) -> None:
        """The run stops after its current step (and saves, if asked); then the app exits."""
        if self.train_pane.training:
            self.set_timer(0.05, self.exit_when_stopped)
        else:
            self.exit()

    def detach_from_terminal(self) -> None:
        """The terminal is gone (SIGHUP, or it fails with EIO). Nothing is written to
        it again; a run goes on detached to its end — or stops and saves, by the `on_hangup`
        setting — recorded as usual; the app quits and its process waits for the run.
        Called from a signal handler or the terminal driver's threads; only the first call acts."""
        if not self._detach_once.acquire(blocking=False):   # never blocks a signal handler
            return
        silence_terminal()
        run = self.train_pane.run
        if run is not None and run.running:
            self.detached = run
            if self.saved.on_hangup == "stop":
                run.control.save_on_stop = run.config.out is not None
                run.control.stop.set()
        self.call_in_loop(self.exit)

    def call_in_loop(self, callback) -> None:
        """Run `callback` on the app's event loop (signal handlers interrupt it anywhere)."""
        if self._loop is None:
            raise SystemExit(0)   # not even started: nothing to keep
        self._loop.call_soon_threadsafe(callback)

    def action_toggle_raw(self) -> None:
        pane = self.tokenize_pane
        pane.raw = not pane.raw

    def action_toggle_ids(self) -> None:
        pane = self.tokenize_pane
        pane.show_ids = not pane.show_ids

    def action_load_model(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.load_model(name)

        self.push_screen(AskScreen("Load model: hub id, model folder, or demo", self.model_name), chosen)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)
