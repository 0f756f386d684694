"""Errors shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input: a model id, a file, a setting. The message names what is wrong and where
    (CLI exit code 2)."""


class SaveError(Exception):
    """A save that could not be completed (disk full, size limit, permissions). The previous
    checkpoint is intact and the message says so (CLI exit code 1)."""


def one_line(exc: BaseException) -> str:
    """An unexpected error as it is shown: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
