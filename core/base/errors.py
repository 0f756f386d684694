"""Errors shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input: a model id, a file, a setting. The message names what is wrong and where
    (CLI exit code 2)."""


class SaveError(Exception):
    """A save that could not be completed (disk full, size limit, permissions). The previous
    checkpoint is intact and the message says so (CLI exit code 1)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's message (a library's messages run long), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """An unexpected error as it is shown: its type and the first line of its message."""
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


def require_utf8(text: str, where: str) -> str:
    """`text` as given, or a one-line error naming `where` when it came from bytes that are not
    UTF-8 (Python keeps each such byte as a lone surrogate, which no tokenizer takes)."""
    bad = next((ch for ch in text if "\udc80" <= ch <= "\udcff"), None)
    if bad is not None:
        raise UserError(f"{where}: not valid UTF-8 (byte 0x{ord(bad) - 0xDC00:02x})")
    return text
