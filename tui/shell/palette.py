"""The app's commands in the palette (ctrl+p), by the names users and scripts rely on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from tui.shell.app import RuGPTApp


# (name, what it does, the app's action): the names are a contract (SPEC), keep them.
APP_COMMANDS = [
    ("Lesson", "The notebook's tasks step by step, checked on the loaded model (F12)", "lesson"),
    ("Load model", "Load a hub id, a model folder or the demo model", "load_model"),
    ("Toggle raw tokens", "Byte-level vocabulary pieces ↔ readable text", "toggle_raw"),
    ("Toggle token ids", "Show each token's id in the chips", "toggle_ids"),
    ("Search history", "Find a past generation and restore it (ctrl+r)", "search_history"),
    ("Toggle log scale", "The loss chart on a log scale, and back (ctrl+l)", "toggle_log_scale"),
    ("Load finished run", "The run that ended while you were away (ctrl+e)", "load_finished_run"),
    ("On hangup: keep training / save and stop", "What a run does if the terminal hangs up",
     "toggle_on_hangup"),
    ("Toggle side panels", "On a small terminal: side panels ↔ main view (ctrl+g)", "toggle_panels"),
    ("Before / after", "Same prompt and seed on base and current weights (ctrl+b)", "before_after"),
    ("Compare models", "2–4 models or runs: held-out loss and the same prompt side by side",
     "compare_models"),
    ("Reset to base weights", "Undo all training in this session", "reset_weights"),
    ("Copy", "To your clipboard (OSC 52, through SSH): the token, the generated text or the "
     "last reply of this pane (ctrl+c)", "copy"),
    ("Copy conversation", "The Chat pane's whole conversation, as Markdown", "copy_conversation"),
    ("Notify when a run ends: on / off", "Bell and desktop notification when you look elsewhere",
     "toggle_notify"),
    ("Hide notice", "Hide the notice bar under the model line (a click on it does too)",
     "hide_notice"),
]


def palette_commands(app: RuGPTApp) -> Iterable[SystemCommand]:
    for name, help_text, action in APP_COMMANDS:
        if action == "toggle_on_hangup":
            help_text += f" (now: {app.saved.on_hangup})"
        if action == "toggle_notify":
            help_text += f" (now: {'on' if app.saved.notify else 'off'})"
        yield SystemCommand(name, help_text, getattr(app, f"action_{action}"))
    yield SystemCommand("Chat", "Go to the Chat pane (F10)", lambda: app.action_show_tab("chat"))
    yield from app.generate_pane.commands()
    yield from app.train_pane.commands()
    yield from app.chat_pane.commands()
    yield from app.inside_pane.commands()
