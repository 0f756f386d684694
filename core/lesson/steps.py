"""The lesson's steps, in the order of the notebook they come from: tokens, the tensors the
model takes and gives, the blocks inside it, sampling the next token, your data in batches, fine-tuning, before and
after. Each names the pane it is about and what to put there; the texts are ours, in Russian
(the notebook's language) and English."""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class LessonStep:
    key: str
    pane: str                  # the tab shown beside the step
    example: str | None        # put in that pane: Tokenize's text, Generate's prompt
    title: dict[str, str]
    text: dict[str, str]       # a few lines: what to look at
    task: dict[str, str]       # one thing to do; {n} and {x} come from the model (core.lesson.checks)
    hint: dict[str, str]       # after a wrong try
    typed: bool = True         # the answer is typed in the lesson; else it is done in the pane


LESSON: tuple[LessonStep, ...] = (
    LessonStep(
        "tokens", "tokenize", "Сосиска в тексте",
        {"ru": "Токены: на какие куски модель режет текст",
         "en": "Tokens: the pieces the model cuts text into"},
        {"ru": "Модель читает не буквы и не слова, а токены — куски из своего словаря (BPE). "
               "Частое слово целиком лежит в словаре и даёт один токен, редкое собирается из "
               "нескольких. Под текстом — его токены цветными фишками; курсор в тексте "
               "показывает, какой токен под ним и его id.",
         "en": "The model reads neither letters nor words but tokens — pieces from its "
               "vocabulary (BPE). A frequent word is one entry and one token; a rare one is "
               "built from several. Under the text are its tokens as coloured chips; the "
               "cursor shows which token it is on, and its id."},
        {"ru": "Введите слово, которое словарь модели хранит целиком: ровно один токен.",
         "en": "Type a word the model's vocabulary holds whole: exactly one token."},
        {"ru": "Короткие частые слова чаще всего один токен — посмотрите на фишки примера.",
         "en": "Short frequent words are most often one token — look at the example's chips."}),
    LessonStep(
        "split", "tokenize", "клаустрофобия",
        {"ru": "Редкие слова рассыпаются", "en": "Rare words fall apart"},
        {"ru": "Словарь байтовый: кириллическая буква — два байта UTF-8, и слово, которого "
               "нет в словаре, разбирается на части вплоть до отдельных байтов. ctrl+t "
               "показывает сырые куски словаря. Чем больше токенов на слово, тем дороже "
               "текст и тем короче окно контекста в словах.",
         "en": "The vocabulary is byte-level: a Cyrillic letter is two UTF-8 bytes, and a word "
               "the vocabulary lacks is taken apart into pieces, down to single bytes. ctrl+t "
               "shows the raw vocabulary pieces. More tokens a word means dearer text and a "
               "context window that holds fewer words."},
        {"ru": "Найдите настоящее слово, в котором не меньше {n} токенов.",
         "en": "Find a real word that splits into at least {n} tokens."},
        {"ru": "Длинные, редкие, заимствованные слова и научные термины режутся сильнее.",
         "en": "Long, rare, borrowed words and scientific terms split the most."}),
    LessonStep(
        "tensors", "tokenize", "Привет, мир!",
        {"ru": "Что модель получает и что отдаёт", "en": "What the model takes and gives"},
        {"ru": "tokenizer(text, return_tensors='pt') даёт input_ids формы (1, T) — одна строка, "
               "T токенов — и attention_mask той же формы (1 — настоящий токен, 0 — отступ). "
               "Модель возвращает logits: для каждой позиции — оценку каждого токена словаря, "
               "которым может быть следующий. Панель «what the model gets» (на узком экране — ctrl+g) показывает формы.",
         "en": "tokenizer(text, return_tensors='pt') gives input_ids of shape (1, T) — one row, "
               "T tokens — and an attention_mask of the same shape (1 a real token, 0 padding). "
               "The model returns logits: for every position, a score for every vocabulary "
               "token that could come next. The 'what the model gets' panel (ctrl+g on a narrow screen) shows the shapes."},
        {"ru": "Какой формы logits для текста примера? Три числа, например (1, 2, 3).",
         "en": "What is the shape of the logits for the example's text? Three numbers, e.g. (1, 2, 3)."},
        {"ru": "Первое — строки, второе — токены текста, третье — размер словаря (vocab в строке модели).",
         "en": "First the rows, then the text's tokens, then the vocabulary's size (vocab on the model line)."}),
    LessonStep(
        "inside", "inside", "Однажды в студёную зимнюю пору",
        {"ru": "Внутри: стопка блоков", "en": "Inside: a stack of blocks"},
        {"ru": "GPT-2 — стопка трансформерных блоков: каждый добавляет своё к общему потоку "
               "(residual stream) и передаёт дальше, а после последнего норма и выходной слой "
               "дают logits. Logit lens прикладывает эту норму и выходной слой к потоку после "
               "каждого блока: видно, что модель «сказала бы» уже там. Панель Inside (ctrl+f): "
               "строки — блоки, столбцы — позиции, в клетке — лучший следующий токен.",
         "en": "GPT-2 is a stack of transformer blocks: each adds its part to a shared stream "
               "(the residual stream) and passes it on, and after the last one a norm and the "
               "output layer give the logits. The logit lens applies that norm and output layer "
               "to the stream after every block: what the model 'would say' already there. The "
               "Inside pane (ctrl+f): rows are blocks, columns positions, each cell the best next token."},
        {"ru": "С какого блока (0 — эмбеддинги) лучший следующий токен на последней позиции "
               "примера уже тот, что выбирает вся модель? Введите номер.",
         "en": "From which block (0 — the embeddings) is the best next token at the example's "
               "last position already the whole model's choice? Type its number."},
        {"ru": "Смотрите последний столбец сверху вниз: первая строка, где токен как в строке model.",
         "en": "Read the last column top down: the first row whose token is the model row's."}),
    LessonStep(
        "sampling", "generate", "Однажды утром",
        {"ru": "Softmax и выбор следующего токена", "en": "Softmax, and choosing the next token"},
        {"ru": "Logits последней позиции softmax превращает в вероятности; температура делит "
               "logits перед ним (меньше — увереннее). top-k оставляет k лучших токенов, top-p — "
               "самый маленький набор лучших с суммой вероятностей p; из оставшихся тянется "
               "следующий токен. Панель next token (ctrl+g на узком экране) показывает кандидатов и их вероятности.",
         "en": "Softmax turns the last position's logits into probabilities; the temperature "
               "divides the logits first (lower is surer). top-k keeps the k best tokens, top-p "
               "the smallest set of best ones whose probabilities add up to p; the next token is "
               "drawn from what is left. The next token panel (ctrl+g on a narrow screen) shows the candidates and their odds."},
        {"ru": "Задайте top-k так, чтобы следовать могли только 3 самых вероятных токена; потом Enter здесь.",
         "en": "Set top-k so that only the 3 most probable tokens can follow; then Enter here."},
        {"ru": "Поле top-k на панели Generate; greedy выключен, top-p = 1.",
         "en": "The top-k field of the Generate pane; greedy off, top-p 1."},
        typed=False),
    LessonStep(
        "data", "train", None,
        {"ru": "Свои тексты: загрузка и батчи", "en": "Your own texts: loading and batches"},
        {"ru": "Данные читаются через datasets (строка файла — один текст), токенизируются один "
               "раз и кэшируются. Тексты склеиваются через токен конца текста и режутся на блоки "
               "по block size токенов; батч — B блоков, тензор (B, T). 10 % текстов отложены для "
               "проверки. Строка под полем данных — что получилось.",
         "en": "Data is read through datasets (a line of the file is one text), tokenized once "
               "and cached. The texts are joined by the end-of-text token and cut into blocks of "
               "block size tokens; a batch is B blocks, a (B, T) tensor. 10 % of the texts are "
               "held out. The line under the data field says what came out."},
        {"ru": "Поставьте block size 64: сколько обучающих блоков даёт корпус?",
         "en": "Set the block size to 64: how many training blocks does the corpus give?"},
        {"ru": "Число после «→» в строке под полями данных, когда там block 64.",
         "en": "The number after '→' on the line under the data fields, once it says 64."}),
    LessonStep(
        "finetune", "train", None,
        {"ru": "Дообучение: train и test loss", "en": "Fine-tuning: train and test loss"},
        {"ru": "F8 запускает дообучение на данных из поля. На графике loss на обучающих "
               "батчах (каждый шаг) и на отложенных текстах (eval: до обучения и после эпох). "
               "Perplexity = exp(loss): из скольких токенов модель в среднем выбирает.",
         "en": "F8 fine-tunes on the data in the field. The chart has the loss on the training "
               "batches (every step) and on the held-out texts (eval: before training and after "
               "epochs). Perplexity = exp(loss): how many tokens the model is choosing among."},
        {"ru": "Добейтесь held-out loss ниже {x}: F8, затем Enter здесь.",
         "en": "Make the held-out loss fall below {x}: F8, then Enter here."},
        {"ru": "Дождитесь eval после эпохи; мало — больше epochs или выше lr.",
         "en": "Wait for an eval after an epoch; not enough — more epochs or a higher lr."},
        typed=False),
    LessonStep(
        "compare", "generate", "Однажды утром",
        {"ru": "До и после", "en": "Before and after"},
        {"ru": "ctrl+b пишет продолжение одного и того же запроса с одним seed дважды: "
               "модель, как она загружена, и после дообучения — рядом. Так видно, чему "
               "научили данные.",
         "en": "ctrl+b continues the same prompt with the same seed twice: the model as "
               "loaded, and as fine-tuned — side by side. That is what the data taught it."},
        {"ru": "Нажмите ctrl+b и сравните; Enter здесь завершает урок (проверять нечего).",
         "en": "Press ctrl+b and compare; Enter here ends the lesson (nothing to check)."},
        {"ru": "", "en": ""},
        typed=False),
)


def step_index(key: str) -> int:
    return next((i for i, step in enumerate(LESSON) if step.key == key), 0)
