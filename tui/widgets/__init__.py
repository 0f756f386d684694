"""Widgets and messages the panes share: setting fields, the token stream, dialogs, the
help screen, and the messages that carry results back from workers."""
