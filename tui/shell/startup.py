"""The app's start-up sequence, in the order it happens:

1. the kept frame: the last start's first frame, on the terminal before Textual has even been
   imported (`tui.process.early_frame`);
2. the first frame: Textual draws the app with the Tokenize pane; it is kept for the next
   start (the same at every start with this terminal, model and theme, unless it shows a
   notification);
3. the panes: the other panes' modules are imported and the panes built just after the first
   frame (those modules are most of the app's own import time), the model starts loading (its
   thread imports torch, which would hold the interpreter while the frame is drawn), and the
   panes are mounted a moment later, so keys typed by then go in first; what waited for them
   (the saved settings, the lesson) runs before any key reaches them;
4. the replayed keys: keys typed before anything could take them are kept, in order. Typing
   goes into the Tokenize editor as soon as it is on the screen; a key for the other panes
   (F3, the palette, …) waits for them, with every key after it. ctrl+q quits at any moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import events
from textual.binding import Binding

from tui.process import early_frame

if TYPE_CHECKING:
    from tui.panes.chat.pane import ChatPane
    from tui.panes.generate import GeneratePane
    from tui.panes.inside.pane import InsidePane
    from tui.panes.tokenize.pane import TokenizePane
    from tui.panes.train.pane import TrainPane
    from tui.shell.app import RuGPTApp

FRAME_TRIES = 10   # displays in which to find the first full frame before giving up on it


@dataclass(frozen=True)
class Panes:
    """The five panes, by the tab they sit in."""

    tokenize: TokenizePane
    generate: GeneratePane
    train: TrainPane
    chat: ChatPane
    inside: InsidePane

    def all(self) -> tuple[TokenizePane, GeneratePane, TrainPane, ChatPane, InsidePane]:
        return self.tokenize, self.generate, self.train, self.chat, self.inside


def build_panes(tokenize: TokenizePane) -> Panes:
    """Step 3's imports and widgets (the Tokenize pane is in the first frame already)."""
    from tui.panes.chat.pane import ChatPane
    from tui.panes.generate import GeneratePane
    from tui.panes.inside.pane import InsidePane
    from tui.panes.train.pane import TrainPane

    return Panes(tokenize, GeneratePane(id="generate-pane"), TrainPane(id="train-pane"),
                 ChatPane(id="chat-pane"), InsidePane(id="inside-pane"))


class Startup:
    """Created with the app; the app hands it each frame drawn and each key, and it hands
    the app its panes (`app.panes`) and its model load (`app.start_loading`)."""

    def __init__(self, app: RuGPTApp, deliver_key: Callable[[events.Key], Awaitable[None]]) -> None:
        self.app = app
        self.deliver_key = deliver_key   # the app's own handling of a key (Textual's)
        self.first_frame_out = False
        self.panes_up = False                 # mounted, and what waited for them done
        self._waiting_for_panes: list[Callable[[], object]] = []
        self._early_keys: list[events.Key] = []   # typed before anything could take them
        self._replaying = False
        self._notified_early = False   # a notification is in the first frame: not one to keep
        self._frame_tries = FRAME_TRIES   # 0 once the first frame is kept (or will not be)
        own = [b for b in app.BINDINGS if isinstance(b, Binding)
               and (b.priority or b.action.startswith("show_tab"))]
        self._quit_keys = {b.key for b in own if b.action == "quit"}
        self._pane_keys = {b.key for b in own if b.action != "quit"} | {app.COMMAND_PALETTE_BINDING}

    # -- 2. the first frame --------------------------------------------------------------

    def frame_drawn(self) -> None:
        """After each frame Textual draws (headless too)."""
        if self._frame_tries:
            self._keep_first_frame()
        if not self.first_frame_out:
            self.first_frame_out = True
            self.app.call_next(self._build_panes_and_load)

    def notified(self) -> None:
        if not self.first_frame_out:
            self._notified_early = True

    def _keep_first_frame(self) -> None:
        app = self.app
        from tui.process.terminal import HangupAwareDriver

        driver = app._driver   # private, as in notify.py: tests/test_private_names.py
        if not isinstance(driver, HangupAwareDriver):   # not a terminal's driver
            self._frame_tries = 0
            return
        width, height = app.size
        frame = driver.largest_write()
        if self._notified_early:
            self._frame_tries = 0
        elif frame is not None and len(frame) >= width * height:   # a full frame has every cell
            key = early_frame.frame_key(width, height, app.model_name, app.theme, app.lesson_at_start)
            app.call_next(early_frame.remember, key, frame)
            self._frame_tries = 0
        else:   # a display with nothing to draw yet
            self._frame_tries -= 1
        if not self._frame_tries:
            driver.stop_recording()

    # -- 3. the panes --------------------------------------------------------------------

    def _build_panes_and_load(self) -> None:
        self.app.panes = build_panes(self.app.tokenize_pane)
        self.app.start_loading()
        self.app.set_timer(0.1, self._mount_panes)

    async def _mount_panes(self) -> None:
        app = self.app
        assert app.panes is not None   # built in the step before
        main = app.screen_stack[0]
        for tab, pane in (("generate", app.panes.generate), ("train", app.panes.train),
                          ("chat", app.panes.chat), ("inside", app.panes.inside)):
            tab_pane = main.query_one(f"#{tab}")
            if not tab_pane.is_attached:   # the app quit in its first moments: nowhere to mount
                return
            await tab_pane.mount(pane)
        self.panes_up = True
        waiting, self._waiting_for_panes = self._waiting_for_panes, []
        for callback in waiting:
            callback()

    def when_panes_ready(self, callback: Callable[[], object]) -> None:
        """Run `callback` once every pane is mounted (at once, after the first moments)."""
        if self.panes_up:
            callback()
        else:
            self._waiting_for_panes.append(callback)

    # -- 4. keys typed meanwhile ---------------------------------------------------------

    def holds(self, key: events.Key) -> bool:
        """Whether `key` is kept for later (with every key after it, in order)."""
        if self._early_keys or self._replaying or not self._ready_for(key):
            self._early_keys.append(key)
            if len(self._early_keys) == 1 and not self._replaying:
                self.app.run_worker(self._replay_early_keys())
            return True
        return False

    def _ready_for(self, key: events.Key) -> bool:
        if key.key in self._quit_keys:
            return True
        if not self.first_frame_out:   # the editor gets the focus as it is mounted
            return False
        return key.key not in self._pane_keys or self.panes_up

    async def _replay_early_keys(self) -> None:
        self._replaying = True   # keys that come meanwhile queue up behind these
        try:
            while self._early_keys:
                if self._ready_for(self._early_keys[0]):
                    await self.deliver_key(self._early_keys.pop(0))
                else:
                    await asyncio.sleep(0.02)
        finally:
            self._replaying = False
