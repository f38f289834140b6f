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
