"""F2 — the Tokenize pane and its chip view."""
