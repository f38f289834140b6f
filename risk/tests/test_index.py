"""The feed's in-memory index (SPEC §11): ticks evaluate the affected users with no
query unless an outcome changes, agree with the database path, follow desk caps across
users, trip breakers, and reload on position events and settings changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError
from django.utils import timezone

from accounts.services.marks import positions_marks_update
from risk.models import BreakerTrip, RiskAlert
from risk.services.config import global_config_get
from risk.services.evaluation import evaluation_run
from risk.services.index import RiskIndex, active_index, index_activate
from risk.services.listeners import positions_changed_listener
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory, RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps")]

D = Decimal
QUERIES_TO_WRITE_AN_ALERT = 3  # a savepoint inside the test's transaction, the INSERT, its release
QUERIES_TO_REREAD_WHAT_IS_OPEN = 1  # a user: state_load's compiled query (four ORM queries before; 6 with the streaks)


def open_alert_types(user):
    return sorted(RiskAlert.objects.filter(user=user).exclude(status="resolved").values_list("alert_type", flat=True))


@pytest.fixture
def desk(trader):
    acct = books.account(trader)
    books.position(acct, "BTCUSDT", "long", size="1", entry="100")
    RiskLimitFactory(user=trader, threshold_value=D(150), warning_value=D(120))
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(45), action="close_position")
    return acct


def test_ticks_cost_no_query_until_an_outcome_changes(trader, desk, django_assert_num_queries):
    index = RiskIndex().load()
    with django_assert_num_queries(0):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("110")})
        index.apply_marks(exchange="paper", prices_by_symbol={"ETHUSDT": D("5")})  # nobody holds it
    assert open_alert_types(trader) == []

    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("130")})  # crosses the warning
    assert open_alert_types(trader) == ["position_size_warning"]
    with django_assert_num_queries(0):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("131")})
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("160")})
    assert open_alert_types(trader) == ["position_size_exceeded", "position_size_warning"]
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("100")})
    assert open_alert_types(trader) == []
    # The ETHUSDT tick reached nobody, and 131 stayed inside the band 130 left (120-150).
    assert index.evaluations == 4 and index.writes == 3


def test_index_agrees_with_the_database_path(trader, make_user, desk):
    other = make_user()
    books.position(books.account(other, "paper"), "BTCUSDT", "short", size="2", entry="120")
    RiskLimitFactory(user=other, limit_type="total_exposure", symbol=None, threshold_value=D(1000), warning_value=None)
    index = RiskIndex().load()
    at = timezone.now()
    for price in ("90", "125.5", "133.25"):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(price)}, at=at)
        positions_marks_update(exchange="paper", prices={"BTCUSDT": D(price)}, at=at)
        for user in (trader, other):
            from_db = evaluation_run(user_id=user.pk, breakers=False)
            assert _index_statuses(index, user.pk) == [(s.key, s.value, s.threshold) for s in from_db.statuses]
            assert index.desk.total_exposure == sum(
                abs(p.notional) for book in index.books.values() for p in book.positions
            )


def _index_statuses(index, user_id):
    from risk.services.assess import metrics_compute
    from risk.services.assess_limits import limits_assess

    book = index.books[user_id]
    metrics = metrics_compute(book)
    assessment = limits_assess(
        book=book, metrics=metrics, limits=index.limits.get(user_id, []), config=index.config, desk=index.desk
    )
    return [(s.key, s.value, s.threshold) for s in assessment.statuses]


def test_a_desk_cap_crossing_reaches_users_whose_symbol_did_not_tick(trader, make_user):
    other = make_user()
    books.position(books.account(trader), "BTCUSDT", "long", size="1", entry="100")
    books.position(books.account(other), "ETHUSDT", "long", size="1", entry="50")
    config = global_config_get()
    config.max_total_exposure = D(200)
    config.save()
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("149")})
    assert RiskAlert.objects.count() == 0
    users = index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("150")})  # desk: 150 + 50
    assert other.pk in users
    assert open_alert_types(trader) == ["total_exposure_exceeded"] == open_alert_types(other)


def test_ticks_trip_breakers_once(trader, desk):
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("60")})  # unrealized -40
    assert not BreakerTrip.objects.exists()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("55")})  # -45
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("50")})
    trip = BreakerTrip.objects.get()
    assert trip.action_status == "dry_run" and trip.context["unrealized_pnl"] == -45.0
    assert RiskAlert.objects.filter(alert_type="circuit_breaker", severity="critical").count() == 1


def test_position_events_reload_the_user_and_settings_follow_the_version(trader, desk, on_commit):
    index = RiskIndex().load()
    index_activate(index)
    try:
        assert active_index() is index
        books.position(desk, "ETHUSDT", "long", size="10", entry="20")
        positions_changed_listener(user_ids={trader.pk}, exchange="paper", symbols={"ETHUSDT"})
        assert {p.symbol for p in index.books[trader.pk].positions} == {"BTCUSDT", "ETHUSDT"}

        from risk.services.limits import limit_create

        limit_create(actor=trader, limit_type="total_exposure", threshold_value=D(250))
        on_commit()  # bumps the version; the limit listener evaluates through the database path
        RiskAlert.objects.all().delete()
        index.apply_marks(exchange="paper", prices_by_symbol={"ETHUSDT": D("20")})
        assert open_alert_types(trader) == ["total_exposure_exceeded"]  # 100 + 200 >= 250
    finally:
        index_activate(None)


def test_index_keeps_a_drawdown_peak_it_has_not_persisted_yet(trader):
    """B6: peak written at t=0 (100,000); equity rises to 112,000 at t=1 (too soon to
    persist); falls to 99,000 at t=3: the drawdown reads 11.6 %, not 1 %."""
    acct = books.account(trader, balance="100000")
    books.position(acct, "BTCUSDT", "long", size="1", entry="10000", mark="10000")
    limit = RiskLimitFactory(user=trader, limit_type="drawdown", symbol=None, threshold_value=D(10), warning_value=None)
    index = RiskIndex().load()
    t0 = timezone.now()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("10000")}, at=t0)
    limit.refresh_from_db()
    assert D(limit.equity_peaks[str(acct.pk)]) == D("100000")
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("22000")}, at=t0 + timedelta(seconds=1))
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("9000")}, at=t0 + timedelta(seconds=3))
    alert = RiskAlert.objects.get(user=trader, alert_type="drawdown_exceeded")
    assert D(alert.metadata["current_value"]).quantize(D("0.1")) == D("11.6")
    limit.refresh_from_db()
    assert D(limit.equity_peaks[str(acct.pk)]) == D("112000")  # persisted with the alert


def test_marks_are_persisted_from_memory_in_chunks_and_never_overwrite_a_newer_mark(trader, desk):
    """The feed persists the marks its index moved without reading the rows back: a
    chunk at a time (one short write transaction each), and a row that a sync marked
    later, or that closed meanwhile, is left as it is."""
    other = books.position(desk, "ETHUSDT", "long", size="2", entry="10")
    closing = books.position(desk, "SOLUSDT", "long", size="3", entry="5")
    index = RiskIndex().load()
    at = timezone.now()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(101), "ETHUSDT": D(11), "SOLUSDT": D(6)}, at=at)
    synced_at = at + timedelta(seconds=1)  # a sync read ETHUSDT after the tick and wrote its own mark
    type(other).objects.filter(pk=other.pk).update(mark_price=D(12), mark_updated_at=synced_at)
    type(closing).objects.filter(pk=closing.pk).update(closed_at=synced_at)

    assert index.held.marks_persist(limit=2) == 1  # two rows written, one waits
    assert index.held.marks_persist(limit=2) == 0
    assert index.held.marks_persist() == 0  # nothing moved since
    btc = desk.positions.get(symbol="BTCUSDT")
    assert (btc.mark_price, btc.notional, btc.unrealized_pnl, btc.mark_updated_at) == (D(101), D(101), D(1), at)
    other.refresh_from_db()
    closing.refresh_from_db()
    assert (other.mark_price, other.mark_updated_at) == (D(12), synced_at)
    assert closing.mark_price == D(5)  # closed: the feed's mark did not land


def test_an_alert_written_by_the_index_rereads_what_is_open_but_not_the_streaks(
    trader, desk, django_assert_max_num_queries
):
    """Raising an alert re-reads the user's open alerts and trips; closed-trade streaks
    change only with positions (their own event) or latches, so they are not read again."""
    CircuitBreakerFactory(name="losses", condition_type="consecutive_losses", threshold=3, action="cancel_all_orders")
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(110)})
    with django_assert_max_num_queries(QUERIES_TO_WRITE_AN_ALERT + QUERIES_TO_REREAD_WHAT_IS_OPEN):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(130)})  # crosses the warning
    assert open_alert_types(trader) == ["position_size_warning"]


def test_users_crossing_on_one_tick_are_written_first_and_reread_once(
    trader, make_user, desk, django_assert_max_num_queries
):
    """Two users cross on the same tick: both alerts are written (and published) before
    what is open is read again for both, so the second user's alert never waits for the
    first one's reload."""
    other = make_user()
    books.position(books.account(other, "paper"), "BTCUSDT", "long", size="1", entry="100")
    RiskLimitFactory(user=other, threshold_value=D(150), warning_value=D(120))
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(110)})
    with django_assert_max_num_queries(2 * (QUERIES_TO_WRITE_AN_ALERT + QUERIES_TO_REREAD_WHAT_IS_OPEN)):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(130)})
    assert open_alert_types(trader) == open_alert_types(other) == ["position_size_warning"]


def test_writes_interrupted_by_an_error_are_read_again_before_the_user_is_next_evaluated(trader, desk, monkeypatch):
    """Scenario: a tick at 130 writes the trader's warning, then the database fails as the
    index reads back what is open. Nothing may be written twice: before the trader's
    next evaluation the index reads the open warning, so the tick at 131 writes nothing.
    (The feed no longer hears the echo of its own alerts, which did this re-read.)"""
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("110")})
    reload = index._states_load

    def failing(user_ids, **kwargs):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(index, "_states_load", failing)
    with pytest.raises(DatabaseError):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("130")})
    assert open_alert_types(trader) == ["position_size_warning"] and index.states_unsure == {trader.pk}
    monkeypatch.setattr(index, "_states_load", reload)
    writes = index.writes
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("131")})
    assert index.writes == writes and index.states_unsure == set()
    assert open_alert_types(trader) == ["position_size_warning"]
