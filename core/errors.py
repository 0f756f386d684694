"""Errors a user can fix: shown as one line, never as a traceback (CLI exit code 2)."""


class UserError(Exception):
    """Bad input: a model id, a file, a setting. The message names what is wrong and where."""
