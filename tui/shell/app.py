"""The Textual app: a header, the model line, five panes in tabs (Tokenize, Generate, Train,
Chat, Inside), the lesson beside them, the footer. The app owns its state; what it does beyond
holding the panes is done by small objects it creates and hands itself to: the start-up
sequence (tui.shell.startup), the windows and notice bar, the clipboard, the lesson guide,
the keys that act on panes, the workspace keeper and the ending. The panes see the app
through `tui.panes.host.PaneHost`.

The model loads on a daemon thread, so the first frame shows before torch and transformers
have even been imported, and ctrl+q quits at once even mid-load. The module is long because
the key bindings, the actions they name and the Textual hooks all belong to the one App class."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import Footer, Header, LoadingIndicator, Static, TabbedContent, TabPane

from tui.panes.lesson.panel import LessonPanel, LessonStepShown
from tui.panes.tokenize.pane import TokenizePane
from tui.process import guard, heap, textual_fixes
from tui.process.shutdown import DaemonWorkers
from tui.shell.actions import PaneKeys
from tui.shell.clipboard import Clipboard
from tui.shell.ending import Ending
from tui.shell.keeper import WorkspaceKeeper
from tui.shell.lesson_guide import LessonGuide
from tui.shell.models.loader import load_in_background
from tui.shell.palette import palette_commands
from tui.shell.startup import Panes, Startup
from tui.shell.windows import Windows
from tui.widgets.dialogs import BeforeAfterReady
from tui.widgets.messages import (
    SessionChanged,
    SessionFailed,
    SessionLoaded,
    SessionNotice,
    WeightsChanged,
)

if TYPE_CHECKING:
    from textual.command import CommandListItem

    from core.lesson.checks import LessonState
    from core.model.session import ModelSession
    from tui.panes.chat.pane import ChatPane
    from tui.panes.generate import GeneratePane
    from tui.panes.host import PaneHost
    from tui.panes.inside.pane import InsidePane
    from tui.panes.train.pane import TrainPane
    from tui.panes.train.run import TrainRun
    from tui.process.early_frame import EarlyFrame


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
        # F11 is many terminals' own full-screen key: ctrl+f reaches the app everywhere. Not a
        # priority: in the lesson's field it unfolds the step's text
        Binding("ctrl+f", "show_tab('inside')", "Inside", show=False),
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
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.trust_remote_code = trust_remote_code
        self.session: ModelSession | None = None
        self.preloaded = session
        self.lesson_at_start = lesson
        self.load_error: str | None = None
        self.last_key_at = 0.0
        # The panes, held here: a modal screen on top hides them from queries. The Tokenize
        # pane is in the first frame; the others are built just after it (tui.shell.startup).
        self.tokenize_pane = TokenizePane(id="tokenize-pane")
        self.panes: Panes | None = None
        self.startup = Startup(self, deliver_key=super().on_event)
        self.windows = Windows(self)
        self.copier = Clipboard(self)
        self.lesson = LessonGuide(self)
        self.keys = PaneKeys(self)
        self.ending = Ending(self)

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
            yield TabPane("Inside ^F", id="inside")
        yield LessonPanel(self.saved.lesson, id="lesson")
        yield Footer()

    def on_mount(self) -> None:
        self.event_loop = asyncio.get_running_loop()
        self.event_loop.set_default_executor(self.thread_workers)
        self._fit_footer()
        self.query_one("#notice").display = False
        self.query_one("#tok-input").focus()   # type at once: the Tokenize editor has the cursor
        self.workspace.restore()
        self.windows.show_notice(None)
        self.workspace.announce_finished_runs()
        self.screen_change_signal.subscribe(self, self.windows.open_waiting)
        if self.lesson_at_start:
            self.startup.when_panes_ready(self.lesson.open)
        self.guard.armed = True

    # -- the start-up sequence's hooks (tui.shell.startup) --------------------------------

    def post_display_hook(self) -> None:
        """Textual calls this after each frame it draws (headless too)."""
        super().post_display_hook()
        self.startup.frame_drawn()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.last_key_at = time.monotonic()
            if self.startup.holds(event):
                return
        await super().on_event(event)

    def notify(self, *args, **kwargs) -> None:
        self.startup.notified()
        super().notify(*args, **kwargs)

    def start_loading(self) -> None:
        """Step 3 of the start-up: the model the app was started on, or the one it was given."""
        if self.preloaded is not None:
            self.post_message(SessionLoaded(self.preloaded))
        else:
            self.load_model(self.model_name)

    # -- the panes -------------------------------------------------------------------------

    def _built_panes(self) -> Panes:
        if self.panes is None:
            raise RuntimeError("the panes are built just after the first frame")
        return self.panes

    @property
    def generate_pane(self) -> GeneratePane:
        return self._built_panes().generate

    @property
    def train_pane(self) -> TrainPane:
        return self._built_panes().train

    @property
    def chat_pane(self) -> ChatPane:
        return self._built_panes().chat

    @property
    def inside_pane(self) -> InsidePane:
        return self._built_panes().inside

    def panes_ready(self) -> bool:
        return self.startup.panes_up

    def training_run(self) -> TrainRun | None:
        """The Train pane's run, if any — asked without the pane being built (no run can have
        started before it exists), so a signal handler or the driver's thread may ask."""
        return None if self.panes is None else self.panes.train.run

    def training(self) -> bool:
        run = self.training_run()
        return run is not None and run.running

    def tell_panes(self, message: SessionChanged | WeightsChanged) -> None:
        for pane in self._built_panes().all():
            pane.post_message(message)

    # -- what a pane may ask of the app (tui.panes.host.PaneHost) ----------------------------

    def show_tab(self, tab: str) -> None:
        self.keys.show_tab(tab)

    def active_tab(self) -> str:
        return self.keys.active_tab()

    def lesson_state(self) -> LessonState:
        return self.lesson.state()

    def schedule_save(self) -> None:
        self.workspace.schedule_save()

    def load_model(self, name: str, trained: str | None = None) -> None:
        """Load in the background (tui.shell.models.loader); with `trained`, that checkpoint's
        weights go on top, the model as loaded staying the "before" of before/after."""
        if self.training():   # the run holds this model: replacing it under the run is no choice
            self.notify("a run is training on this model: stop it first (F9)", title="Load model",
                        severity="warning")
            return
        self.query_one("#loading").display = True
        self.query_one("#model-status", Static).update(f"loading {name}…")
        heap.thaw()  # the model being replaced must be collectable, cycles and all
        self.train_pane.form.model_loading()
        load_in_background(self.post_message, name, self.device, self.dtype,
                           self.trust_remote_code, trained)

    # -- the model -------------------------------------------------------------------------

    def on_session_loaded(self, message: SessionLoaded) -> None:
        session = message.session
        self.session = session
        self.load_error = None
        self.model_name = session.info.model
        self.query_one("#loading").display = False
        self._show_model(session)
        self.windows.show_notice(session.notice)
        self.tell_panes(SessionChanged(session, self.saved.train.get(session.info.model, {})))
        self.lesson.model_changed()
        self.schedule_save()
        self._settle_heap_when_idle()

    def _show_model(self, session: ModelSession) -> None:
        info = session.info
        dtype = info.dtype + (" (native CPU)" if session.placement.inference_only else "")
        if session.knocked_out:   # the model is not itself: said where the model is named
            from core.inference.inside import heads_text

            dtype += f" · heads out: {heads_text(session.knocked_out)}"
        self.sub_title = f"{info.model} · {info.device} · {dtype} · {info.parameters:,} params"
        self.query_one("#model-status", Static).update(
            f"[b]{info.model}[/b]"
            + (f" · LoRA on {info.base_model}" if info.base_model else "")
            + f" · {info.model_class} · {info.parameters:,} params · "
            f"{info.device} {dtype} · vocab {info.vocab_size:,} · ctx {info.max_positions:,}")

    def on_weights_changed(self, message: WeightsChanged) -> None:
        if self.session is not None:   # training may have upcast them
            self._show_model(self.session)
        self.tell_panes(WeightsChanged())

    def on_session_notice(self, message: SessionNotice) -> None:
        self.windows.show_notice(message.text)
        self.query_one("#model-status", Static).update("loading the demo model…")

    def on_session_failed(self, message: SessionFailed) -> None:
        self.load_error = message.error
        self.query_one("#loading").display = False
        status = "no model loaded" if self.session is None else f"still on {self.session.info.model}"
        self.query_one("#model-status", Static).update(
            f"[red]{message.error}[/red] — {status}; ctrl+p → Load model")
        self.notify(message.error, title="Load model", severity="error", timeout=8)

    def _settle_heap_when_idle(self) -> None:
        """Once the new model's first views are up and the one it replaced is gone, collect
        and freeze the heap — at a quiet moment, never while a run is alive."""
        heap.settle_when_idle(self.set_timer, self.training,
                              lambda: self.quiet_for(self.SETTLE_QUIET_S))

    def quiet_for(self, seconds: float) -> bool:
        """No key has come for `seconds`."""
        return time.monotonic() - self.last_key_at > seconds

    # -- Textual's hooks -------------------------------------------------------------------

    def on_input_changed(self) -> None:
        self.schedule_save()

    def on_switch_changed(self) -> None:
        self.schedule_save()

    def on_select_changed(self) -> None:
        self.schedule_save()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "generate" and self.session is not None:
            self.generate_pane.schedule_inspect()  # weights may have changed meanwhile

    def on_lesson_step_shown(self, message: LessonStepShown) -> None:
        self.lesson.step_shown(message.step)

    def on_before_after_ready(self, message: BeforeAfterReady) -> None:
        self.windows.before_after_ready(message)

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "notice":
            self.windows.hide_notice()

    def on_unmount(self) -> None:
        self.workspace.save_pending()
        heap.thaw()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_footer(event.size.width)

    def _fit_footer(self, width: int | None = None) -> None:
        """A narrow terminal gets the compact footer, so every key in it stays readable."""
        width = self.size.width if width is None else width
        self.query_one(Footer).compact = width < self.NARROW_BELOW

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self)

    def pop_screen(self) -> AwaitComplete:
        if len(self.screen_stack) <= 1:   # the main screen always stays
            return AwaitComplete.nothing()
        return super().pop_screen()

    def search_commands(self, commands: Sequence[CommandListItem],
                        placeholder: str = "Search for commands…") -> AwaitMount:
        """Textual's own command lists (`Keys`, say) and the history, in the app's palette."""
        return self.windows.search_commands(commands, placeholder)

    def search_themes(self) -> None:
        """Textual's `Theme` command, in the app's palette."""
        self.windows.search_themes()

    def exit(self, *args, **kwargs) -> None:
        self.workspace.collect_changes()   # while the panes are still there
        super().exit(*args, **kwargs)

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last resort, which ends the app (a private hook: Textual has no public
        one for an error that escapes a worker or a render; tests/test_private_names.py)."""
        if not self.ending.fatal(error):
            super()._handle_exception(error)

    # -- how it ends (tui.shell.ending), from signal handlers and the driver ------------------

    def detach_from_terminal(self) -> None:
        self.ending.detach_from_terminal()

    def terminate(self) -> None:
        self.ending.terminate()

    @property
    def detached(self) -> TrainRun | None:
        return self.ending.detached

    # -- the actions the keys and the palette name --------------------------------------------

    def action_help(self) -> None:
        self.windows.toggle_help()

    def action_command_palette(self) -> None:
        self.windows.open_palette()

    def action_show_tab(self, tab: str) -> None:
        self.keys.show_tab(tab)

    def action_lesson(self) -> None:
        self.lesson.toggle()

    def action_generate(self) -> None:
        self.keys.after_typing(self.keys.generate)

    def action_stop_generation(self) -> None:
        self.keys.stop_generation()

    def action_regenerate(self) -> None:
        self.keys.after_typing(self.keys.regenerate)

    def action_new_chat(self) -> None:
        self.keys.new_chat()

    def action_toggle_seen(self) -> None:
        self.keys.toggle_seen()

    def action_start_training(self) -> None:
        self.keys.after_typing(self.keys.start_training)

    def action_stop_training(self) -> None:
        self.train_pane.stop()

    def action_save_checkpoint(self) -> None:
        self.train_pane.save_now()

    def action_before_after(self) -> None:
        self.keys.after_typing(self.keys.before_after)

    def action_reset_weights(self) -> None:
        self.keys.reset_weights()

    def action_toggle_log_scale(self) -> None:
        self.train_pane.toggle_log_scale()

    def action_toggle_raw(self) -> None:
        self.tokenize_pane.raw = not self.tokenize_pane.raw

    def action_toggle_ids(self) -> None:
        self.tokenize_pane.show_ids = not self.tokenize_pane.show_ids

    def action_toggle_panels(self) -> None:
        """Where side panels are folded away (narrow or short terminals), show them in place
        of the main view, and back."""
        self.screen.toggle_class("-panels")

    def action_copy(self) -> None:
        self.copier.copy_from_pane()

    def action_copy_conversation(self) -> None:
        self.copier.copy_conversation()

    def action_hide_notice(self) -> None:
        self.windows.hide_notice()

    def action_load_model(self) -> None:
        self.windows.pick_model()

    def action_compare_models(self, runs: tuple[int, ...] = ()) -> None:
        self.windows.compare_models(runs)

    def action_load_finished_run(self) -> None:
        self.workspace.load_finished_run()

    def action_search_history(self) -> None:
        self.workspace.search_history()

    def action_toggle_notify(self) -> None:
        self.workspace.toggle_notify()

    def action_toggle_on_hangup(self) -> None:
        self.workspace.toggle_on_hangup()

    async def action_quit(self) -> None:
        self.ending.quit()


if TYPE_CHECKING:   # the app gives its panes what tui.panes.host declares
    _: type[PaneHost] = RuGPTApp
