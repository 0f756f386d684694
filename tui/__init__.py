"""The faces of rugpt-tui: the Textual app and the command line. Both talk to `core` only."""
