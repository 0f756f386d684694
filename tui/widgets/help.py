"""F1: every key of the app on one screen."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from tui.widgets.windows import Window

HELP = """\
# rugpt-tui — keys

| key | what it does |
|---|---|
| **F1** | this help (Esc closes it) |
| **F2** / **F3** / **F4** / **F10** | Tokenize / Generate / Train / Chat pane |
| **F12** | the lesson: the notebook's tasks step by step, checked on the loaded model (again: back to it, or close it) |
| **PgUp** / **PgDn** · **Enter** in the lesson | previous / next step · check the answer |
| **ctrl+f** · **ctrl+y** in the lesson | the explanation in full / folded · Русский ↔ English |
| **ctrl+p** | command palette: every command by name |
| **ctrl+q** | quit |
| **F5** | Generate (Generate pane) |
| **F6** | Stop generation (and a chat reply; Esc too, in Chat) |
| **F7** | regenerate with the same seed; in Chat, the last reply again |
| **Enter** / **ctrl+j** in Chat | send / a new line in your message |
| **↑** in Chat's empty message box | edit your last message, Enter answers it again |
| **ctrl+n** | New chat |
| **ctrl+c** | copy to your clipboard (OSC 52, through SSH and tmux): the token at the cursor, the generated text (or the token selected in it), the last reply; a selection in a text field is copied as it is |
| **ctrl+w** | what the model sees: in Chat, the rendered conversation as tokens and the context meter; in Train, the data's rows as trained (scored tokens in colour, ←/→ pages) |
| **F8** | Start training (Train pane settings) |
| **F9** | Stop training (after the current step) |
| **ctrl+s** | Save checkpoint |
| **ctrl+t** | Toggle raw tokens (byte-level pieces ↔ readable text) |
| **ctrl+o** | Toggle token ids |
| cursor in the Tokenize editor | its token is lit among the chips; id, piece and bytes under them |
| **ctrl+b** | Before / after: same prompt and seed on base and current weights (in Chat: your last message) |
| **ctrl+g** | small terminal (under 100 columns or 32 rows): side panels ↔ main view |
| **ctrl+r** | Search history: every past generation; Enter restores its prompt, settings, seed |
| **ctrl+l** | Toggle log scale of the loss chart |
| **space** in the runs list | tick a run: ticked runs are overlaid in the loss chart |
| **l** in the runs list | load that run's saved model (an adapter on its base) |
| **ctrl+e** | load the run that finished while you were away (then ctrl+b compares) |
| **F9** on another process's run | ask it to save and stop |
| **←/→** in the output | move over generated tokens: probability and alternatives |

Palette names: `Generate`, `Stop generation`, `Start training`, `Stop training`,
`Save checkpoint`, `Load model`, `Load dataset`, `Toggle raw tokens`, `Before / after`,
`Reset to base weights`, `Toggle side panels`, `Search history`, `Toggle log scale`,
`Load finished run`, `On hangup: keep training / save and stop`, `Chat`, `New chat`,
`Regenerate reply`, `Export chat`, `Rename chat`, `Delete chat`, `Search chats`,
`Toggle what the model sees`, `Hide notice`.
"""


class HelpScreen(Window):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)

    def action_dismiss(self) -> None:
        self.dismiss()
