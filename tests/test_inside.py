"""Inside the model (core.inference.inside, `rugpt-tui inspect`), exact against computations
written with transformers alone, on GPT-2 (the demo) and on Llama: the logit lens against
each block's output caught by a forward hook and read through the model's final norm and
head; the attention against transformers' eager attention; a knocked-out head against the
same model with that head's columns of the output projection zeroed."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.inference.inside import (
    anatomy,
    attention,
    attention_glance,
    head_knockouts,
    logit_lens,
    prompt_ids,
    target_id,
)
from tests.helpers import cli

PROMPT = "Однажды в студёную зимнюю пору я из лесу вышел"


def parts_by_name(model):
    """The final norm, the blocks and each block's output projection, named per family."""
    if hasattr(model, "transformer"):   # GPT-2
        blocks = model.transformer.h
        return model.transformer.ln_f, blocks, [b.attn.c_proj for b in blocks]
    blocks = model.model.layers         # Llama
    return model.model.norm, blocks, [b.self_attn.o_proj for b in blocks]


def test_the_lens_reads_each_blocks_output_through_the_final_norm_and_head(family_session):
    session = family_session
    model, ids = session.model, prompt_ids(session, PROMPT)
    norm, blocks, _ = parts_by_name(model)
    caught = []
    handles = [block.register_forward_hook(lambda m, args, out: caught.append(
        (out[0] if isinstance(out, tuple) else out).detach())) for block in blocks]
    with torch.no_grad():
        embeddings = model.get_input_embeddings()(torch.tensor([ids]))
        if hasattr(model, "transformer"):   # GPT-2 adds its learned positions
            embeddings = embeddings + model.transformer.wpe(torch.arange(len(ids)))[None]
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    for handle in handles:
        handle.remove()
    residuals = [embeddings, *caught[:-1]]   # the input of block 1, the output of blocks 1…L-1
    with torch.no_grad():
        expected = [torch.softmax(model.lm_head(norm(r))[0].float(), -1) for r in residuals]
    expected.append(torch.softmax(logits.float(), -1))
    lens = logit_lens(session, ids, top=5)
    assert len(lens) == len(blocks) + 1 and all(len(row) == len(ids) for row in lens)
    for row, probs in zip(lens, expected):
        for position, cell in enumerate(row):
            top = probs[position].topk(5)
            assert [i for i, _ in cell.top] == top.indices.tolist()
            assert torch.allclose(torch.tensor([p for _, p in cell.top]), top.values, atol=1e-5)
            final = int(expected[-1][position].argmax())
            assert cell.final == (int((probs[position] > probs[position, final]).sum()) + 1,
                                  pytest.approx(float(probs[position, final]), abs=1e-5))
            if position + 1 < len(ids):
                following = ids[position + 1]
                assert cell.actual[1] == pytest.approx(float(probs[position, following]), abs=1e-5)
            else:
                assert cell.actual is None


def test_attention_equals_transformers_eager_attention(family_model, family_session):
    session = family_session
    ids = prompt_ids(session, PROMPT)
    reference = AutoModelForCausalLM.from_pretrained(session.info.source, attn_implementation="eager")
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor([ids]), output_attentions=True).attentions
    ours = attention(session, ids)
    assert len(ours) == len(expected)
    for block, weights in zip(ours, expected):
        assert len(block) == weights.shape[1]
        for head, pattern in enumerate(block):
            assert torch.allclose(pattern, weights[0, head], atol=1e-5)
    assert session.model.config._attn_implementation == "sdpa"   # as it was


def test_a_knocked_out_head_equals_zeroing_its_columns_of_the_output_projection(fresh_family_session):
    session = fresh_family_session
    model, ids = session.model, prompt_ids(session, PROMPT)
    parts = anatomy(model)
    target = logit_lens(session, ids)[-1][-1].top[0][0]
    prob, delta = head_knockouts(session, ids, target)
    _, _, projections = parts_by_name(model)
    with torch.no_grad():
        base = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)[target]
        assert prob == pytest.approx(float(base.exp()), abs=1e-6)
        for block, projection in enumerate(projections):
            for head in range(parts.heads):
                saved = projection.weight.detach().clone()
                cut = slice(head * parts.head_dim, (head + 1) * parts.head_dim)
                if projection.weight.shape[0] == saved.shape[0] and hasattr(model, "transformer"):
                    projection.weight[cut, :] = 0   # GPT-2's Conv1D: (in, out)
                else:
                    projection.weight[:, cut] = 0   # nn.Linear: (out, in)
                knocked = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
                projection.weight.copy_(saved)
                assert delta[block][head] == pytest.approx(float(knocked[target] - base), abs=1e-5)
    assert any(abs(d) > 1e-4 for row in delta for d in row)   # the heads do something


def test_attention_is_handed_over_a_block_at_a_time_and_let_go(demo_session):
    """At the model's whole context, a block's weights are gone once the next block's come:
    nothing holds every block's (heads, T, T) at once."""
    import weakref

    ids = (prompt_ids(demo_session, PROMPT) * 200)[:demo_session.max_positions]
    previous: list = []
    alive_at_next: list[bool] = []

    def each(block, weights):
        if previous:
            alive_at_next.append(previous[-1]() is not None)
        assert weights.shape == (anatomy(demo_session.model).heads, len(ids), len(ids))
        previous.append(weakref.ref(weights))

    from core.inference.inside import attention_by_block

    attention_by_block(demo_session, ids, each)
    assert alive_at_next == [False] * (len(anatomy(demo_session.model).blocks) - 1)


def test_inspect_attention_as_text_says_where_the_last_tokens_heads_look(demo_session):
    ids = (prompt_ids(demo_session, PROMPT) * 200)[:demo_session.max_positions]
    prompt = demo_session.tokenizer.decode(ids)
    ids = prompt_ids(demo_session, prompt)
    done = cli("inspect", "--model", "demo", "--device", "cpu", "--prompt", prompt, "--attention")
    assert done.returncode == 0, done.stderr
    weights = attention(demo_session, ids)
    for block, heads in enumerate(weights, 1):
        most = [int(w[len(ids) - 1].argmax()) for w in heads]
        assert f"block {block}: the last token's heads look most at positions {most}" in \
            " ".join(done.stdout.split())


def test_inspect_piped_into_a_reader_that_stops_early_ends_quietly(demo_session):
    """`inspect --attention --json | head -c 100`: the reader closes the pipe long before the
    weights are all written; the command stops with SIGPIPE's status and says nothing."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    prompt = demo_session.tokenizer.decode((prompt_ids(demo_session, PROMPT) * 20)[:200])
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "inspect", "--model", "demo", "--device", "cpu",
                             "--prompt", prompt, "--attention", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100).startswith(b'{"model": "demo"')
    proc.stdout.close()   # as `head` does once it has its bytes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_target_text_is_its_first_token_as_it_follows_the_prompt(demo_session):
    lens_last = logit_lens(demo_session, prompt_ids(demo_session, PROMPT))[-1][-1]
    assert target_id(demo_session, PROMPT, None, lens_last) == lens_last.top[0][0]
    whole = demo_session.tokenizer(PROMPT + " на")["input_ids"]
    assert target_id(demo_session, PROMPT, " на", lens_last) == whole[len(prompt_ids(demo_session, PROMPT))]


def test_inspect_json_is_what_core_computes(demo_session):
    done = cli("inspect", "--model", "demo", "--device", "cpu", "--prompt", PROMPT, "--top", "3",
               "--attention", "--ablate", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    ids = prompt_ids(demo_session, PROMPT)
    assert [t["id"] for t in out["tokens"]] == ids
    assert out["layers"] == 2 and out["heads"] == anatomy(demo_session.model).heads
    lens = logit_lens(demo_session, ids, top=3)
    assert [[[i for i, _ in cell["top"]] for cell in row] for row in out["lens"]] == \
        [[[i for i, _ in cell.top] for cell in row] for row in lens]
    weights = attention(demo_session, ids)
    assert out["attention"][1][0][4] == pytest.approx(weights[1][0][4, :5].tolist(), abs=1e-6)
    target = lens[-1][-1].top[0][0]
    prob, delta = head_knockouts(demo_session, ids, target)
    assert out["ablation"]["position"] == len(ids) - 1 and out["ablation"]["target"] == target
    assert [d for row in out["ablation"]["delta"] for d in row] == \
        pytest.approx([d for row in delta for d in row], abs=1e-6)


def test_bad_inspect_input_is_one_line_and_exit_2():
    done = cli("inspect", "--model", "demo", "--device", "cpu", "--prompt", "")
    assert done.returncode == 2 and done.stderr.strip() == \
        "rugpt-tui: error: the prompt has no tokens: type some text"


def test_the_lens_read_a_few_positions_at_a_time_equals_it_read_whole(demo_session, monkeypatch):
    """Long prompts are read through the head a bounded number of positions at a time."""
    import core.inference.inside as inside

    ids = prompt_ids(demo_session, PROMPT)
    whole = logit_lens(demo_session, ids)
    monkeypatch.setattr(inside, "LENS_ROWS", 3)
    for row, row_whole in zip(logit_lens(demo_session, ids), whole):
        for cell, cell_whole in zip(row, row_whole):
            assert [i for i, _ in cell.top] == [i for i, _ in cell_whole.top]
            assert [p for _, p in cell.top] == pytest.approx([p for _, p in cell_whole.top], abs=1e-6)
            assert cell.final == pytest.approx(cell_whole.final, abs=1e-6)
            assert (cell.actual is None) == (cell_whole.actual is None)


def test_the_reader_puts_only_the_positions_asked_for_through_the_head(demo_session):
    """The output head — the lens's cost — reads each asked position once per layer below
    the model's output, and nothing else; what it reads equals the whole lens."""
    from core.inference.inside import LensReader

    ids = prompt_ids(demo_session, PROMPT)
    head = demo_session.model.get_output_embeddings()
    rows_through_head: list[int] = []
    handle = head.register_forward_hook(lambda m, args, out: rows_through_head.append(
        out.reshape(-1, out.shape[-1]).shape[0]))
    try:
        reader = LensReader(demo_session, ids)
        assert rows_through_head == [len(ids)]   # the model's own forward pass, nothing more
        rows_through_head.clear()
        first = reader.read([2, 5, 2])
        again = reader.read([5])
    finally:
        handle.remove()
    layers = len(anatomy(demo_session.model).blocks)
    assert sum(rows_through_head) == 2 * layers and sorted(first) == [2, 5] and again == {}
    whole = logit_lens(demo_session, ids)
    for position in (2, 5):
        for layer, cell in enumerate(reader.columns[position]):
            assert [i for i, _ in cell.top] == [i for i, _ in whole[layer][position].top]
            assert [p for _, p in cell.top] == pytest.approx([p for _, p in whole[layer][position].top], abs=1e-6)
            assert cell.final == (whole[layer][position].final[0], pytest.approx(whole[layer][position].final[1]))
    assert [c.top for c in reader.model_row] == [c.top for c in whole[-1]]


def test_a_reader_whose_weights_changed_asks_to_be_read_again(fresh_session):
    from core.inference.inside import LensReader, StaleLens, knock_out

    ids = prompt_ids(fresh_session, PROMPT)
    reader = LensReader(fresh_session, ids)
    reader.read([0])
    knock_out(fresh_session, {0: (1,)})   # the model reads otherwise from here on
    try:
        with pytest.raises(StaleLens):
            reader.read([1])
    finally:
        knock_out(fresh_session, {})


def test_damaged_weights_are_one_line(fresh_session):
    from core.base.errors import UserError
    from core.inference.generation import DAMAGED

    with torch.no_grad():
        next(fresh_session.model.parameters()).fill_(float("inf"))
    with pytest.raises(UserError, match="^" + DAMAGED[:30]):
        logit_lens(fresh_session, prompt_ids(fresh_session, PROMPT))


def generated_ids(session, seed=3):
    from core.inference.generation import GenerationDone, generate_stream
    from core.inference.sampling import SamplingSettings

    *_, done = generate_stream(session, PROMPT, SamplingSettings(seed=seed, max_new_tokens=16))
    assert isinstance(done, GenerationDone)
    return done.ids


def test_generation_with_heads_knocked_out_equals_the_model_without_their_columns(fresh_family_session):
    """Heads kept out by `knock_out` for every forward pass: the same seed generates what the
    model generates with those heads' columns of the output projection zeroed — and, put
    back, what it generated before."""
    from core.inference.inside import knock_out, parse_heads

    session = fresh_family_session
    parts = anatomy(session.model)
    plain = generated_ids(session)
    knock_out(session, parse_heads("1.1 1.2"))   # block 1's first two heads
    without = generated_ids(session)
    assert session.knocked_out == {0: (0, 1)}
    knock_out(session, {})
    assert generated_ids(session) == plain and not session.knockout_hooks
    _, _, projections = parts_by_name(session.model)
    cut = slice(0, 2 * parts.head_dim)
    with torch.no_grad():
        if hasattr(session.model, "transformer"):
            projections[0].weight[cut, :] = 0   # GPT-2's Conv1D: (in, out)
        else:
            projections[0].weight[:, cut] = 0   # nn.Linear: (out, in)
    assert without == generated_ids(session) and without != plain


def test_heads_are_named_block_dot_head_from_1(demo_session):
    from core.base.errors import UserError
    from core.inference.inside import heads_text, knock_out, parse_heads

    assert parse_heads("1.3, 2.1 1.1") == {0: (2, 0), 1: (0,)}
    assert heads_text({0: (0, 2), 1: (0,)}) == "1.1 1.3 2.1"
    for bad in ("1", "0.1", "a.b", "1.0"):
        with pytest.raises(UserError, match="block.head"):
            parse_heads(bad)
    with pytest.raises(UserError, match="blocks of"):
        knock_out(demo_session, {5: (0,)})


def test_a_run_puts_knocked_out_heads_back_first(fresh_session, corpus_files):
    from core.inference.inside import knock_out
    from core.training.config import TrainConfig
    from core.training.events import Notice
    from core.training.loop import train

    knock_out(fresh_session, {1: (0,)})
    train_file, test_file = corpus_files
    events = []
    train(fresh_session, TrainConfig(train=str(train_file), test=str(test_file), max_steps=1,
                                     batch_size=4, block_size=32, sample_tokens=1), on_event=events.append)
    assert fresh_session.knocked_out == {} and not fresh_session.knockout_hooks
    assert any(isinstance(e, Notice) and "put back" in e.message for e in events)


def test_the_attention_glance_is_read_from_transformers_eager_weights(family_session):
    session = family_session
    ids = prompt_ids(session, PROMPT)
    weights = attention(session, ids)          # checked against eager attention above
    position = len(ids) - 2
    looks, pattern = attention_glance(session, ids, position, chosen=(1, 1))
    assert torch.allclose(pattern, weights[1][1], atol=1e-6)
    for block, heads in enumerate(weights):
        for head, w in enumerate(heads):
            row = w[position, :position + 1]
            look = looks[block][head]
            assert look.most == int(row.argmax()) and look.weight == pytest.approx(float(row.max()), abs=1e-6)
            entropy = float(-(row * torch.log2(row.clamp(min=1e-12))).sum())
            assert look.entropy == pytest.approx(entropy, abs=1e-5)


def test_the_glance_at_the_full_context_keeps_one_head_s_pattern(demo_session):
    """At the model's whole context, only the chosen head's (T, T) comes back."""
    ids = (prompt_ids(demo_session, PROMPT) * 200)[:demo_session.max_positions]
    looks, pattern = attention_glance(demo_session, ids, len(ids) - 1, chosen=(0, 0))
    assert pattern.shape == (len(ids), len(ids)) and len(looks) == 2
    assert all(0 <= look.most < len(ids) for row in looks for look in row)
