"""The four panes, each on its own: they talk to the app by messages and never import each
other."""
