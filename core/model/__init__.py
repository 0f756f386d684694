"""A model and what it carries: the device and precision it runs at, loading any causal LM
(or the offline demo, built here), a LoRA adapter on it, checkpoints, and the weights as
loaded kept for before/after."""
