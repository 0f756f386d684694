"""Copy to the clipboard of the machine the user sits at: OSC 52 (Textual's
`copy_to_clipboard`), which a terminal passes on through SSH and tmux (`set-clipboard on`).
What is copied depends on the pane: the token at the cursor, the generated text (or the
token selected in it), the last reply — or, from the palette, the whole conversation."""

from __future__ import annotations


class Clipboard:
    """Mixed into the app (tui.shell.app.RuGPTApp), which holds the panes."""

    def action_copy(self) -> None:
        pane = {"tokenize": self.tokenize_pane, "generate": self.generate_pane,
                "chat": self.chat_pane}.get(self._active_tab())
        found = pane.copy_text() if pane is not None else None
        if found is None:
            self.notify("nothing to copy here", title="Copy", severity="warning")
            return
        self.copy(*found)

    def action_copy_conversation(self) -> None:
        text = self.chat_pane.conversation_markdown()
        if text is None:
            self.notify("no conversation yet", title="Copy", severity="warning")
            return
        self.copy("the conversation (Markdown)", text)

    def copy(self, what: str, text: str) -> None:
        self.copy_to_clipboard(text)
        lines = text.count("\n") + 1
        self.notify(f"{what}: {len(text):,} characters" + (f", {lines:,} lines" if lines > 1 else ""),
                    title="Copied to your clipboard")
