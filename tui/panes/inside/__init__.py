"""ctrl+f — the Inside pane."""
