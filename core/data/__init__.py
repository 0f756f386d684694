"""Training data: texts and dialogues loaded through `datasets` with file:line errors, the
chat templates that render dialogues, the demo's grammar, token streams tokenized once and
cached on disk, and the packed or padded rows a run batches."""
