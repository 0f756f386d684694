"""Headless core of rugpt-tui: model, device, tokenization, sampling, data and training.

Nothing in this package imports Textual; the TUI and the CLI are faces on this API.
"""

DEFAULT_MODEL = "ai-forever/rugpt3small_based_on_gpt2"
