"""The lesson: the notebook's tasks as steps — what each shows, in Russian and English — and
the checks of their exercises, answered against the loaded model itself (its tokenizer, its
config, its logits, a run on it), never against a fixed key."""
