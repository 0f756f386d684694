"""How a token looks as a chip, shared by the Tokenize pane and `rugpt-tui tokenize`.
(No Textual here: the headless CLI uses it too.)"""

CHIP_STYLES = ("on #264f78", "on #4b3a6b")   # alternating, so neighbouring tokens stand apart
SPECIAL_STYLE = "bold on #7a3b3b"


def chip_label(tok, raw: bool) -> str:
    """The vocabulary piece (raw), or the text it stands for with visible spaces and line
    breaks; a token holding only part of a character shows its bytes, e.g. ‹d0›."""
    if raw or tok.special:
        return tok.raw
    if tok.text:
        return tok.text.replace("\n", "↵\n").replace(" ", "·")
    return f"‹{tok.bytes}›"


def chip_style(index: int, tok) -> str:
    return SPECIAL_STYLE if tok.special else CHIP_STYLES[index % 2]
