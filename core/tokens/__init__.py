"""A text as the model sees it: tokens with the exact span of text each one owns, their
vocabulary pieces and bytes, re-tokenizing only around an edit, and word statistics. Needs
a tokenizer, never a model."""
