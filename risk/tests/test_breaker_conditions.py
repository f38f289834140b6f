"""Each circuit breaker condition (SPEC §5) on hand-built position histories, at, just
below and just above its threshold (pure evaluation: `risk.services.assess`)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.selectors.books import PositionView
from accounts.services.marks import position_mark_apply
from risk.services.assess import BreakerInputs, breakers_assess
from risk.services.snapshots import Book, BreakerView
from risk.tests.factories import breakers_only_config

D = Decimal
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def breaker(condition_type, threshold, **params) -> BreakerView:
    return BreakerView(
        id=1,
        name="b",
        description="",
        condition_type=condition_type,
        threshold=D(threshold),
        action="close_position",
        symbols=None,
        exchanges=None,
        additional_params=params,
        cooldown_seconds=300,
    )


def position(
    side="long", *, size="1", entry="100", marks=("100",), realized="0", opened_minutes_ago=10
) -> PositionView:
    """A position opened at `entry` whose mark then went through `marks` (its history):
    best price and peak PnL are tracked along the way as accounts does."""
    view = PositionView(
        id=7,
        user_id="u",
        account_id=3,
        exchange="paper",
        symbol="BTCUSDT",
        side=side,
        hedged=False,
        size=D(size),
        entry_price=D(entry),
        mark_price=D(entry),
        mark_updated_at=NOW - timedelta(minutes=opened_minutes_ago),
        notional=abs(D(size) * D(entry)),
        unrealized_pnl=D(0),
        realized_pnl=D(realized),
        leverage=None,
        peak_pnl=D(realized),
        best_price=D(entry),
        opened_at=NOW - timedelta(minutes=opened_minutes_ago),
        peak_entry_notional=abs(D(size) * D(entry)),
    )
    for index, mark in enumerate(marks):
        assert position_mark_apply(view, price=D(mark), at=NOW - timedelta(seconds=len(marks) - index))
    return view


NO_INPUTS = BreakerInputs()


def trips(b, p, inputs=NO_INPUTS, now=NOW) -> bool:
    """Does breaker `b` hit position `p` (marks never stale here)?"""
    config = breakers_only_config((b,))
    book = Book(user_id=p.user_id, positions=[p])
    return bool(breakers_assess(book=book, config=config, now=now, inputs=inputs).hits)


AROUND = [("at", D(0), True), ("just below", D("0.0001"), False), ("just above", D("-0.0001"), True)]


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_max_position_size(case, offset, expected):
    p = position(size="2", marks=("150",))  # notional 300
    assert trips(breaker("max_position_size", D(300) + offset), p) is expected


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_pnl_loss(case, offset, expected):
    p = position(size="2", entry="100", marks=("75",))  # unrealized -50
    assert trips(breaker("pnl", D(50) + offset), p) is expected
    assert trips(breaker("pnl", D(50) + offset, direction="loss"), p) is expected


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_pnl_take_profit(case, offset, expected):
    p = position(side="short", size="2", entry="100", marks=("60",))  # unrealized +80
    assert trips(breaker("pnl", D(80) + offset, direction="profit"), p) is expected
    assert not trips(breaker("pnl", D(80) + offset), p)  # a profit is not a loss


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_max_drawdown_from_the_pnl_peak(case, offset, expected):
    # entry notional 1000; PnL went up to +300 then back to +100: fell 20% of entry notional
    p = position(size="10", entry="100", marks=("120", "130", "110"))
    assert p.peak_pnl == 300
    assert trips(breaker("max_drawdown", D(20) + offset), p) is expected


def test_max_drawdown_counts_realized_pnl_and_ignores_size_changes():
    p = position(size="10", entry="100", marks=("130",))  # peak +300
    # half closed at 130: +150 realized, the rest still open at 130 -> PnL unchanged
    p.realized_pnl, p.size = D(150), D(5)
    position_mark_apply(p, price=D(130), at=NOW)
    assert p.realized_pnl + p.unrealized_pnl == 300
    assert not trips(breaker("max_drawdown", D("0.0001")), p)  # size change alone never trips
    # PnL 150 + 90 = 240: fell 60 = 6% of the peak entry notional 1,000 (not 12% of the 500 left)
    position_mark_apply(p, price=D(118), at=NOW + timedelta(seconds=1))
    assert trips(breaker("max_drawdown", D(6)), p)
    assert not trips(breaker("max_drawdown", D("6.0001")), p)


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_trailing_stop_long(case, offset, expected):
    p = position(entry="100", marks=("110", "125", "100"))  # best 125, now 100: 20% retrace
    assert p.best_price == 125
    assert trips(breaker("trailing_stop", D(20) + offset), p) is expected


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_trailing_stop_short(case, offset, expected):
    p = position(side="short", entry="100", marks=("90", "80", "96"))  # best 80, now 96: 20%
    assert p.best_price == 80
    assert trips(breaker("trailing_stop", D(20) + offset), p) is expected


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_time_based_age(case, offset, expected):
    p = position(opened_minutes_ago=60)  # 3600 s
    assert trips(breaker("time_based", D(3600) + offset), p) is expected


@pytest.mark.parametrize(
    ("hhmm", "window", "expected"),
    [
        ("21:55", {"start": "21:55", "end": "22:05", "tz": "UTC"}, True),
        ("21:54", {"start": "21:55", "end": "22:05", "tz": "UTC"}, False),
        ("22:04", {"start": "21:55", "end": "22:05", "tz": "UTC"}, True),
        ("22:05", {"start": "21:55", "end": "22:05", "tz": "UTC"}, False),
        ("23:30", {"start": "23:00", "end": "01:00", "tz": "UTC"}, True),  # across midnight
        ("00:30", {"start": "23:00", "end": "01:00", "tz": "UTC"}, True),
        ("01:00", {"start": "23:00", "end": "01:00", "tz": "UTC"}, False),
        ("20:55", {"start": "16:55", "end": "17:05", "tz": "America/New_York"}, True),  # EDT, UTC-4
        ("21:55", {"start": "16:55", "end": "17:05", "tz": "America/New_York"}, False),
    ],
)
def test_time_based_flat_windows(hhmm, window, expected):
    hour, minute = (int(part) for part in hhmm.split(":"))
    now = datetime(2026, 7, 1, hour, minute, 30, tzinfo=UTC)
    p = position(opened_minutes_ago=1)
    p.opened_at = now - timedelta(seconds=60)
    assert trips(breaker("time_based", D(86400), flat_windows=[window]), p, now=now) is expected


def _streak(pnls):
    return {(3, "BTCUSDT"): [(NOW - timedelta(minutes=index + 1), D(pnl)) for index, pnl in enumerate(pnls)]}


@pytest.mark.parametrize(
    ("pnls", "threshold", "expected"),
    [
        (["-1", "-2", "-3"], 3, True),  # at
        (["-1", "-2"], 3, False),  # one short
        (["-1", "-2", "-3", "-4"], 3, True),  # above
        (["-1", "-2", "5", "-3"], 3, False),  # a win breaks the streak
        (["-1", "0", "-2", "-3"], 2, False),  # break-even is not a loss
        (["-1", "-2", "-3"], 2, True),
    ],
)
def test_consecutive_losses(pnls, threshold, expected):
    inputs = BreakerInputs(closed_trades=_streak(pnls))
    assert trips(breaker("consecutive_losses", threshold), position(), inputs) is expected


def test_consecutive_losses_after_an_officer_reset_count_only_newer_losses():
    trades = _streak(["-1", "-2", "-3", "-4"])  # closed 1..4 minutes ago
    cutoff = {(1, 3, "BTCUSDT"): NOW - timedelta(minutes=2, seconds=30)}  # reset between the 2nd and 3rd
    assert not trips(breaker("consecutive_losses", 3), position(), BreakerInputs(trades, cutoff))
    assert trips(breaker("consecutive_losses", 2), position(), BreakerInputs(trades, cutoff))


@pytest.mark.parametrize(("case", "offset", "expected"), AROUND)
def test_volatility(case, offset, expected):
    # range 95..114 over the window: (114 - 95) / 95 = 20%
    inputs = BreakerInputs(price_ranges={("paper", "BTCUSDT", 300): (D(95), D(114), 290.0)})
    assert trips(breaker("volatility", D(20) + offset, window_seconds=300), position(), inputs) is expected


@pytest.mark.parametrize(("span", "expected"), [(240.0, True), (239.9, False), (0.0, False)])
def test_volatility_needs_samples_over_80_percent_of_the_window(span, expected):
    inputs = BreakerInputs(price_ranges={("paper", "BTCUSDT", 300): (D(100), D(200), span)})
    assert trips(breaker("volatility", D(1)), position(), inputs) is expected


def test_volatility_without_samples_is_not_evaluated():
    assert not trips(breaker("volatility", D("0.0001")), position())
