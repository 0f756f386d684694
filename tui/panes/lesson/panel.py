"""The lesson, docked under the panes: the step's explanation (folded to a line on short
terminals, ctrl+f unfolds it), its task, an answer field (Enter checks), the verdict and,
after a wrong try, the hint. PgUp / PgDn move between steps; ctrl+y switches between Russian
and English. The progress — the step open, the language, the steps done — is kept in the
workspace's settings. Checks run on a worker thread (one may compute logits or tokenize the
data); the verdict comes back as a message."""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from core.lesson.checks import LessonState, Verdict, check, say, task_text
from core.lesson.steps import LANGUAGES, LESSON, LessonStep, step_index
from tui.panes.host import host
from tui.widgets.fields import Field


@dataclass
class LessonStepShown(Message):
    """A step opened: the shell shows its pane with its example."""
    step: LessonStep


@dataclass
class LessonChecked(Message):
    step: str
    verdict: Verdict


class LessonPanel(Vertical):
    BINDINGS = [
        # listed on the panel's own last line, not in the footer: the app's keys keep their room
        Binding("pagedown", "step(1)", "Next step", show=False),
        Binding("pageup", "step(-1)", "Previous step", show=False),
        Binding("ctrl+f", "fold", "More / less", show=False),
        Binding("ctrl+y", "language", "Русский / English", show=False),
        Binding("escape", "leave", "Back to the pane", show=False),
    ]

    def __init__(self, progress: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.progress = progress                 # the workspace's `lesson` table, kept up to date
        self.index = step_index(progress.get("step", LESSON[0].key))
        self.folded: bool | None = None          # None: by the terminal's height
        self.verdicts: dict[str, Verdict] = {}   # the last one of each step, this session
        self.answers: dict[str, str] = {}        # the answer each verdict is on

    @property
    def language(self) -> str:
        return self.progress.get("language", "ru")

    @property
    def step(self) -> LessonStep:
        return LESSON[self.index]

    def compose(self):
        yield Static(id="lesson-title")
        yield Static(id="lesson-text")
        yield Static(id="lesson-task")
        yield Field(id="lesson-answer")
        yield Static(id="lesson-verdict")

    def open(self) -> None:
        """Show the panel at its step (the pane beside it too) with the cursor in the answer."""
        self.display = True
        self.screen.add_class("-lesson")   # the panes give it room (app.tcss)
        self.show_step()

    def close(self) -> None:
        self.display = False
        self.screen.remove_class("-lesson")

    def show_step(self) -> None:
        self.progress["step"] = self.step.key
        self.post_message(LessonStepShown(self.step))
        self.refresh_texts()
        answer = self.query_one("#lesson-answer", Input)
        answer.value = ""
        answer.focus()

    def refresh_texts(self) -> None:
        step, language = self.step, self.language
        done = set(self.progress.get("done", []))
        marks = "".join("●" if s.key in done else ("◉" if s is step else "○") for s in LESSON)
        title = say(language, "Урок", "Lesson")
        self.query_one("#lesson-title", Static).update(
            f"[b]{title} {self.index + 1}/{len(LESSON)} · {step.title[language]}[/b]"
            + (" ✓" if step.key in done else "") + f"  [dim]{marks}[/dim]")
        text = self.query_one("#lesson-text", Static)
        text.update(step.text[language])
        text.set_class(self.is_folded(), "-folded")
        session = getattr(self.app, "session", None)
        state = host(self).lesson_state() if session is not None else LessonState()
        self.query_one("#lesson-task", Static).update("▶ " + task_text(step, session, state, language))
        answer = self.query_one("#lesson-answer", Input)
        answer.placeholder = say(language, "ответ — Enter проверяет", "answer — Enter checks") if step.typed \
            else say(language, "сделайте это в панели выше, затем Enter здесь",
                     "do it in the pane above, then Enter here")
        self.show_verdict()

    def is_folded(self) -> bool:
        return self.folded if self.folded is not None else self.app.size.height < 32

    def show_verdict(self) -> None:
        verdict, language = self.verdicts.get(self.step.key), self.language
        keys = say(language, "Enter проверить · PgUp/PgDn шаги · ctrl+f текст · ctrl+y English · F12 закрыть",
                   "Enter check · PgUp/PgDn steps · ctrl+f text · ctrl+y Русский · F12 close")
        line = f"[dim]{keys}[/dim]"
        if verdict is not None:
            colour = "green" if verdict.ok else "red"
            line = f"[{colour}]{'✓' if verdict.ok else '✗'} {escape(verdict.message)}[/{colour}]"
            hint = self.step.hint[language]
            if not verdict.ok and hint:
                line += f" [dim]— {escape(hint)}[/dim]"
            elif verdict.ok and self.index + 1 < len(LESSON):
                line += say(language, " [dim]· PgDn: дальше[/dim]", " [dim]· PgDn: next[/dim]")
        self.query_one("#lesson-verdict", Static).update(line)

    @on(Input.Submitted, "#lesson-answer")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.check(event.value)

    def check(self, answer: str) -> None:
        self.answers[self.step.key] = answer
        session = getattr(self.app, "session", None)
        self.check_in_background(self.step, answer, session, host(self).lesson_state(), self.language)

    @work(thread=True, exclusive=True, group="lesson-check")
    def check_in_background(self, step: LessonStep, answer: str, session, state: LessonState,
                            language: str) -> None:
        try:
            verdict = check(step, answer, session, state, language)
        except Exception as exc:   # a model that cannot do what a check asks: one line
            verdict = Verdict(False, f"{type(exc).__name__}: {exc}".splitlines()[0])
        self.post_message(LessonChecked(step.key, verdict))

    def on_lesson_checked(self, message: LessonChecked) -> None:
        self.verdicts[message.step] = message.verdict
        if message.verdict.ok:
            done = self.progress.setdefault("done", [])
            if message.step not in done:
                done.append(message.step)
            host(self).schedule_save()
        if message.step == self.step.key:
            self.refresh_texts()

    def action_step(self, delta: int) -> None:
        index = min(max(self.index + delta, 0), len(LESSON) - 1)
        if index != self.index:
            self.index = index
            self.show_step()
            host(self).schedule_save()

    def action_fold(self) -> None:
        self.folded = not self.is_folded()
        self.query_one("#lesson-text").set_class(self.folded, "-folded")

    def action_language(self) -> None:
        self.progress["language"] = LANGUAGES[(LANGUAGES.index(self.language) + 1) % len(LANGUAGES)]
        self.refresh_texts()
        host(self).schedule_save()
        if self.step.key in self.verdicts:   # its verdict again, in the new language
            self.check(self.answers.get(self.step.key, ""))

    def action_leave(self) -> None:
        host(self).show_tab(self.step.pane)
