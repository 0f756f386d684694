"""The Textual app around the panes: starting it, loading a model in the background, the
workspace's settings and history, the palette, its windows and notice bar, and how it ends
(ctrl+q, a hangup, an error it cannot survive)."""
