"""When the app freezes its settled heap: driven step by step with a fake timer, so what is
asserted never depends on how fast the machine is."""

import gc

import pytest

from tui.process import heap


class Timers:
    """Stands in for `App.set_timer`: keeps the callback, runs it when the test says."""

    def __init__(self):
        self.pending = []

    def __call__(self, delay, callback):
        assert delay > 0
        self.pending.append(callback)

    def fire(self) -> bool:
        if not self.pending:
            return False
        self.pending.pop(0)()
        return True


@pytest.fixture
def thawed():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settles_after_the_first_views_once_no_key_comes(thawed):
    timers = Timers()
    heap.settle_when_idle(timers, busy=lambda: False, quiet=lambda: True)
    for _ in range(3):              # a few half-seconds for the first views, even when quiet
        assert gc.get_freeze_count() == 0
        assert timers.fire()
    assert gc.get_freeze_count() > 0
    assert not timers.pending       # settled once, then nothing more is scheduled


def test_typing_puts_the_settling_off_until_a_quiet_moment(thawed):
    timers, typing = Timers(), [True]
    heap.settle_when_idle(timers, busy=lambda: False, quiet=lambda: not typing[0])
    for _ in range(10):
        assert timers.fire()
        assert gc.get_freeze_count() == 0
    typing[0] = False
    assert timers.fire()
    assert gc.get_freeze_count() > 0


def test_a_user_who_never_stops_typing_still_gets_a_settled_heap(thawed):
    timers = Timers()
    heap.settle_when_idle(timers, busy=lambda: False, quiet=lambda: False)
    fired = 0
    while timers.fire():
        fired += 1
    assert fired == 40 and gc.get_freeze_count() > 0


def test_never_settles_while_a_run_is_alive(thawed):
    timers, running = Timers(), [False]
    heap.settle_when_idle(timers, busy=lambda: running[0], quiet=lambda: True)
    assert timers.fire()
    running[0] = True               # a run started: its objects must stay collectable
    while timers.fire():
        pass
    assert gc.get_freeze_count() == 0
