"""The first moments of the app. The panes behind the first tab are imported, built and
mounted, and the model starts loading, just after the first frame (so it shows sooner: those
modules are most of the app's own import time, and the loading thread imports torch, which
would hold the interpreter while the frame is drawn). Keys typed before there
is anything to take them are kept, in order: typing goes into the Tokenize editor as soon as
it is on the screen, a key for the other panes (F3, the palette, …) waits for them, with
every key after it. The first frame is kept for the next start to draw before Textual has
even been imported (`tui.process.early_frame`)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from textual import events
from textual.binding import Binding

from tui.process import early_frame

if TYPE_CHECKING:
    from tui.panes.chat.pane import ChatPane
    from tui.panes.generate import GeneratePane
    from tui.panes.train.pane import TrainPane
    from tui.panes.train.run import TrainRun

FRAME_TRIES = 10   # displays in which to find the first full frame before giving up on it


class FirstFrame:
    """Mixed into the app, which holds the four panes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.other_panes: dict | None = None   # by tab id: built after the first frame
        self._panes_up = False                 # mounted, and what waited for them done
        self._waiting_for_panes: list = []
        self._early_keys: list[events.Key] = []   # typed before anything could take them
        self._replaying = False
        self._after_first_frame: list | None = []   # None once the first frame is out
        self._notified_early = False   # a notification is in the first frame: not one to keep
        self._frame_tries = FRAME_TRIES   # 0 once the first frame is kept (or will not be)
        # the app's own keys (F-keys, …) act on panes that may not be there yet; ctrl+q quits
        own = [b for b in self.BINDINGS if isinstance(b, Binding) and b.priority]
        self._quit_keys = {b.key for b in own if b.action == "quit"}
        self._pane_keys = {b.key for b in own if b.action != "quit"} | {self.COMMAND_PALETTE_BINDING}

    # -- the first frame -----------------------------------------------------------------

    def after_first_frame(self, callback) -> None:
        """Run `callback` once the first frame has been drawn (at once if it has)."""
        if self._after_first_frame is None:
            callback()
        else:
            self._after_first_frame.append(callback)

    def post_display_hook(self) -> None:
        """Textual calls this after each frame it draws (headless too)."""
        super().post_display_hook()
        if self._frame_tries:
            self._keep_first_frame()
        if self._after_first_frame is not None:
            waiting, self._after_first_frame = self._after_first_frame, None
            for callback in waiting:
                self.call_next(callback)

    def notify(self, *args, **kwargs) -> None:
        if self._after_first_frame is not None:
            self._notified_early = True
        super().notify(*args, **kwargs)

    def _keep_first_frame(self) -> None:
        """Keep the first full frame drawn for the next start — the same at every start with
        this terminal, model and theme, unless it shows a notification (news only once)."""
        driver = self._driver   # private, as in notify.py: tests/test_private_names.py
        if not hasattr(driver, "largest_write"):   # not a terminal's driver
            self._frame_tries = 0
            return
        width, height = self.size
        frame = driver.largest_write()
        if self._notified_early:
            self._frame_tries = 0
        elif frame is not None and len(frame) >= width * height:   # a full frame has every cell
            key = early_frame.frame_key(width, height, self.model_name, self.theme,
                                        self._lesson_at_start)
            self.call_next(early_frame.remember, key, frame)
            self._frame_tries = 0
        else:   # a display with nothing to draw yet
            self._frame_tries -= 1
        if not self._frame_tries:
            driver.stop_recording()

    # -- the panes mounted after it ------------------------------------------------------

    @property
    def generate_pane(self) -> GeneratePane:
        return self._other_panes()["generate"]

    @property
    def train_pane(self) -> TrainPane:
        return self._other_panes()["train"]

    @property
    def chat_pane(self) -> ChatPane:
        return self._other_panes()["chat"]

    def _other_panes(self) -> dict:
        """The panes behind the first tab, by their tab's id: built when first asked for —
        just after the first frame (`mount_other_panes`), or sooner by whoever needs one."""
        if self.other_panes is None:
            from tui.panes.chat.pane import ChatPane
            from tui.panes.generate import GeneratePane
            from tui.panes.train.pane import TrainPane

            self.other_panes = {"generate": GeneratePane(id="generate-pane"),
                                "train": TrainPane(id="train-pane"), "chat": ChatPane(id="chat-pane")}
        return self.other_panes

    def training_run(self) -> TrainRun | None:
        """The Train pane's run, if any — asked without building the pane (no run can have
        started before it exists), so a signal handler or the driver's thread may ask."""
        return None if self.other_panes is None else self.other_panes["train"].run

    def training(self) -> bool:
        run = self.training_run()
        return run is not None and run.running

    async def mount_other_panes(self) -> None:
        """Mount the other panes, then run what waited for them (the saved settings put in,
        the lesson opened) before any key can reach them."""
        main = self.screen_stack[0]
        for tab, pane in self._other_panes().items():
            await main.query_one(f"#{tab}").mount(pane)
        self._panes_up = True
        waiting, self._waiting_for_panes = self._waiting_for_panes, []
        for callback in waiting:
            callback()

    def panes_ready(self) -> bool:
        return self._panes_up

    def when_panes_ready(self, callback) -> None:
        """Run `callback` once every pane is mounted (at once, after the first moments)."""
        if self.panes_ready():
            callback()
        else:
            self._waiting_for_panes.append(callback)

    # -- keys typed meanwhile ------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key_at = time.monotonic()
            if self._early_keys or self._replaying or not self._ready_for(event):
                # kept, with every key after it, in order, until something can take it
                self._early_keys.append(event)
                if len(self._early_keys) == 1 and not self._replaying:
                    self.run_worker(self._replay_early_keys())
                return
        await super().on_event(event)

    def _ready_for(self, key: events.Key) -> bool:
        """ctrl+q quits at any moment. Nothing else takes keys before the first frame (the
        editor gets the focus as it is mounted); after it, typing goes into the Tokenize
        editor, while a key that acts on the other panes waits for them."""
        if key.key in self._quit_keys:
            return True
        if self._after_first_frame is not None:
            return False
        return key.key not in self._pane_keys or self.panes_ready()

    async def _replay_early_keys(self) -> None:
        self._replaying = True   # keys that come meanwhile queue up behind these
        try:
            while self._early_keys:
                if self._ready_for(self._early_keys[0]):
                    await super().on_event(self._early_keys.pop(0))
                else:
                    await asyncio.sleep(0.02)
        finally:
            self._replaying = False
