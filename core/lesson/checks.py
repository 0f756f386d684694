"""The exercises' checks. Each is answered from the loaded model — its tokenizer, its output
layer, its logits for a prompt, a run on it — and says why in one line, in the lesson's
language; after a wrong try the step's hint follows.

    verdict = check(LESSON[0], "кот", session, LessonState(), "ru")   # Verdict(ok, message)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.base.errors import UserError
from core.lesson import facts
from core.lesson.steps import LessonStep

TARGET_SHARE = 0.8   # the fine-tuning step: the held-out loss below this share of where it started


@dataclass
class Verdict:
    ok: bool
    message: str


@dataclass
class LessonState:
    """What the app shows when a check runs (filled by the app; a check never reads widgets)."""
    generate_prompt: str = ""
    sampling: object | None = None          # SamplingSettings, or None when the fields are invalid
    sampling_error: str | None = None
    train_config: object | None = None      # TrainConfig, or None when the fields are invalid
    train_error: str | None = None
    evals: list[tuple[int, float]] = field(default_factory=list)   # the latest run's, step 0 first


def say(language: str, ru: str, en: str) -> str:
    return ru if language == "ru" else en


def tokens_ru(n: int) -> str:
    """"1 токен", "3 токена", "7 токенов"."""
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} токен"
    return f"{n} токена" if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else f"{n} токенов"


def shown(parts: list[str]) -> str:
    """Tokens as the chips show them: a space as ·, a bar between tokens."""
    return "|".join(part.replace(" ", "·") for part in parts)


def loss_target(state: LessonState) -> float | None:
    """The fine-tuning step's goal: a share of the held-out loss before training."""
    return state.evals[0][1] * TARGET_SHARE if state.evals and state.evals[0][0] == 0 else None


def task_text(step: LessonStep, session, state: LessonState, language: str) -> str:
    """The step's task, its numbers filled in from the model (and the run, once there is one)."""
    values = {}
    if "{n}" in step.task[language]:
        values["n"] = facts.split_goal(session.tokenizer) if session is not None else "N"
    if "{x}" in step.task[language]:
        target = loss_target(state)
        values["x"] = f"{target:.2f}" if target is not None else say(
            language, "0.8 × loss до обучения", "0.8 × the loss before training")
    return step.task[language].format(**values)


def check(step: LessonStep, answer: str, session, state: LessonState, language: str) -> Verdict:
    """The verdict on `answer` (or on the app's state, for a step done in its pane)."""
    if session is None:
        return Verdict(False, say(language, "модель ещё загружается", "the model is still loading"))
    answer = answer.strip()
    return CHECKS[step.key](step, answer, session, state, language)


def _single_token(step, answer, session, state, language) -> Verdict:
    problem = facts.word_problem(answer)
    if problem is not None:
        return Verdict(False, say(language, f"«{answer}» — не слово: {problem[0]}",
                                  f"'{answer}' is not a word: {problem[1]}"))
    parts = facts.word_tokens(session.tokenizer, answer)
    if len(parts) == 1:
        return Verdict(True, say(language, f"да: «{answer}» — один токен словаря",
                                 f"yes: '{answer}' is one vocabulary token"))
    return Verdict(False, say(language, f"«{answer}» — {tokens_ru(len(parts))}: ", f"'{answer}' is "
                              f"{len(parts)} tokens: ") + shown(parts))


def _many_tokens(step, answer, session, state, language) -> Verdict:
    goal = facts.split_goal(session.tokenizer)
    problem = facts.word_problem(answer)
    if problem is not None:
        return Verdict(False, say(language, f"«{answer}» — не похоже на настоящее слово: {problem[0]}",
                                  f"'{answer}' does not look like a real word: {problem[1]}"))
    parts = facts.word_tokens(session.tokenizer, answer)
    pieces = shown(parts)
    if len(parts) >= goal:
        return Verdict(True, say(language, f"да: {tokens_ru(len(parts))} — {pieces}",
                                 f"yes: {len(parts)} tokens — {pieces}"))
    return Verdict(False, say(language, f"только {tokens_ru(len(parts))}: {pieces}; нужно {goal}",
                              f"only {len(parts)}: {pieces}; {goal} needed"))


def _logits_shape(step, answer, session, state, language) -> Verdict:
    numbers = [int(n) for n in re.findall(r"\d+", answer)]
    expected = facts.logits_shape(session, step.example)
    shown = "(" + ", ".join(map(str, expected)) + ")"
    if numbers == list(expected):
        return Verdict(True, say(language, f"да: {shown} — строка, {expected[1]} позиций, "
                                 f"{expected[2]:,} оценок в каждой", f"yes: {shown} — a row, "
                                 f"{expected[1]} positions, {expected[2]:,} scores each"))
    if len(numbers) != 3:
        return Verdict(False, say(language, "нужно три числа: (строки, токены, словарь)",
                                  "three numbers needed: (rows, tokens, vocabulary)"))
    wrong = [say(language, *names) for got, want, names in zip(numbers, expected, (
        ("строк одна", "there is one row"), ("число токенов не то", "the token count is off"),
        ("последнее — размер словаря", "the last is the vocabulary's size"))) if got != want]
    return Verdict(False, "; ".join(wrong))


def _settled_block(step, answer, session, state, language) -> Verdict:
    """The first layer of the lens (0: the embeddings) whose top token at the example's last
    position is the model's own final choice."""
    layer, _, names = facts.settled_block(session, step.example)
    if not re.fullmatch(r"\d+", answer):
        return Verdict(False, say(language, "нужен номер блока, например 1", "a block's number is needed, e.g. 1"))
    chosen = int(answer)
    if chosen == layer:
        return Verdict(True, say(language, f"да: с блока {layer} там уже «{names[-1]}»",
                                 f"yes: from block {layer} on it is '{names[-1]}'"))
    if chosen >= len(names):
        return Verdict(False, say(language, f"блоков только {len(names) - 1}",
                                  f"there are only {len(names) - 1} blocks"))
    if names[chosen] == names[-1]:
        return Verdict(False, say(language, f"блок {chosen} уже говорит «{names[-1]}», но раньше — тоже",
                                  f"block {chosen} says '{names[-1]}', but an earlier one already does"))
    return Verdict(False, say(language, f"блок {chosen} говорит «{names[chosen]}», модель — «{names[-1]}»",
                              f"block {chosen} says '{names[chosen]}', the model '{names[-1]}'"))


def _top_k(step, answer, session, state, language) -> Verdict:
    settings = state.sampling
    if settings is None:
        return Verdict(False, state.sampling_error or say(language, "настройки Generate с ошибкой",
                                                          "the Generate settings have an error"))
    if settings.greedy:
        return Verdict(False, say(language, "greedy выбирает всегда один токен: выключите его",
                                  "greedy always takes one token: switch it off"))
    allowed = facts.allowed_next(session, state.generate_prompt or step.example, settings)
    if settings.top_k == 3 and allowed == 3:
        return Verdict(True, say(language, "да: следовать могут ровно 3 токена",
                                 "yes: exactly 3 tokens can follow"))
    if settings.top_k != 3:
        return Verdict(False, say(language, f"top-k сейчас {settings.top_k}: могут следовать {allowed:,}",
                                  f"top-k is {settings.top_k} now: {allowed:,} can follow"))
    return Verdict(False, say(language, f"top-k 3, но top-p оставляет {allowed}",
                              f"top-k is 3, but top-p keeps {allowed}"))


def _blocks(step, answer, session, state, language) -> Verdict:
    config = state.train_config
    if config is None:
        return Verdict(False, state.train_error or say(language, "поля Train с ошибкой",
                                                       "the Train fields have an error"))
    if config.block_size != 64:
        return Verdict(False, say(language, f"block size сейчас {config.block_size or 'по умолчанию'}: "
                                  "поставьте 64", f"the block size is {config.block_size or 'the default'}"
                                  " now: set it to 64"))
    try:
        blocks = facts.training_blocks(session.tokenizer, config)
    except UserError as exc:
        return Verdict(False, str(exc))
    numbers = [int(n) for n in re.findall(r"\d+", answer.replace(",", "").replace(" ", ""))]
    if numbers == [blocks]:
        return Verdict(True, say(language, f"да: {blocks} блоков по 64 токена",
                                 f"yes: {blocks} blocks of 64 tokens"))
    return Verdict(False, say(language, "не то число блоков", "not the number of blocks"))


def _loss_fell(step, answer, session, state, language) -> Verdict:
    target = loss_target(state)
    if target is None:
        return Verdict(False, say(language, "запустите обучение: F8", "start a run: F8"))
    best = min(loss for _, loss in state.evals)
    if best < target:
        return Verdict(True, say(language, f"да: held-out loss {best:.3f} < {target:.2f}",
                                 f"yes: held-out loss {best:.3f} < {target:.2f}"))
    return Verdict(False, say(language, f"пока {best:.3f}, нужно ниже {target:.2f}",
                              f"{best:.3f} so far; below {target:.2f} needed"))


def _nothing(step, answer, session, state, language) -> Verdict:
    return Verdict(True, say(language, "урок пройден", "lesson complete"))


CHECKS = {"tokens": _single_token, "split": _many_tokens, "tensors": _logits_shape,
          "inside": _settled_block, "sampling": _top_k, "data": _blocks, "finetune": _loss_fell, "compare": _nothing}
