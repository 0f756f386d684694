"""Loading a model without ever blocking the UI: on a daemon thread (`from_pretrained` cannot
be interrupted, and a daemon thread never keeps the process alive after quit); the outcome
comes back to the app as a message."""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual.message import Message

from core.base.errors import UserError, one_line
from tui.widgets.messages import SessionFailed, SessionLoaded, SessionNotice


def load_in_background(post: Callable[[Message], object], name: str, device: str, dtype: str,
                       trust_remote_code: bool, trained: str | None = None) -> None:
    """Load `name` and `post` SessionLoaded (or SessionFailed, one line); with `trained`,
    that checkpoint's weights go on top, the model as loaded staying the "before"."""
    def load() -> None:
        try:
            from core.model.weights import load_with_weights

            session = load_with_weights(name, trained, device=device, dtype=dtype,
                                        trust_remote_code=trust_remote_code,
                                        on_notice=lambda text: post(SessionNotice(text)))
        except UserError as exc:
            post(SessionFailed(str(exc), name))
        except Exception as exc:  # never a traceback on screen
            post(SessionFailed(one_line(exc), name))
        else:
            try:  # build the Tokenize view's tables here rather than on the UI thread
                from core.tokens.view import tokenize_view

                tokenize_view(session.tokenizer, "")
            except Exception:
                pass  # the pane reports any real problem when it tokenizes
            post(SessionLoaded(session))

    threading.Thread(target=load, name="model-load", daemon=True).start()
