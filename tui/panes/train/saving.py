"""ctrl+s with no run going: the model as it is now saved to the output folder, on a worker,
under the rule every model write follows; how it went said in a notification."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.base.errors import SaveError, UserError, one_line
from core.model.checkpoint import save_locked

if TYPE_CHECKING:
    from textual.app import App

    from core.model.session import ModelSession


def save_loaded_model(app: App, session: ModelSession, out: str) -> None:
    app.run_worker(lambda: _save(app, session, out), thread=True, group="save")


def _save(app: App, session: ModelSession, out: str) -> None:
    try:
        with session.lock:
            save_locked(out, session.model, session.tokenizer,
                        {"step": 0, "note": "saved from the app"}, adapter=session.adapter)
    except Exception as exc:   # one line; the app and the previous save stay
        message = str(exc) if isinstance(exc, (UserError, SaveError)) else one_line(exc)
        app.notify(message, title="Save checkpoint", severity="error", timeout=8)   # thread-safe
        return
    app.notify(f"saved to {out}", title="Save checkpoint", timeout=5)
