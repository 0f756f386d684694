"""The headless core of rugpt-tui: everything the app does, without the app.

Packages in a one-way order — each imports only from those below it (import-linter checks
it in ./test.sh):

    store       the workspace: settings file, history, runs, conversations (SQLite)
    training    a fine-tuning run: its config and events, the loss, the memory plan, the loop
    inference   sampling, token-by-token generation, chat, before/after
    model       a model and what it carries: device, loading, the demo, LoRA, checkpoints
    data        texts and dialogues in, chat templates, token streams cached on disk, rows
    tokens      what a tokenizer does to a text, for the Tokenize pane and `tokenize`
    base        errors, paths, settings declarations, safe writes, cancellation, the process

Nothing here imports Textual.
"""
