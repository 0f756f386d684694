"""Errors shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input: a model id, a file, a setting. The message names what is wrong and where
    (CLI exit code 2)."""


class SaveError(Exception):
    """A save that could not be completed (disk full, size limit, permissions). The previous
    checkpoint is intact and the message says so (CLI exit code 1)."""
