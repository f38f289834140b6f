"""The feed's mark guard and evaluation batch (pure)."""

from decimal import Decimal

from realtime.feed.marks import MarkBatch, MarkGuard

D = Decimal
M = ("paper", "BTCUSDT")


def test_a_jump_is_held_until_a_second_tick_confirms_it():
    guard = MarkGuard(D("0.10"))
    assert guard.accept(M, D(100)) == D(100)
    assert guard.accept(M, D(110)) == D(110)  # exactly 10 %: accepted
    assert guard.accept(M, D("121.01")) is None  # just above 10 % of 110: held
    assert guard.accept(M, D(122)) == D(122)  # the next tick confirms it


def test_a_single_bad_print_never_becomes_the_mark():
    guard = MarkGuard(D("0.10"))
    guard.accept(M, D(50000))
    assert guard.accept(M, D(5000)) is None  # one bad print
    assert guard.accept(M, D(50010)) == D(50010)  # back to normal: the print is forgotten
    assert guard.accept(M, D(5000)) is None


def test_batch_conflates_marks_and_keeps_the_range_of_every_price():
    batch = MarkBatch()
    for price, mark in ((100, 100), (90, 90), (130, None), (95, 95)):
        batch.put(M, price=D(price), mark=D(mark) if mark else None, at=price)
    drained = batch.drain()
    assert drained.latest == {M: (D(95), 95)}  # latest accepted mark wins
    assert drained.ranges[M][:2] == (D(90), D(130))  # a held print still counts for price alerts
    assert batch.conflated == 2 and not batch.ready.is_set()
    assert batch.drain().latest == {}


def weight_of(markets: dict):
    return lambda market: markets.get(market, 1)


def test_a_crossing_tick_is_drained_before_the_markets_waiting_longer():
    """Scenario: ten markets of 20 positions wait (a batch takes 40 positions); a tick of
    an eleventh market may cross a level (urgent). The next drain is that market alone;
    then the oldest waiting markets go, 40 positions at a time, in arrival order."""
    batch = MarkBatch()
    markets = {("paper", f"S{n}USDT"): 20 for n in range(10)}
    for market in markets:
        batch.put(market, price=D(100), mark=D(100), at=1)
    hot = ("paper", "HOTUSDT")
    batch.put(hot, price=D(130), mark=D(130), at=2, urgent=True)
    assert list(batch.drain(budget=40, weight=weight_of(markets)).latest) == [hot]
    assert list(batch.drain(budget=40, weight=weight_of(markets)).latest) == list(markets)[:2]
    assert list(batch.drain(budget=40, weight=weight_of(markets)).latest) == list(markets)[2:4]
    assert batch.ready.is_set()
    while batch.ready.is_set():
        batch.drain(budget=40, weight=weight_of(markets))
    assert not batch.latest and not batch.ranges and not batch.urgent


def test_ordinary_markets_wait_behind_urgent_ones_at_most_ordinary_wait():
    """Scenario: one market's every tick may cross a level (urgent), another's none. The
    urgent one goes first as long as it keeps coming, until the other has waited
    `ordinary_wait`; then the other goes, and the urgent one after it."""
    batch = MarkBatch(ordinary_wait=60)
    quiet, busy = ("paper", "QUIETUSDT"), ("paper", "BUSYUSDT")
    batch.put(quiet, price=D(100), mark=D(100), at=1)
    batch.put(busy, price=D(100), mark=D(100), at=1, urgent=True)
    assert list(batch.drain(budget=1, weight=weight_of({})).latest) == [busy]
    batch.put(busy, price=D(101), mark=D(101), at=2, urgent=True)
    assert list(batch.drain(budget=1, weight=weight_of({})).latest) == [busy]
    batch.waiting[quiet] -= 61  # a minute of urgent ticks later
    batch.put(busy, price=D(102), mark=D(102), at=3, urgent=True)
    assert list(batch.drain(budget=1, weight=weight_of({})).latest) == [quiet]
    assert list(batch.drain(budget=1, weight=weight_of({})).latest) == [busy]
    assert not batch.ready.is_set()


def test_a_market_is_never_split_and_one_heavier_than_the_budget_still_goes():
    batch = MarkBatch()
    whale, minnow = ("paper", "BTCUSDT"), ("paper", "ETHUSDT")
    batch.put(whale, price=D(100), mark=None, at=1)  # a held mark: only its range waits
    batch.put(minnow, price=D(5), mark=D(5), at=1)
    drained = batch.drain(budget=10, weight=weight_of({whale: 500}))
    assert drained.ranges.keys() == {whale} and drained.latest == {}
    assert batch.drain(budget=10, weight=weight_of({whale: 500})).latest == {minnow: (D(5), 1)}


ORDINARY = [("paper", f"S{n}USDT") for n in range(10)]
HOT = ("paper", "HOTUSDT")


def drains_behind_a_flood(*, count: int, drain_seconds: float, ticking_again: bool = False) -> list:
    """Ten ordinary markets of 20 positions have waited a second; HOT ticks urgently
    before each of `count` drains, each taking `drain_seconds`. With `ticking_again`,
    the ordinary markets a drain took tick again meanwhile, still waiting longest.
    Returns the markets of each drain."""
    batch = MarkBatch(ordinary_wait=0.05)
    for market in ORDINARY:
        batch.put(market, price=D(100), mark=D(100), at=1)
        batch.waiting[market] -= 1  # a second ago
    drains = []
    for _ in range(count):
        batch.put(HOT, price=D(130), mark=D(130), at=2, urgent=True)
        drains.append(list(batch.drain(budget=40, weight=lambda market: 20 if market in ORDINARY else 1).latest))
        batch.ordinary_at -= drain_seconds
        for market in drains[-1] if ticking_again else ():
            if market in ORDINARY:
                batch.put(market, price=D(100), mark=D(100), at=3)
                batch.waiting[market] -= 1
    return drains


def test_once_a_market_has_waited_ordinary_wait_it_gets_a_batch_every_tenth_of_it():
    """Scenario (a broad rally: urgent ticks on every batch): ten ordinary markets of 20
    positions have waited a second; one market ticks urgently before every drain, and a
    drain takes 2 ms. The ten go two a batch every 10 ms (`ordinary_wait` / 5, not one
    batch every 50 ms), the urgent market in every batch between, so it never waits
    behind more than one of theirs."""
    drains = drains_behind_a_flood(count=25, drain_seconds=0.002)
    assert drains[0::5] == [ORDINARY[n : n + 2] for n in range(0, 10, 2)]
    assert all(drain == [HOT] for n, drain in enumerate(drains) if n % 5)


def test_when_evaluation_falls_behind_a_crossing_still_waits_for_at_most_one_ordinary_batch():
    """Scenario (a machine too slow for the tick rate): every drain takes 20 ms, longer
    than `ordinary_wait` / 5, and the ordinary markets have waited a second and keep
    ticking. A crossing tick arrives before every drain: batches alternate between it
    and the markets waiting longest (before, every drain was theirs once one had waited
    10 ms since their last, and the crossing waited behind all of them)."""
    drains = drains_behind_a_flood(count=10, drain_seconds=0.02, ticking_again=True)
    assert drains[1::2] == [[HOT]] * 5
    assert all(HOT not in drain for drain in drains[0::2])
