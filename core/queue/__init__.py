"""Runs queued to train one after another without anyone watching: the queue in the
workspace, sweeps that fill it with a grid of settings, and the headless runner."""
