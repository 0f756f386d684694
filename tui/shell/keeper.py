"""The app's side of the workspace: settings restored at start and written as they change,
the history searched from the palette, and runs that ended while nobody watched announced."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import SimpleCommand
from textual.css.query import NoMatches

from core.base.errors import UserError, one_line
from core.store.database import Store
from core.store.workspace import load_settings, save_settings
from tui.render.chips import printable

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui.shell.app import RuGPTApp


class WorkspaceKeeper:
    def __init__(self, app: RuGPTApp) -> None:
        self.app = app
        self.saved, settings_problem = load_settings()
        self.problems = [p for p in (settings_problem,) if p]
        self.store: Store | None = None
        try:
            self.store = Store.open()
        except UserError as exc:   # history and runs are off; everything else works
            self.problems.append(str(exc))
        self.finished_away: dict | None = None   # the last run that ended while nobody watched
        self._save_timer: Timer | None = None
        self._changed = False     # settings changed on screen since they were last taken
        self._collected = False   # taken, not written yet

    # -- settings --------------------------------------------------------------------------

    def restore(self) -> None:
        app, saved = self.app, self.saved
        app.theme = saved.starting_theme(app.available_themes)
        app.startup.when_panes_ready(self._restore_panes)
        for problem in self.problems:   # a broken settings file, an unusable database
            app.notify(problem, title="Workspace", severity="warning", timeout=10)
        app.theme_changed_signal.subscribe(app, lambda _theme: self.schedule_save())

    def _restore_panes(self) -> None:
        self.app.generate_pane.restore(self.saved.generate)
        self.app.train_pane.restore_paths(self.saved.data)

    def schedule_save(self) -> None:
        """Settings are written a second after the first change (keystrokes meanwhile only
        mark them changed: reading every pane per key would slow typing down), and at exit."""
        self._changed = True
        if self._save_timer is None:
            self._save_timer = self.app.set_timer(1.0, self.save)

    def _collect(self) -> None:
        app, saved = self.app, self.saved
        if app.session is not None:
            saved.model = app.session.info.model
            changed = app.train_pane.changed_settings()
            if changed:
                saved.train[saved.model] = changed
            else:
                saved.train.pop(saved.model, None)
        saved.device, saved.dtype, saved.theme = app.device, app.dtype, app.theme
        saved.generate = app.generate_pane.changed_settings()
        saved.data = app.train_pane.data_paths()

    def collect_changes(self) -> None:
        """Take the settings as the panes show them now (called while the panes exist: by
        the timer, and when the app is asked to exit)."""
        if self._changed:
            try:
                self._collect()
            except NoMatches:   # the panes are already gone
                return
            self._changed = False
            self._collected = True

    def save(self) -> None:
        self._save_timer = None
        self.collect_changes()
        if not self._collected:
            return
        self._collected = False
        try:
            save_settings(self.saved)
        except OSError as exc:
            self.app.notify(f"settings not saved: {one_line(exc)}", title="Workspace", severity="warning")

    def save_pending(self) -> None:
        """At exit: settings that changed in the last second (collected when the app was
        asked to exit, while its panes were still there)."""
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = None
        if self._collected or self._changed:
            self.save()

    def toggle_on_hangup(self) -> None:
        self.saved.on_hangup = "stop" if self.saved.on_hangup == "keep" else "keep"
        self.schedule_save()
        self.app.notify("if the terminal hangs up mid-run: " + (
            "keep training to the end" if self.saved.on_hangup == "keep" else "save and stop"),
            title="On hangup")

    def toggle_notify(self) -> None:
        self.saved.notify = not self.saved.notify
        self.schedule_save()
        self.app.notify("a run that ends while you look elsewhere: " + (
            "bell and desktop notification" if self.saved.notify else "a message here only"),
            title="Notify")

    # -- history -----------------------------------------------------------------------------

    def search_history(self) -> None:
        """Every past generation in a searchable list; choosing one restores its prompt,
        settings and seed in the Generate pane."""
        app = self.app
        if self.store is None:
            app.notify("The workspace database is off: no history", severity="warning")
            return
        rows = self.store.history(limit=1000)
        if not rows:
            app.notify("No generations yet: F5 generates", title="Search history")
            return
        items = []
        for row in rows:
            text = printable(row["prompt"] + " → " + row["text"]).replace("\n", " ")
            items.append(SimpleCommand(text[:70], partial(self.restore_generation, row),
                                       f"{row['time'][:16].replace('T', ' ')} · {row['model']} · "
                                       f"seed {row['seed']}"))
        app.search_commands(items, placeholder="Search history…")

    def restore_generation(self, row: dict) -> None:
        self.app.action_show_tab("generate")
        self.app.generate_pane.restore({**row["settings"], "seed": row["seed"]}, prompt=row["prompt"])
        self.app.notify(f"prompt, settings and seed {row['seed']} restored: F5 generates it again",
                        title="Search history", timeout=4)

    # -- runs that ended while nobody watched ----------------------------------------------------

    def announce_finished_runs(self) -> None:
        """Runs that ended in another process while nobody watched (detached after a hangup,
        or started with `train`): said once, and the last one is a key away."""
        if self.store is None:
            return
        ended = self.store.unseen_ends()
        if not ended:
            return
        self.store.mark_seen([row["id"] for row in ended])
        self.finished_away = ended[-1]
        for row in ended[-3:]:
            loss = f"eval {row['eval_loss']:.2f}" if row["eval_loss"] is not None else "no eval"
            saved = f", saved to {row['out']}" if row["out"] else ""
            key = " — ctrl+e loads it, ctrl+b then compares" if row is ended[-1] and row["out"] else ""
            self.app.notify(f"run #{row['id']} finished while you were away: {row['status']}, "
                            f"{loss}{saved}{key}", title="Training", timeout=20)

    def load_finished_run(self) -> None:
        app, row = self.app, self.finished_away
        if row is None or not row["out"]:
            app.notify("No run finished while you were away", severity="warning")
            return
        if app.training():
            app.notify("Stop training first (F9)", severity="warning")
            return
        app.load_model(row["model"], trained=row["out"])
        app.notify(f"loading {row['model']} with the weights of run #{row['id']}; ctrl+b compares "
                   "before and after", title="Training")
