"""F4 — the Train pane: its form, a run as the pane holds and draws it, and the runs list."""
