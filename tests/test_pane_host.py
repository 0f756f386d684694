"""The panes see the app only through `tui.panes.host.PaneHost`: each pane here runs in a
small app of the test's own that provides that protocol and nothing of RuGPTApp, and does
its work — and what it asks of its host is what the protocol declares."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import TextArea

from core.inference.generation import GenerationDone, generate_stream
from core.inference.sampling import SamplingSettings
from core.lesson.checks import LessonState
from tests.helpers import wait_for
from tui.widgets.messages import SessionChanged

ROOT = Path(__file__).resolve().parent.parent


class FakeHost(App):
    """A PaneHost: the session given, no workspace, and a record of what was asked."""

    def __init__(self, pane, session) -> None:
        super().__init__()
        self.pane, self.session, self.store, self.detached = pane, session, None, None
        self.asked: list[tuple] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    def on_mount(self) -> None:
        self.pane.post_message(SessionChanged(self.session, {}))

    def load_model(self, name: str, trained: str | None = None) -> None:
        self.asked.append(("load_model", name, trained))

    def show_tab(self, tab: str) -> None:
        self.asked.append(("show_tab", tab))

    def training(self) -> bool:
        return False

    def schedule_save(self) -> None:
        self.asked.append(("schedule_save",))

    def lesson_state(self) -> LessonState:
        return LessonState()


async def test_the_tokenize_pane_tokenizes_with_its_hosts_model(demo_session):
    from tui.panes.tokenize.pane import TokenizePane

    pane = TokenizePane(id="tokenize-pane")
    app = FakeHost(pane, demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#tok-input", TextArea).load_text("Привет, мир")
        ids = demo_session.tokenizer("Привет, мир")["input_ids"]
        await wait_for(pilot, lambda: pane.view is not None and pane.view.ids == ids)


async def test_the_generate_pane_generates_with_its_hosts_model(demo_session):
    from tui.panes.generate import GeneratePane

    pane = GeneratePane(id="generate-pane")
    app = FakeHost(pane, demo_session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane.query_one("#gen-prompt", TextArea).load_text("Однажды")
        pane.restore({"greedy": True, "max_new_tokens": 12})
        pane.generate()
        await wait_for(pilot, lambda: pane.run is not None and pane.run.done is not None)
        expected = next(e for e in generate_stream(demo_session, "Однажды",
                                                   SamplingSettings(greedy=True, max_new_tokens=12))
                        if isinstance(e, GenerationDone))
        assert pane.run.done.text == expected.text


def test_panes_ask_the_app_only_what_the_protocol_declares():
    """No pane reaches past the protocol: `self.app.X` in tui/panes names only Textual's own
    App, and `host(self).X` only what PaneHost declares."""
    from textual.app import App as TextualApp

    from tui.panes.host import PaneHost

    declared = {name for name in vars(PaneHost) if not name.startswith("_")}
    textual = set(dir(TextualApp)) | set(vars(TextualApp()))
    for path in sorted((ROOT / "tui" / "panes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute) or not isinstance(node.value, (ast.Attribute, ast.Call)):
                continue
            inner = node.value
            if isinstance(inner, ast.Attribute) and inner.attr == "app" \
                    and isinstance(inner.value, ast.Name) and inner.value.id == "self":
                assert node.attr in textual, f"{path.name}:{node.lineno}: self.app.{node.attr}"
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "host":
                assert node.attr in declared, f"{path.name}:{node.lineno}: host(…).{node.attr}"


def test_the_app_shadows_nothing_of_textuals_app():
    """RuGPTApp's attributes are its own: none replaces one of Textual's App, apart from the
    hooks it overrides on purpose (listed here, so a new one is a decision); its reactives
    (the sub-title) are set, as they are meant to be."""
    overridden = {"compose", "exit", "notify", "on_event", "pop_screen", "post_display_hook",
                  "search_commands", "search_themes", "get_default_screen", "get_system_commands",
                  "action_command_palette", "action_quit", "_handle_exception",
                  "BINDINGS", "CSS_PATH", "TITLE", "HORIZONTAL_BREAKPOINTS", "VERTICAL_BREAKPOINTS"}
    plain = App()
    textual = set(dir(App)) | set(vars(plain))
    source = ast.parse((ROOT / "tui" / "shell" / "app.py").read_text(encoding="utf-8"))
    assigned = {node.attr for node in ast.walk(source) if isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name)
                and node.value.id == "self"}
    from textual.reactive import Reactive

    settable = {name for name in assigned if isinstance(getattr(App, name, None), Reactive)}
    assert not (assigned - settable) & textual, sorted((assigned - settable) & textual)
    app_class = next(node for node in source.body
                     if isinstance(node, ast.ClassDef) and node.name == "RuGPTApp")
    defined = {node.name for node in app_class.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {target.id for node in app_class.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert {name for name in defined & textual if not name.startswith("__")} == overridden
