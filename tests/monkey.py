"""A seeded monkey for the real app under Pilot: random keys, palette commands, pastes and
resizes, drawn from one `random.Random(seed)`.

`Monkey.play(actions)` does a fixed number of actions and waits after each until the app
and every widget of the screen have handled it, so a seed replays the same actions in the
same order on any machine (the app's own threads — a run training, a reply streaming — still
go at their own pace). `Monkey.log` is the replay: a failure prints it.

`burst(app, *keys)` sends keys a few milliseconds apart without waiting, as a terminal sends
them when typed fast or pasted: the tests of keys that race each other use it. (Pilot's
`press` waits for the whole process to go idle after every key, which it never does while a
run trains.)"""

from __future__ import annotations

import asyncio
import random
import unicodedata

from textual import events

KEYS = ["f1", "f2", "f3", "f4", "f10", "ctrl+f", "a", "b", "k", "f5", "f6", "f7", "f8", "f9", "escape", "tab",
        "shift+tab", "up", "down", "left", "right", "enter", "space", "backspace", "delete",
        "home", "end", "pageup", "pagedown", "ctrl+g", "ctrl+b", "ctrl+w", "ctrl+n", "ctrl+r",
        "ctrl+l", "ctrl+t", "ctrl+o", "ctrl+e", "ctrl+s", "ctrl+j", "ctrl+a", "ctrl+k", "ctrl+u",
        "ctrl+c", "ctrl+v", "ctrl+z"]
WORDS = ["Привет", "мир", "кот", "0", "-1", "1e9", "abc", "nan", "/dev/null", "/dev/zero", "/tmp",
         "😀", "é", " ", "../..", "\t", "Ё" * 300, "x" * 2000]
PASTES = ["Жил-был кот. " * 200, "строка\nвторая\r\nтретья", "😀🚀👍🏽" * 50,
          "\x1b[31mred\x07\x00\x08", "\t\t  ", "/dev/zero", "x" * 20_000]
PALETTE = ["Generate", "Stop generation", "Start training", "Stop training", "Save checkpoint",
           "Load model", "Load dataset", "Toggle raw tokens", "Before / after", "Chat",
           "New chat", "Regenerate reply", "Export chat", "Search history", "Toggle log scale",
           "Reset to base weights", "Toggle side panels", "Rename chat", "Search chats"]
SIZES = [(80, 24), (90, 26), (100, 30), (120, 40), (160, 50), (250, 70), (60, 20)]
SETTLE_S = 60.0   # an action not handled in this long fails the test: the app hangs
# The characters of named keys, as a terminal's keys carry them (the rest carry none).
KEY_CHARACTERS = {"space": " ", "enter": "\r", "tab": "\t", "escape": "\x1b", "backspace": "\x7f"}


def key_event(key: str) -> events.Key:
    """The Key event a terminal's driver makes of `key`: a key name (`f1`, `ctrl+a`) or one
    character (named by its Unicode name unless it is a letter or digit, as Textual names it)."""
    if len(key) == 1:
        if key.isalnum():
            return events.Key(key, key)
        name = unicodedata.name(key, "").lower()
        return events.Key(name.replace(" ", "_").replace("-", "_") or key, key)
    return events.Key(key, KEY_CHARACTERS.get(key))


async def burst(app, *keys: str) -> None:
    """Each key as the terminal's driver delivers it, 2 ms apart, never waiting for the app."""
    for key in keys:
        app.post_message(key_event(key))
        await asyncio.sleep(0.002)


async def settled(app, timeout: float = SETTLE_S) -> None:
    """Once the app has handled every message it had, and then every widget of the screen
    has handled what it had (a key goes to the app first, which passes it on)."""
    for nodes in ([app], [app.screen, *app.screen.walk_children()]):
        done = [asyncio.Event() for _ in nodes]
        waiting = [event.wait() for node, event in zip(nodes, done) if node.call_later(event.set)]
        try:
            await asyncio.wait_for(asyncio.gather(*waiting), timeout)
        except TimeoutError:
            raise AssertionError(f"the app did not handle an action within {timeout:.0f} s") from None


class Monkey:
    def __init__(self, pilot, seed: int) -> None:
        self.pilot, self.app = pilot, pilot.app
        self.rng = random.Random(seed)
        self.log: list[str] = []

    async def play(self, actions: int) -> None:
        for _ in range(actions):
            if not self.app.is_running:
                break
            await self.step()

    async def step(self) -> None:
        r = self.rng.random()
        if r < 0.55:
            key = self.rng.choice(KEYS)
            self.log.append(key)
            await self.keys(key)
        elif r < 0.75:
            word = self.rng.choice(WORDS)
            self.log.append(repr(word[:12]))
            await self.keys(*word[:40])
        elif r < 0.85:
            text = self.rng.choice(PASTES)
            self.log.append(f"paste {text[:12]!r}")
            (self.app.focused or self.app.screen).post_message(events.Paste(text))
            await settled(self.app)
        elif r < 0.95:
            name = self.rng.choice(PALETTE)
            answer = self.rng.choice(["enter", "escape"])
            self.log.append(f"palette {name} {answer}")
            await self.keys("ctrl+p", *name, answer)
        else:
            width, height = self.rng.choice(SIZES)
            self.log.append(f"resize {width}x{height}")
            await self.pilot.resize_terminal(width, height)

    async def keys(self, *keys: str) -> None:
        """Each key as the terminal's driver delivers it, handled before the next."""
        for key in keys:
            self.app.post_message(key_event(key))
            await settled(self.app)
