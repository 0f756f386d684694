"""The demo's training corpus: short Russian sentences from a small grammar of our own.

A model of the demo's size cannot learn real Russian in a minute, but it can learn this: who
does what, where and when, with verbs and adjectives that agree with their subject in
gender. Held-out sentences come from the same grammar, so the demo's eval loss falls with
its train loss — it generalises instead of memorising — and after a minute of training its
samples read as sentences made of the corpus's words.

    lines = corpus_sentences(2000, seed=7)   # deterministic
"""

from __future__ import annotations

import random

# (word, gender) — the gender picks the verb's and the adjective's ending
SUBJECTS = [
    ("кот", "m"), ("кошка", "f"), ("пёс", "m"), ("собака", "f"), ("мальчик", "m"),
    ("девочка", "f"), ("учитель", "m"), ("учительница", "f"), ("дедушка", "m"),
    ("бабушка", "f"), ("рыбак", "m"), ("студентка", "f"), ("инженер", "m"), ("птица", "f"),
    ("сосед", "m"), ("соседка", "f"),
]
ADJECTIVES = [
    ("старый", "старая"), ("маленький", "маленькая"), ("весёлый", "весёлая"),
    ("умный", "умная"), ("рыжий", "рыжая"), ("добрый", "добрая"), ("сонный", "сонная"),
]
VERBS = [  # past tense: masculine, feminine; each with what it can be done to
    ("читал", "читала", ["книгу", "письмо", "газету", "сказку"]),
    ("нашёл", "нашла", ["ключ", "мяч", "письмо", "старую карту", "яблоко"]),
    ("видел", "видела", ["реку", "лодку", "птицу", "дом", "звёзды", "море"]),
    ("рисовал", "рисовала", ["дом", "реку", "лес", "море", "кота"]),
    ("купил", "купила", ["хлеб", "молоко", "яблоки", "книгу", "лодку"]),
    ("искал", "искала", ["ключ", "мяч", "дорогу", "кота", "очки"]),
    ("чинил", "чинила", ["лодку", "окно", "забор", "велосипед"]),
]
STILL_VERBS = [("спал", "спала"), ("пел", "пела"), ("гулял", "гуляла"), ("работал", "работала"),
               ("отдыхал", "отдыхала"), ("ждал", "ждала")]
PLACES = ["в саду", "у реки", "в городе", "на кухне", "в лесу", "на берегу", "в школе",
          "на вокзале", "в деревне", "на крыше", "у окна", "в поле"]
TIMES = ["Утром", "Вечером", "Днём", "Зимой", "Летом", "Вчера", "Сегодня", "Ночью"]


def _sentence(rng: random.Random) -> str:
    subject, gender = rng.choice(SUBJECTS)
    g = 0 if gender == "m" else 1
    adjective = rng.choice(ADJECTIVES)[g]
    verb_forms = rng.choice(VERBS)
    verb, thing = verb_forms[g], rng.choice(verb_forms[2])
    still = rng.choice(STILL_VERBS)[g]
    place, time = rng.choice(PLACES), rng.choice(TIMES)
    form = rng.randrange(6)
    if form == 0:
        return f"{time} {adjective} {subject} {verb} {thing} {place}."
    if form == 1:
        return f"{subject.capitalize()} {verb} {thing}, а потом {still} {place}."
    if form == 2:
        return f"Это {adjective} {subject}. Он {still} {place}." if g == 0 else \
            f"Это {adjective} {subject}. Она {still} {place}."
    if form == 3:
        return f"{time} {subject} {still} {place}."
    if form == 4:
        return f"{adjective.capitalize()} {subject} {verb} {thing}."
    return f"{place.capitalize()} {subject} {verb} {thing}, и {time.lower()} {still}."


def corpus_sentences(n: int, seed: int = 7) -> list[str]:
    """`n` lines of one or two sentences, the same every time for the same seed."""
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(n)]


def _exchange(rng: random.Random) -> tuple[str, str]:
    """A question about someone of the grammar, and its answer in one sentence."""
    subject, gender = rng.choice(SUBJECTS)
    g = 0 if gender == "m" else 1
    verb_forms = rng.choice(VERBS)
    verb, thing = verb_forms[g], rng.choice(verb_forms[2])
    still = rng.choice(STILL_VERBS)[g]
    place, time = rng.choice(PLACES), rng.choice(TIMES)
    did = "делал" if g == 0 else "делала"
    form = rng.randrange(4)
    if form == 0:
        return f"Что {did} {subject} {time.lower()}?", f"{time} {subject} {verb} {thing} {place}."
    if form == 1:
        return f"Где {still} {subject}?", f"{subject.capitalize()} {still} {place}."
    if form == 2:
        return f"Кто {verb_forms[0]} {thing}?", f"{subject.capitalize()} {verb} {thing}."
    return f"Расскажи про {_accusative(subject)}.", f"{time} {subject} {still} {place}, а потом {verb} {thing}."


def _accusative(noun: str) -> str:
    """Accusative of the grammar's (animate) subjects: кота, пса, учителя, бабушку."""
    if noun == "пёс":
        return "пса"
    if noun.endswith("а"):
        return noun[:-1] + "у"
    if noun.endswith("ь"):
        return noun[:-1] + "я"
    return noun + "а"


GREETINGS = [("Привет!", "Привет! Спроси меня, кто что делал."),
             ("Здравствуй.", "Здравствуй! О ком рассказать?"),
             ("Спасибо!", "Пожалуйста.")]


def dialogues(n: int, seed: int = 11) -> list[dict]:
    """`n` short conversations in the training format: one to three exchanges, now and then a
    greeting or a system prompt — the demo's dialogue corpus, the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.2:
            messages.append({"role": "system", "content": "Отвечай одним предложением."})
        if rng.random() < 0.15:
            user, reply = rng.choice(GREETINGS[:2])
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        for _ in range(rng.randint(1, 3)):
            user, reply = _exchange(rng)
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        out.append({"messages": messages})
    return out


CORPUS_LINES = 2000
DIALOGUES = 1000

if __name__ == "__main__":
    # python -m core.data.grammar > core/resources/corpus_ru.txt
    # python -m core.data.grammar dialogues > core/resources/dialogues_ru.jsonl
    import json
    import sys

    if sys.argv[1:] == ["dialogues"]:
        print("\n".join(json.dumps(d, ensure_ascii=False) for d in dialogues(DIALOGUES)))
    else:
        print("\n".join(corpus_sentences(CORPUS_LINES)))
