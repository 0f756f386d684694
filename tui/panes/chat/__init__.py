"""F10 — the Chat pane, its widgets and its stored conversations."""
