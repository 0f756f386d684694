"""Copy to the clipboard of the machine the user sits at: OSC 52 (Textual's
`copy_to_clipboard`), which a terminal passes on through SSH and tmux (`set-clipboard on`).
What is copied depends on the pane: the token at the cursor, the generated text (or the
token selected in it), the last reply — or, from the palette, the whole conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.shell.app import RuGPTApp


class Clipboard:
    """Created with the app, which holds the panes."""

    def __init__(self, app: RuGPTApp) -> None:
        self.app = app

    def copy_from_pane(self) -> None:
        """ctrl+c: what the pane in front has to copy."""
        app = self.app
        panes = app.panes
        found = None
        if panes is not None:
            tab = app.active_tab()
            found = (panes.tokenize.copy_text() if tab == "tokenize" else
                     panes.generate.copy_text() if tab == "generate" else
                     panes.chat.copy_text() if tab == "chat" else
                     panes.inside.copy_text() if tab == "inside" else None)
        if found is None:
            app.notify("nothing to copy here", title="Copy", severity="warning")
            return
        self.copy(*found)

    def copy_conversation(self) -> None:
        text = self.app.chat_pane.conversation_markdown()
        if text is None:
            self.app.notify("no conversation yet", title="Copy", severity="warning")
            return
        self.copy("the conversation (Markdown)", text)

    def copy(self, what: str, text: str) -> None:
        self.app.copy_to_clipboard(text)
        lines = text.count("\n") + 1
        self.app.notify(f"{what}: {len(text):,} characters" + (f", {lines:,} lines" if lines > 1 else ""),
                        title="Copied to your clipboard")
