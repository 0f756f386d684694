"""F3 — the Generate pane: prompt, sampling settings, a token stream tinted by probability,
the why of every token, a look at the next-token distribution, and this session's history."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from core.base.errors import UserError, one_line
from core.base.settings import SAMPLING_SETTINGS
from tui.panes.host import host
from tui.render.chips import printable
from tui.widgets.fields import Editor, SettingField, changed_values, read_fields
from tui.widgets.messages import Replaceable, RunBuffer, SessionChanged, WeightsChanged
from tui.widgets.stream import ChoiceInfo, TokenStream, bar

if TYPE_CHECKING:
    from textual.timer import Timer

    from core.inference.generation import GenerationDone, TokenEvent
    from core.inference.sampling import SamplingSettings
    from core.model.session import ModelSession

DEFAULT_PROMPT = "Это"
FLUSH_EVERY_S = 0.03   # the stream reaches the screen in batches, never one repaint per token
FIELD_WIDTHS = {"temperature": 13, "top_k": 8, "top_p": 8, "repetition_penalty": 13,
                "max_new_tokens": 9, "seed": 12}


class GenerationProgress(Replaceable):
    """New tokens wait in the run's buffer."""


@dataclass
class GenerationFinished(Message):
    done: GenerationDone


@dataclass
class InspectorReady(Message):
    """The next-token view, built on a worker; dropped if the pane is gone (app exiting)."""
    text: Text


@dataclass
class GenerationFailed(Message):
    error: str


class Generation:
    """One generation: its settings, its tokens so far, and its end."""

    def __init__(self, prompt: str, settings: SamplingSettings) -> None:
        self.prompt = prompt
        self.settings = settings
        self.tokens: RunBuffer[TokenEvent] = RunBuffer()
        self.notices: list[str] = []
        self.done: GenerationDone | None = None
        self.stop = threading.Event()
        self.started = time.perf_counter()


class GeneratePane(Horizontal):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: Generation | None = None
        self.history: list[Generation] = []
        self._inspect_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="gen-left"):
            yield Editor(DEFAULT_PROMPT, id="gen-prompt", soft_wrap=True)
            with Horizontal(id="gen-settings"):
                for setting in SAMPLING_SETTINGS:
                    yield SettingField(setting, setting.default, "gen", FIELD_WIDTHS.get(setting.name),
                                       id=f"gen-{setting.name}-box")
            with VerticalScroll(id="gen-output-box"):
                yield TokenStream(id="gen-output")
            yield Static("F5 generate · F6 stop · F7 again, same seed · ←/→ over the output",
                         id="gen-stats")
        with Vertical(id="gen-right"):
            yield ChoiceInfo(id="gen-choice")
            yield Static(id="gen-inspector")
            yield OptionList(id="gen-history")

    def on_mount(self) -> None:
        self.query_one("#gen-output-box").border_title = "output (tint: probability of each token)"
        self.query_one("#gen-choice").border_title = "why this token"
        self.query_one("#gen-inspector").border_title = "next token"
        self.query_one("#gen-history").border_title = "history"
        self.query_one(ChoiceInfo).show(None, None)

    def on_session_changed(self, message: SessionChanged) -> None:
        self.schedule_inspect()

    def on_weights_changed(self, message: WeightsChanged) -> None:
        self.schedule_inspect()   # the same prompt, a new next token

    def commands(self):
        yield SystemCommand("Generate", "Generate from the prompt (F5)", self.generate)
        yield SystemCommand("Stop generation", "Stop the running generation (F6)", self.stop)
        yield SystemCommand("Regenerate with the same seed", "Repeat the last run exactly (F7)",
                            self.regenerate)

    # -- settings ----------------------------------------------------------------------

    def read_settings(self, seed_override: int | None = None) -> SamplingSettings:
        """The settings on screen, or a one-line error naming the bad field."""
        from core.inference.sampling import SamplingSettings

        settings = SamplingSettings(**read_fields(self.query_one("#gen-settings"))).validate()
        return settings if seed_override is None else replace(settings, seed=seed_override)

    def restore(self, values: dict, prompt: str | None = None) -> None:
        """Show saved settings (and a prompt): the last session's, or a history entry's."""
        for field in self.query(SettingField):
            if field.setting.name in values:
                field.show(values[field.setting.name])
        if prompt is not None:
            self.query_one("#gen-prompt", TextArea).load_text(prompt)

    def changed_settings(self) -> dict:
        """The valid settings on screen that differ from the declared defaults."""
        return changed_values(self.query(SettingField),
                              {s.name: s.default for s in SAMPLING_SETTINGS})

    def request(self) -> tuple[str, SamplingSettings]:
        """The prompt and the settings on screen (before/after generates from them)."""
        return self.query_one("#gen-prompt", TextArea).text, self.read_settings()

    # -- running -------------------------------------------------------------------------

    def generate(self, seed: int | None = None) -> None:
        session = host(self).session
        if session is None:
            self.app.notify("No model loaded yet", severity="warning")
            return
        try:
            settings = self.read_settings(seed)
        except UserError as exc:
            self.app.notify(str(exc), title="Generate", severity="error")
            return
        if self.run is not None and self.run.done is None:
            self.run.stop.set()
        prompt = self.query_one("#gen-prompt", TextArea).text
        run = Generation(prompt, settings)
        self.run = run
        output = self.query_one(TokenStream)
        output.selected = -1
        output.set_content(prompt, [])
        self.query_one("#gen-stats", Static).update("generating…")
        # Started from the App: the run outlives any widget; exclusive replaces a running one.
        self.app.run_worker(lambda: self._produce(session, run), thread=True, exclusive=True,
                            group="generate", name="generate")

    def _produce(self, session: ModelSession, run: Generation) -> None:
        """Worker thread: pull events from the core loop, hand them over in ≈30 ms batches."""
        from textual.worker import get_current_worker

        from core.inference.generation import (
            GenerationDone,
            GenerationNotice,
            TokenEvent,
            generate_stream,
        )

        worker = get_current_worker()
        store = host(self).store
        last_flush = 0.0
        try:
            for event in generate_stream(session, run.prompt, run.settings,
                                         should_stop=lambda: run.stop.is_set() or worker.is_cancelled):
                if isinstance(event, TokenEvent):
                    run.tokens.push(event)
                    now = time.perf_counter()
                    if now - last_flush >= FLUSH_EVERY_S:
                        last_flush = now
                        self.post_message(GenerationProgress())
                elif isinstance(event, GenerationNotice):
                    run.notices.append(event.message)
                elif isinstance(event, GenerationDone):
                    run.done = event
                    self.post_message(GenerationFinished(event))
                    if store is not None:   # the workspace's history, for later sessions
                        store.add_generation(session.info.model, run.prompt, event.text, event.seed,
                                             run.settings.as_record(), event.new_tokens,
                                             event.tokens_per_s, event.stop_reason)
        except Exception as exc:  # shown as one line, the app keeps running
            self.post_message(GenerationFailed(one_line(exc)))

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop.set()

    def copy_text(self) -> tuple[str, str] | None:
        """(what, text) to copy: the token selected in the output when it has the focus,
        else the prompt and what was generated."""
        run = self.run or (self.history[-1] if self.history else None)
        if run is None:
            return None
        stream = self.query_one(TokenStream)
        if self.app.focused is stream and 0 <= stream.selected < len(stream.tokens):
            return "the selected token", stream.tokens[stream.selected].text
        return "the generated text", run.prompt + "".join(t.text for t in run.tokens.items)

    def regenerate(self) -> None:
        last = self.run or (self.history[-1] if self.history else None)
        if last is None or last.done is None:
            self.generate()
        else:
            self.generate(seed=last.done.seed)

    def on_generation_progress(self, message: GenerationProgress) -> None:
        run = self.run
        if run is None:
            return
        new = run.tokens.take_new()
        if new:
            self.query_one(TokenStream).extend(new)
            elapsed = time.perf_counter() - run.started
            ttft = run.tokens.items[0].elapsed_s
            self.query_one("#gen-stats", Static).update(
                f"{len(run.tokens)} tokens · {len(run.tokens) / elapsed:.1f} tokens/s · "
                f"first token {ttft * 1000:.0f} ms · F6 stops")
            self.query_one("#gen-output-box").scroll_end(animate=False)

    def on_generation_finished(self, message: GenerationFinished) -> None:
        run = self.run
        if run is None or run.done is not message.done:
            return
        self.schedule_inspect()  # the weights may have moved on (training runs beside us)
        self.on_generation_progress(GenerationProgress())
        done = run.done
        self.history.append(run)
        preview = printable(run.prompt + done.text).replace("\n", " ")[:40]
        self.query_one("#gen-history", OptionList).add_option(
            Option(f"#{len(self.history)} seed {done.seed} · {done.new_tokens} tok · {preview}"))
        stats = (f"{done.new_tokens} tokens · {done.tokens_per_s:.1f} tokens/s · "
                 f"first token {(done.ttft_s or 0) * 1000:.0f} ms · stop: {done.stop_reason} · "
                 f"seed {done.seed}")
        if run.notices:
            stats += " · " + "; ".join(run.notices)
        self.query_one("#gen-stats", Static).update(stats)

    def on_generation_failed(self, message: GenerationFailed) -> None:
        self.query_one("#gen-stats", Static).update(f"[red]{message.error}[/red]")
        self.app.notify(message.error, title="Generate", severity="error")

    @on(OptionList.OptionSelected, "#gen-history")
    def show_past_run(self, event: OptionList.OptionSelected) -> None:
        run = self.history[event.option_index]
        output = self.query_one(TokenStream)
        output.selected = -1
        output.set_content(run.prompt, run.tokens.items)

    @on(TokenStream.Selected)
    def show_choice(self, event: TokenStream.Selected) -> None:
        tokens = event.stream.tokens
        chosen = tokens[event.index] if 0 <= event.index < len(tokens) else None
        session = host(self).session
        if session is not None:
            self.query_one(ChoiceInfo).show(session.tokenizer, chosen)

    # -- next-token inspector ---------------------------------------------------------------

    @on(TextArea.Changed, "#gen-prompt")
    def prompt_changed(self) -> None:
        self.schedule_inspect()

    def schedule_inspect(self) -> None:
        if self._inspect_timer is not None:
            self._inspect_timer.stop()
        self._inspect_timer = self.set_timer(0.25, self._start_inspect)

    def _start_inspect(self) -> None:
        session = host(self).session
        if session is None:
            return
        prompt = self.query_one("#gen-prompt", TextArea).text
        self.app.run_worker(lambda: self._inspect(session, prompt), thread=True, exclusive=True,
                            group="inspect", name="inspect")

    def _inspect(self, session: ModelSession, prompt: str) -> None:
        from core.inference.generation import inspect_next

        try:
            view = inspect_next(session, prompt)
        except Exception as exc:   # one line in the panel; the pane goes on
            error = str(exc) if isinstance(exc, UserError) else one_line(exc)
            self.post_message(InspectorReady(Text(error, style="red")))
            return
        text = Text()
        b, t, v = view.logits_shape
        text.append(f"logits (batch, seq, vocab) = ({b}, {t}, {v})\n", style="bold")
        text.append(f"softmax over vocab → p; entropy {view.entropy_bits:.2f} bits\n\n")
        scale = max((p for _, _, p, _ in view.top), default=1.0) or 1.0
        for _tid, piece, p, logit in view.top:
            text.append(f"{piece!r:<14.14} {p:6.3f} ", style="bold")
            text.append(bar(p / scale, 12), style="cyan")
            text.append(f" {logit:+.2f}\n", style="dim")
        self.post_message(InspectorReady(text))

    def on_inspector_ready(self, message: InspectorReady) -> None:
        self.query_one("#gen-inspector", Static).update(message.text)
