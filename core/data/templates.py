"""How a conversation becomes the text a causal LM reads: a chat template.

`auto` is the tokenizer's own `chat_template` when it has one, else `plain-ru`: a plain
dialogue for base models such as ruGPT-3 — Russian role labels, every reply closed by EOS so
the model learns to stop. Built-ins: `plain-ru`, `plain-en`, `chatml`. Every template is
rendered by `tokenizer.apply_chat_template`, so the Chat pane, `chat`, and training on
dialogues all read the very same text.

    text = render(tokenizer, messages, "auto")   # ends with the assistant's cue
"""

from __future__ import annotations

from dataclasses import dataclass

from core.base.errors import UserError

ROLES = ("system", "user", "assistant")


def _plain(system_sep: str, user: str, assistant: str) -> str:
    return (
        "{% for m in messages %}"
        "{% if m['role'] == 'system' %}{{ m['content'] }}" + system_sep +
        "{% elif m['role'] == 'user' %}" + user + ": {{ m['content'] }}\n"
        "{% else %}" + assistant + ": {{ m['content'] }}{{ eos_token }}\n{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}" + assistant + ":{% endif %}")


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@dataclass(frozen=True)
class Template:
    name: str
    source: str                       # Jinja, as `chat_template` holds it
    stops: tuple[str, ...] = ()       # a reply also ends where one of these appears


BUILTIN = {
    "plain-ru": Template("plain-ru", _plain("\n\n", "Пользователь", "Ассистент"), ("\nПользователь:",)),
    "plain-en": Template("plain-en", _plain("\n\n", "User", "Assistant"), ("\nUser:",)),
    "chatml": Template("chatml", CHATML, ("<|im_end|>",)),
}
TEMPLATE_CHOICES = ("auto", *BUILTIN)


def template_for(tokenizer, name: str = "auto") -> Template:
    """The template `name` stands for with this tokenizer."""
    if name == "auto":
        own = getattr(tokenizer, "chat_template", None)
        if isinstance(own, str) and own:
            known = next((t for t in BUILTIN.values() if t.source == own), None)
            return known or Template("tokenizer", own)
        return BUILTIN["plain-ru"]
    if name not in BUILTIN:
        raise UserError(f"--template {name}: one of {', '.join(TEMPLATE_CHOICES)}")
    return BUILTIN[name]


def check_messages(messages: list[dict], where: str = "conversation") -> None:
    """Roles and contents a template can render: one line naming what is wrong."""
    if not messages:
        raise UserError(f"{where}: no messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise UserError(f"{where}: message {i + 1} is not an object")
        if m.get("role") not in ROLES:
            raise UserError(f"{where}: message {i + 1} has role {m.get('role')!r} "
                            f"(one of {', '.join(ROLES)})")
        if not isinstance(m.get("content"), str):
            raise UserError(f"{where}: message {i + 1} ({m['role']}) has no string 'content'")
        if m["role"] == "system" and i != 0:
            raise UserError(f"{where}: message {i + 1}: a system message can only come first")


def render(tokenizer, messages: list[dict], template: Template, generation_prompt: bool = True) -> str:
    try:
        return tokenizer.apply_chat_template(messages, chat_template=template.source, tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except Exception as exc:   # a template that raises on this turn order (jinja raise_exception)
        raise UserError(f"template {template.name}: cannot render this conversation: {exc}") from None
