"""Training runs GPT-2's op-by-op tanh GELU as one fused kernel — the same function, its
gradient too — and gives the model back as loaded; a training forward builds no KV cache."""

import torch
from transformers.activations import FastGELUActivation, NewGELUActivation

from core.model.kernels import FusedTanhGELU, fused_activations
from core.training.config import TrainConfig
from core.training.events import Step
from core.training.loop import train
from core.training.memory import saved_activation_bytes


def _activations(model) -> list:
    return [block.mlp.act for block in model.transformer.h]


def test_the_fused_gelu_is_gelu_new_and_gelu_fast_with_their_gradients():
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    for op_by_op in (NewGELUActivation(), FastGELUActivation()):
        mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        torch.testing.assert_close(FusedTanhGELU()(mine), op_by_op(theirs))
        FusedTanhGELU()(mine).sum().backward()
        op_by_op(theirs).sum().backward()
        torch.testing.assert_close(mine.grad, theirs.grad)


def test_fused_activations_replace_and_put_back_the_same_modules(fresh_session):
    model = fresh_session.model
    before = _activations(model)
    assert before and all(isinstance(a, NewGELUActivation) for a in before)
    ids = torch.tensor([fresh_session.tokenizer("Привет, мир")["input_ids"]])
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    with fused_activations(model) as replaced:
        assert replaced == len(before)
        model.eval()
        model.train()   # a mode switch (transformers' kernel hub resets forwards on it)
        model.eval()
        assert all(isinstance(a, FusedTanhGELU) for a in _activations(model))
        with fused_activations(model) as again:
            assert again == 0
        assert all(isinstance(a, FusedTanhGELU) for a in _activations(model))
        with torch.no_grad():
            fused = model(input_ids=ids).logits
    assert all(a is b for a, b in zip(_activations(model), before, strict=True))
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)
    assert model.config.activation_function == "gelu_new"


def test_a_run_trains_through_the_fused_kernel_and_gives_the_model_back(corpus_files, fresh_session):
    model = fresh_session.model
    before = _activations(model)
    seen = []

    def on_event(event):
        if isinstance(event, Step):   # after the step-0 evaluation switched modes twice
            seen.append({type(a) for a in _activations(model)})

    train_file, test_file = corpus_files
    train(fresh_session, TrainConfig(train=str(train_file), test=str(test_file), max_steps=3,
                                     batch_size=2, block_size=32, sample_tokens=4),
          on_event=on_event)
    assert seen == [{FusedTanhGELU}] * 3
    assert all(a is b for a, b in zip(_activations(model), before, strict=True))


def test_the_memory_plan_probes_the_fused_kernel_a_run_uses(demo_session, monkeypatch):
    """The fused GELU keeps one tensor where the op-by-op one keeps several: the plan's probe
    runs the forward a run runs, so its figure is the smaller one."""
    import contextlib

    import core.model.kernels

    model = demo_session.model
    planned = saved_activation_bytes(model, 64, model.config.vocab_size, chunked_loss=True)
    monkeypatch.setattr(core.model.kernels, "fused_activations", lambda m: contextlib.nullcontext(0))
    op_by_op = saved_activation_bytes(model, 64, model.config.vocab_size, chunked_loss=True)
    width = model.config.n_inner or 4 * model.config.n_embd
    # at least two (1, 64, 4·H) float32 tensors fewer per block
    assert op_by_op - planned >= 2 * 64 * width * 4 * model.config.n_layer


def test_a_training_forward_builds_no_kv_cache(corpus_files, fresh_session):
    caches = []

    def hook(module, args, kwargs, output):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] > 1:   # training and evaluation batches, not the sample
            caches.append(getattr(output, "past_key_values", None))

    handle = fresh_session.model.register_forward_hook(hook, with_kwargs=True)
    train_file, test_file = corpus_files
    try:
        train(fresh_session, TrainConfig(train=str(train_file), test=str(test_file), max_steps=2,
                                         batch_size=2, block_size=32, sample_tokens=4))
    finally:
        handle.remove()
    assert len(caches) >= 2 and all(cache is None for cache in caches)


def test_a_loaded_model_is_never_kernelized_from_the_hub(fresh_session, demo_dir):
    """transformers turns hub kernels on by default when the `kernels` package is there, and
    re-kernelizes on every train()/eval() switch; on a GPU that fetches kernels from the hub
    at a run's first evaluation, which raises on an offline box. Our models have it off."""
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(str(demo_dir))
    assert plain.use_kernels   # the library's default, which the loader must override

    model = fresh_session.model
    assert not model.use_kernels
    model.train()
    model.eval()
    assert not model.use_kernels and model.kernels_mode is None
