"""What `evaluation_run` reuses between calls (risk.services.request_memo): a user's
views and the statuses computed from them, only while the rows read now equal the rows
they came from. Each change below is written straight to its table (a queryset
`update`, no signal, no hook), as another process would write it: the next call must
see it. What time alone changes must be seen on a call that reused everything."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from accounts.models import AccountDay, Balance, Position
from risk.models import AlertStatus, BreakerTrip, CircuitBreaker, GlobalConfig, RiskLimit
from risk.services import request_memo
from risk.services.evaluation import evaluation_run
from risk.services.snapshots import config_cache_clear
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory, RiskLimitFactory, breaker_trip
from risk.tests.test_evaluate_cost import _configure, _reused

pytestmark = pytest.mark.django_db
D = Decimal


def _violations(result) -> set:
    return {(status.limit_type, status.symbol, status.source) for status in result.statuses if status.exceeded}


@pytest.fixture
def book(trader):
    """A trader with one account, a 100-notional BTC long, a 150 position_size limit and
    no breakers, on marks that stay fresh."""
    _configure(max_price_age_seconds=10**7)
    CircuitBreaker.objects.all().delete()
    account = books.account(trader)
    position = books.position(account, "BTCUSDT", size="1", entry="100")
    limit = RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(150), warning_value=None)
    return account, position, limit


def test_unchanged_rows_reuse_the_views_and_statuses(trader, book):
    first = evaluation_run(user_id=trader.pk)
    second = evaluation_run(user_id=trader.pk)
    assert _reused(first, second)
    assert second.risk_level == first.risk_level == "moderate"


def test_a_position_changed_by_another_process_is_seen(trader, book):
    _, position, _ = book
    first = evaluation_run(user_id=trader.pk)
    assert _violations(first) == set()
    Position.objects.filter(pk=position.pk).update(size=D(2), notional=D(200))
    second = evaluation_run(user_id=trader.pk)
    assert not _reused(first, second)
    assert _violations(second) == {("position_size", "BTCUSDT", "limit")}


def test_a_mark_changed_by_another_process_is_seen(trader, book):
    _, position, _ = book
    first = evaluation_run(user_id=trader.pk)
    Position.objects.filter(pk=position.pk).update(mark_price=D(90), unrealized_pnl=D(-10))
    second = evaluation_run(user_id=trader.pk)
    assert second.metrics.equity == first.metrics.equity - 10


def test_an_opened_position_is_seen(trader, book):
    account, _, _ = book
    first = evaluation_run(user_id=trader.pk)
    books.position(account, "BTCUSDT", "short", size="3", entry="100")
    assert (first.metrics.total_exposure, evaluation_run(user_id=trader.pk).metrics.total_exposure) == (100, 400)


def test_a_limit_changed_by_another_process_is_seen(trader, book):
    _, _, limit = book
    first = evaluation_run(user_id=trader.pk)
    RiskLimit.objects.filter(pk=limit.pk).update(threshold_value=D(90))
    second = evaluation_run(user_id=trader.pk)
    assert not _reused(first, second)
    assert _violations(second) == {("position_size", "BTCUSDT", "limit")}


def test_a_disabled_limit_is_seen(trader, book):
    _, _, limit = book
    evaluation_run(user_id=trader.pk)
    RiskLimit.objects.filter(pk=limit.pk).update(enabled=False)
    assert [status.source for status in evaluation_run(user_id=trader.pk).statuses] == ["config"] * 4  # caps only


def test_a_balance_changed_by_another_process_is_seen(trader, book):
    account, _, _ = book
    first = evaluation_run(user_id=trader.pk)
    Balance.objects.filter(account=account).update(balance=D(50))
    second = evaluation_run(user_id=trader.pk)
    assert first.metrics.leverage == D(100) / D(100000)
    assert second.metrics.leverage == 2


def test_the_days_row_changed_by_another_process_is_seen(trader, book):
    account, _, _ = book
    first = evaluation_run(user_id=trader.pk)
    AccountDay.objects.filter(account=account).update(realized_pnl=D(-60000))
    second = evaluation_run(user_id=trader.pk)
    assert (first.metrics.daily_loss, second.metrics.daily_loss) == (0, 60000)
    assert ("daily_loss", None, "config") in _violations(second)  # the desk's 50,000 cap


def test_another_users_position_moves_the_desk_cap(trader, book, make_user):
    first = evaluation_run(user_id=trader.pk)
    other = books.position(books.account(make_user()), "ETHUSDT", size="1", entry="100")
    assert ("total_exposure", None, "config") not in _violations(first)
    Position.objects.filter(pk=other.pk).update(notional=D(2_000_000))
    second = evaluation_run(user_id=trader.pk)
    assert ("total_exposure", None, "config") in _violations(second)


def test_a_configuration_change_is_seen(trader, book):
    first = evaluation_run(user_id=trader.pk)
    _configure(max_total_exposure=D(50))
    second = evaluation_run(user_id=trader.pk)
    assert not _reused(first, second)
    assert ("total_exposure", None, "config") in _violations(second)


def test_a_configuration_changed_by_another_process_is_seen(trader, book):
    """This process's cached configuration is checked against the index version on
    every call: a bump by another process's commit makes it read again."""
    from etrms.redis_client import platform_redis
    from risk.services.hooks import INDEX_VERSION_KEY

    first = evaluation_run(user_id=trader.pk)
    GlobalConfig.objects.filter(pk=GlobalConfig.SINGLETON_PK).update(max_total_exposure=D(50))
    assert evaluation_run(user_id=trader.pk).metrics is first.metrics  # not announced yet: the cached one
    platform_redis().incr(INDEX_VERSION_KEY)  # the other process's after-commit bump
    assert ("total_exposure", None, "config") in _violations(evaluation_run(user_id=trader.pk))


def test_a_trip_latched_by_another_process_is_seen(trader, book):
    _, position, _ = book
    breaker = CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action="cancel_all_orders")
    config_cache_clear()  # the breaker's after-commit version bump
    first = evaluation_run(user_id=trader.pk)
    breaker_trip(breaker, trader, f"position:{position.pk}", dry_run=True)
    second = evaluation_run(user_id=trader.pk)
    assert _reused(first, second)  # the book and limits did not change: only the open state did
    # seen: its condition is evaluated on fresh data and found clear, so it is released
    assert BreakerTrip.objects.get().release_reason == "condition cleared"


# --- what time alone changes, on calls that reused everything ----------------------------
# (staleness, time_based and both cooldowns: test_evaluate_cost's test_time_alone_* assert
# the reuse too)
def test_midnight_utc_rolls_the_day_over_although_nothing_was_written(trader, book):
    """The day is a parameter of the book's query: past midnight the day's row is
    another (none yet), so the loss realized yesterday no longer counts."""
    account, _, _ = book
    RiskLimitFactory(user=trader, symbol=None, limit_type="daily_loss", threshold_value=D(1000), warning_value=None)
    AccountDay.objects.filter(account=account).update(realized_pnl=D(-5000))
    day = AccountDay.objects.get(account=account).date
    before = evaluation_run(user_id=trader.pk, now=datetime.combine(day, time(23, 59, 58), tzinfo=UTC))
    again = evaluation_run(user_id=trader.pk, now=datetime.combine(day, time(23, 59, 59), tzinfo=UTC))
    after = evaluation_run(user_id=trader.pk, now=datetime.combine(day + timedelta(days=1), time(0, 0, 1), tzinfo=UTC))
    assert _reused(before, again) and not _reused(again, after)
    assert ("daily_loss", None, "limit") in _violations(again)
    assert after.metrics.daily_loss == 0 and ("daily_loss", None, "limit") not in _violations(after)
    assert not trader.risk_alerts.exclude(status=AlertStatus.RESOLVED).filter(alert_type="daily_loss_exceeded")


# --- the memo itself ------------------------------------------------------------------------
def test_the_memo_answers_only_equal_rows_and_stays_bounded(monkeypatch):
    monkeypatch.setattr(request_memo, "ROWS_HELD_MAX", 4)
    monkeypatch.setattr(request_memo, "ENTRY_ROWS_MAX", 3)
    memo = request_memo.RowsMemo()
    memo.put("a", [("1", "x"), ("2", "y")], "A")
    assert memo.get("a", [("1", "x"), ("2", "y")]) == "A"
    assert memo.get("a", [("1", "x"), ("2", "z")]) is None
    assert memo.get("a", [("1", "x")]) is None
    memo.put("b", [("3",), ("4",)], "B")
    memo.put("c", [("5",)], "C")  # five rows held: the least recently used ("a") goes
    assert memo.get("a", [("1", "x"), ("2", "y")]) is None
    assert (memo.get("b", [("3",), ("4",)]), memo.get("c", [("5",)])) == ("B", "C")
    memo.put("d", [("6",)] * 4, "D")  # more than one entry may hold: not kept, the others stay
    assert memo.get("d", [("6",)] * 4) is None
    assert memo.get("c", [("5",)]) == "C"
    identity = request_memo.RowsMemo(identity=True)
    views = [object(), object()]
    identity.put("a", views, "A")
    assert identity.get("a", list(views)) == "A"
    assert identity.get("a", [views[0], object()]) is None
    identity.put("b", views, "B", weight=4)  # views that stand for more rows than an entry may hold
    assert identity.get("b", views) is None
