"""F1: every key of the app, the ones that matter most first (quit, the palette, the panes,
this help), then grouped by pane. The key column never wraps, so at 80×24 the first screen
already holds quit and the palette; the rest scrolls (↑/↓, PgUp/PgDn)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.widgets.windows import Window

# (group, [(keys, what they do)]): the first group is what a new user needs first.
KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Everywhere", [
        ("ctrl+q", "quit (asks first while a run trains)"),
        ("ctrl+p", "command palette: every command by name"),
        ("F2 F3 F4 F10", "Tokenize · Generate · Train · Chat pane"),
        ("ctrl+f", "Inside pane: what each block of the model predicts next (the logit lens); "
                   "in the lesson's field, the step's whole text"),
        ("F1", "this help (Esc closes it)"),
        ("F12", "the lesson: the notebook's tasks step by step, checked on the loaded "
                "model (again: back to it, or close it)"),
        ("ctrl+c", "copy to your clipboard (OSC 52, through SSH and tmux): the token at the "
                   "cursor, the generated text or the token selected in it, the last reply; "
                   "a selection in a text field is copied as it is"),
        ("ctrl+g", "small terminal (under 120 columns or 32 rows): side panels ↔ main view"),
        ("ctrl+b", "before / after: the same prompt and seed on the base and the current "
                   "weights (in Chat: your last message)"),
        ("ctrl+r", "search history: every past generation; Enter restores its prompt, "
                   "settings and seed"),
        ("ctrl+e", "load the run that finished while you were away (then ctrl+b compares)"),
    ]),
    ("Tokenize", [
        ("cursor", "its token is lit among the chips; id, piece and bytes under them"),
        ("ctrl+t", "raw tokens: byte-level pieces ↔ readable text"),
        ("ctrl+o", "token ids in the chips"),
    ]),
    ("Generate", [
        ("F5", "generate"),
        ("F6", "stop generation (and a chat reply)"),
        ("F7", "again with the same seed"),
        ("←/→", "in the output: move over generated tokens, their probability and the "
                "alternatives"),
    ]),
    ("Train", [
        ("F8", "start training with the pane's settings; while a run goes, queue it as the "
               "next run; a field with several values (1e-4, 3e-4) queues a sweep"),
        ("ctrl+u", "the queue: reorder, remove, pause after the current run; a sweep's table"),
        ("F9", "stop training after the current step; on another process's run, ask it to "
               "save and stop"),
        ("ctrl+s", "save a checkpoint"),
        ("ctrl+l", "the loss chart on a log scale, and back"),
        ("ctrl+w", "the data's rows as trained (scored tokens in colour, ←/→ pages)"),
        ("space", "in the runs list: tick a run; ticked runs are overlaid in the chart"),
        ("l", "in the runs list: load that run's saved model (an adapter on its base)"),
    ]),
    ("Chat", [
        ("Enter", "send"),
        ("ctrl+j", "a new line in your message"),
        ("↑", "in the empty message box: edit your last message, Enter answers it again"),
        ("F7", "the last reply again"),
        ("F6 Esc", "stop the reply"),
        ("ctrl+n", "new chat"),
        ("ctrl+w", "what the model sees: the rendered conversation as tokens, the context "
                   "meter"),
    ]),
    ("Lesson", [
        ("PgUp PgDn", "previous / next step"),
        ("Enter", "check the answer"),
        ("Esc", "go to the step's pane (F12 comes back)"),
        ("ctrl+f", "the explanation in full / folded"),
        ("ctrl+y", "Русский ↔ English"),
    ]),
]

PALETTE_NAMES = (
    "Generate, Stop generation, Start training, Stop training, Save checkpoint, Load model, "
    "Load dataset, Toggle raw tokens, Before / after, Reset to base weights, Toggle side "
    "panels, Search history, Toggle log scale, Load finished run, On hangup: keep training / "
    "save and stop, Chat, New chat, Regenerate reply, Export chat, Rename chat, Delete chat, "
    "Search chats, Toggle what the model sees, Compare models, Copy, Hide notice, Lesson")
KEY_WIDTH = max(len(keys) for _, rows in KEYS for keys, _ in rows)


def help_table() -> Group:
    parts: list = [Text("rugpt-tui — keys", style="bold")]
    for group, rows in KEYS:
        table = Table(title=group, title_justify="left", title_style="bold", show_header=False,
                      box=None, padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, width=KEY_WIDTH, style="bold yellow")
        table.add_column(ratio=1)
        for keys, what in rows:
            table.add_row(keys, what)
        parts.append(table)
    parts.append(Text.assemble(("Palette (ctrl+p), by name: ", "bold"), PALETTE_NAMES))
    return Group(*parts)


class HelpScreen(Window):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_table(), id="help-keys")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()   # ↑/↓ and PgUp/PgDn scroll it
