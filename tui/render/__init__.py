"""Tokens and text as rich text — chips, control characters made visible — for the app and
the command line alike (no Textual here)."""
