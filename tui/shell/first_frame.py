"""The first moments of the app: the panes behind the first tab are mounted just after the
first frame (so it shows sooner), and keys typed before they are there are kept, in order,
and replayed once they are."""

from __future__ import annotations

import time

from textual import events


class FirstFrame:
    """Mixed into the app, which holds the four panes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._early_keys: list[events.Key] = []   # typed before the panes were mounted
        self._replaying = False

    def panes_ready(self) -> bool:
        return all(pane.is_mounted for pane in (self.generate_pane, self.train_pane, self.chat_pane))

    def when_panes_ready(self, callback) -> None:
        """Run `callback` once every pane is mounted (at once, after the first moments)."""
        if self.panes_ready():
            callback()
        else:
            self.set_timer(0.02, lambda: self.when_panes_ready(callback))

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key_at = time.monotonic()
            if self._early_keys or self._replaying or not self.panes_ready():
                # a key in the first moments: kept, in order, until every pane is there
                self._early_keys.append(event)
                if len(self._early_keys) == 1:
                    self.when_panes_ready(lambda: self.run_worker(self._replay_early_keys()))
                return
        await super().on_event(event)

    async def _replay_early_keys(self) -> None:
        self._replaying = True   # keys that come meanwhile queue up behind these
        try:
            while self._early_keys:
                await super().on_event(self._early_keys.pop(0))
        finally:
            self._replaying = False
