"""Our sampler against transformers' own logits processors, on random logits and on the model."""

import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from core.base.errors import UserError
from core.inference.sampling import (
    SamplingSettings,
    candidates,
    choose_next,
    make_generator,
    top_p_filter,
)


def hf_probs(logits: torch.Tensor, seen: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    scores = logits[None, :].clone().float()
    ids = seen[None, :]
    if s.repetition_penalty != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(s.repetition_penalty)(ids, scores)
    if not s.greedy:
        if s.temperature != 1.0:
            scores = TemperatureLogitsWarper(s.temperature)(ids, scores)
        if s.top_k > 0:
            scores = TopKLogitsWarper(s.top_k)(ids, scores)
        if s.top_p < 1.0:
            scores = TopPLogitsWarper(s.top_p)(ids, scores)
    return scores.softmax(-1)[0]


def full_distribution(logits, seen, settings):
    """Our sampler's distribution over the whole vocabulary (0 for the tokens it drops)."""
    ids, kept = candidates(logits, seen, settings)
    if ids is None:
        return kept.softmax(-1)
    return torch.full_like(logits, float("-inf")).scatter(0, ids, kept).softmax(-1)


@pytest.mark.parametrize("case", range(200))
def test_distribution_matches_transformers_on_random_logits(case):
    g = torch.Generator().manual_seed(case)
    vocab = int(torch.randint(5, 300, (1,), generator=g))
    logits = torch.randn(vocab, generator=g) * float(torch.rand(1, generator=g) * 6 + 0.1)
    if case % 3 == 0:  # ties, including at the top-k boundary
        logits = torch.round(logits)
    seen = torch.randint(0, vocab, (int(torch.randint(0, 20, (1,), generator=g)),), generator=g)
    settings = SamplingSettings(
        temperature=float(torch.rand(1, generator=g) * 1.8 + 0.2),
        top_k=int(torch.randint(0, vocab + 5, (1,), generator=g)),
        top_p=float(torch.rand(1, generator=g) * 0.99 + 0.01) if case % 4 else 1.0,
        repetition_penalty=float(torch.rand(1, generator=g) * 1.5 + 0.5),
        greedy=case % 7 == 0,
    )
    ours = full_distribution(logits, seen, settings)
    theirs = hf_probs(logits, seen, settings)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)

    choice = choose_next(logits, seen, settings, make_generator(case, "cpu"))
    assert choice.prob == pytest.approx(float(theirs[choice.id]), rel=1e-5, abs=1e-9)
    assert theirs[choice.id] > 0
    probs_top = [p for _, p in choice.top]
    assert probs_top == sorted(probs_top, reverse=True)
    assert len(choice.top) >= min(5, vocab)
    if settings.greedy:
        assert choice.id == int(torch.argmax(theirs))


def test_top_k_keeps_ties():
    logits = torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0])
    probs = full_distribution(logits, torch.tensor([], dtype=torch.long),
                              SamplingSettings(top_k=2, top_p=1.0))
    assert (probs > 0).tolist() == [True, True, True, True, False]


def test_top_p_keeps_the_crossing_token_and_at_least_one():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = torch.isfinite(top_p_filter(probs.log(), 0.7)).tolist()
    assert kept == [True, True, False, False]  # 0.5 < 0.7, 0.5 + 0.3 crosses it: kept
    assert torch.isfinite(top_p_filter(probs.log(), 1e-9)).sum() == 1


def test_seeded_choice_is_reproducible_and_private():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(3))
    seen = torch.tensor([], dtype=torch.long)
    s = SamplingSettings(top_k=0, top_p=1.0)
    torch.manual_seed(123)
    expected_global = torch.rand(2)
    torch.manual_seed(123)
    a = [choose_next(logits, seen, s, make_generator(9, "cpu")).id for _ in range(3)]
    assert torch.equal(torch.rand(2), expected_global)  # global RNG untouched
    gen = make_generator(9, "cpu")
    b = choose_next(logits, seen, s, gen).id
    assert a == [b, b, b]


@pytest.mark.parametrize("bad", [dict(temperature=0), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1),
                                 dict(repetition_penalty=0), dict(max_new_tokens=0)])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(UserError):
        SamplingSettings(**bad).validate()
