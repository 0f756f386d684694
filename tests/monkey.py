"""A seeded monkey for the real app under Pilot: random keys, palette commands, pastes and
resizes. Every action is drawn from one `random.Random(seed)`, so a failing seed replays
(the timing of the app's own threads may still differ from run to run).

Keys go straight to the app's driver, a few milliseconds apart, as a terminal sends them:
`Pilot.press` waits for the whole app to be idle after every key, which a training run
never is, and would never show the races of keys that come in bursts."""

from __future__ import annotations

import asyncio
import random
import time
import unicodedata

from textual import events
from textual.geometry import Size
from textual.keys import _character_to_key, _get_unicode_name_from_key

KEYS = ["f1", "f2", "f3", "f4", "f10", "f5", "f6", "f7", "f8", "f9", "escape", "tab",
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


class Monkey:
    def __init__(self, pilot, seed: int) -> None:
        self.pilot, self.app = pilot, pilot.app
        self.rng = random.Random(seed)
        self.log: list[str] = []

    async def play(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.app.is_running:
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
        elif r < 0.95:
            name = self.rng.choice(PALETTE)
            answer = self.rng.choice(["enter", "escape"])
            self.log.append(f"palette {name} {answer}")
            await self.keys("ctrl+p")
            await asyncio.sleep(0.2)
            await self.keys(*name)
            await asyncio.sleep(0.2)
            await self.keys(answer)
        else:
            width, height = self.rng.choice(SIZES)
            self.log.append(f"resize {width}x{height}")
            size = Size(width, height)
            self.app._driver._size = size   # the headless driver's terminal
            self.app.post_message(events.Resize(size, size))
        await asyncio.sleep(self.rng.uniform(0.005, 0.06))

    async def keys(self, *keys: str) -> None:
        """Each key as the terminal's driver delivers it, 2 ms apart."""
        for key in keys:
            if len(key) == 1:   # a character: its key name, the character itself
                key, char = _character_to_key(key), key
            else:
                try:
                    char = unicodedata.lookup(_get_unicode_name_from_key(key))
                except KeyError:
                    char = None
            self.app._driver.send_message(events.Key(key, char))
            await asyncio.sleep(0.002)
