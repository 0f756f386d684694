"""Asking the model: the sampling step (Hugging Face's order and semantics), token-by-token
generation with a KV cache, chat that reuses the cache across turns, and before/after."""
