"""Evaluation (SPEC §4): each limit type's metric from hand-built books at, just below
and just above its threshold; risk levels; desk caps; the evaluate endpoint's shape;
alerts raised once, escalated, resolved by themselves, held back by the cooldown."""

from decimal import Decimal

import pytest

from risk.api.outputs import evaluation_out
from risk.constants import AlertStatus
from risk.models import RiskAlert, RiskLimit
from risk.services.config import global_config_get
from risk.services.evaluation import evaluation_run
from risk.tests import books
from risk.tests.factories import RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_breakers", "no_caps")]

D = Decimal
EPSILON = D("0.01")
URL = "/api/v1/risk/evaluate"


# --- one book per limit type, with the metric's exact value ---------------------------------
def book_position_size(user):
    paper = books.account(user, "paper")
    binance = books.account(user, "binanceusdm")
    books.position(paper, "BTCUSDT", "long", size="2", entry="90", mark="100")  # +200
    books.position(binance, "BTCUSDT", "short", size="0.5", entry="110", mark="100")  # -50
    books.position(paper, "ETHUSDT", "long", size="1", entry="10", mark="10")  # other symbol: 10
    return D("150")


def book_total_exposure(user):
    book_position_size(user)
    return D("260")


def book_daily_loss(user):
    acct = books.account(user, balance="100000", day_realized="-300", day_start_unrealized="50")
    books.position(acct, "BTCUSDT", "long", size="1", entry="100", mark="80")  # unrealized -20
    return D("370")  # -(-300 - 20 - 50)


def book_margin_ratio(user):
    acct = books.account(user, balance="1100", maintenance_margin="250")
    books.position(acct, "BTCUSDT", "long", size="1", entry="200", mark="100")  # unrealized -100: equity 1000
    books.account(user, "binanceusdm", balance="5000", maintenance_margin="50")  # better account: 0.01
    return D("0.25")


def book_leverage(user):
    books.account(user, "paper", balance="30")
    books.account(user, "binanceusdm", balance="20")
    acct = user.exchange_accounts.get(exchange="paper")
    books.position(acct, "BTCUSDT", "long", size="2", entry="125", mark="125")  # 250
    return D("5")


def book_drawdown(user):
    acct = books.account(user, balance="800")
    books.account(user, "binanceusdm", balance="1000")
    return D("20"), {str(acct.pk): "1000"}


BOOKS = {
    "position_size": book_position_size,
    "total_exposure": book_total_exposure,
    "daily_loss": book_daily_loss,
    "margin_ratio": book_margin_ratio,
    "leverage": book_leverage,
    "drawdown": book_drawdown,
}


def _build(limit_type, user):
    built = BOOKS[limit_type](user)
    return built if isinstance(built, tuple) else (built, None)


@pytest.mark.parametrize("limit_type", list(BOOKS))
@pytest.mark.parametrize(
    ("offset", "violated"),
    [(D(0), True), (EPSILON, False), (-EPSILON, True)],
    ids=["at", "just-below", "just-above"],
)
def test_each_limit_type_at_and_around_its_threshold(trader, limit_type, offset, violated):
    value, peaks = _build(limit_type, trader)
    threshold = value + offset
    limit = RiskLimitFactory(
        user=trader,
        limit_type=limit_type,
        symbol="BTCUSDT" if limit_type == "position_size" else None,
        threshold_value=threshold,
        warning_value=None,
    )
    if peaks:
        RiskLimit.objects.filter(pk=limit.pk).update(equity_peaks=peaks)

    result = evaluation_out(evaluation_run(user_id=trader.pk, symbol="BTCUSDT"))
    violations = [v for v in result["violations"] if v["limit_id"] == str(limit.pk)]
    assert bool(violations) is violated, result
    status_value = value if not violations else D(violations[0]["current_value"])
    assert status_value == value
    alerts = RiskAlert.objects.filter(user=trader, alert_type=f"{limit_type}_exceeded")
    assert alerts.count() == (1 if violated else 0)
    if violated:
        assert result["risk_level"] == "critical"
        alert = alerts.get()
        assert alert.severity == "high" and alert.limit_id == limit.pk
        assert D(alert.metadata["current_value"]) == value and D(alert.metadata["threshold"]) == threshold
    else:
        assert result["risk_level"] == "high"  # u just under 1, no warning: w = 0.8


def test_metrics_of_the_evaluate_response(trader, trader_client):
    book_position_size(trader)
    body = trader_client.post(URL, {"symbol": "BTCUSDT"}, format="json").json()
    assert body["status"] == "success" and body["message"].startswith("Risk evaluated")
    assert body["metrics"] == {
        "position_size": "150.00",
        "daily_pnl": "25.00",  # 2 x (100 - 90) + 0.5 x (110 - 100)
        "total_exposure": "260.00",
        "margin_ratio": "0.00",  # no account reports margin: nothing is at risk
        "leverage": str(D(260) / D(200025)),  # exposure / (two balances of 100000 + 25 unrealized)
        "drawdown": "0.00",
        "daily_loss": "0.00",
    }
    assert body["risk_level"] == "low" and body["violations"] == [] and body["warnings"] == []
    assert body["circuit_breakers"] == []
    # without a symbol, position_size is the largest symbol's
    assert trader_client.post(URL, {}, format="json").json()["metrics"]["position_size"] == "150.00"


def test_position_size_without_symbol_applies_to_each_symbol(trader):
    book_position_size(trader)  # BTCUSDT 150, ETHUSDT 10
    limit = RiskLimitFactory(user=trader, symbol=None, threshold_value=D(100), warning_value=D(5))
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert [(v["symbol"], v["current_value"]) for v in result["violations"]] == [("BTCUSDT", "150.00")]
    assert [(w["symbol"], w["warning_value"]) for w in result["warnings"]] == [("ETHUSDT", "5.00")]
    keys = set(RiskAlert.objects.filter(limit=limit).values_list("alert_type", "metadata__symbol"))
    assert keys == {
        ("position_size_exceeded", "BTCUSDT"),
        ("position_size_warning", "BTCUSDT"),
        ("position_size_warning", "ETHUSDT"),
    }


@pytest.mark.parametrize(
    ("threshold", "warning", "level"),
    [
        ("1000", None, "low"),  # u = 0.15
        ("250", None, "moderate"),  # u = 0.6
        ("300", None, "moderate"),  # u = 0.5 exactly
        ("300.01", None, "low"),  # just under 0.5
        ("180", None, "high"),  # u = 0.83 >= 0.8
        ("200", "190", "moderate"),  # u = 0.75, w = 0.95
        ("200", "140", "high"),  # w = 0.7
        ("400", "100", "low"),  # u = 0.375, w = max(0.5, 0.25)
        ("150", None, "critical"),
    ],
)
def test_risk_level_follows_utilisation_and_warning(trader, threshold, warning, level):
    book_position_size(trader)
    RiskLimitFactory(
        user=trader, threshold_value=D(threshold), warning_value=D(warning) if warning else None, symbol="BTCUSDT"
    )
    assert evaluation_run(user_id=trader.pk).risk_level == level


def test_no_limit_is_low(trader):
    book_position_size(trader)
    assert evaluation_run(user_id=trader.pk).risk_level == "low"


def test_disabled_limits_do_not_count(trader):
    book_position_size(trader)
    RiskLimitFactory(user=trader, threshold_value=D(1), warning_value=None, enabled=False)
    assert evaluation_run(user_id=trader.pk).risk_level == "low"


def test_equity_at_or_below_zero_makes_leverage_critical_whatever_the_threshold(trader):
    acct = books.account(trader, balance="100")
    books.position(acct, "BTCUSDT", "long", size="1", entry="300", mark="200")  # equity 0
    RiskLimitFactory(user=trader, limit_type="leverage", symbol=None, threshold_value=D(1000000), warning_value=None)
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert result["risk_level"] == "critical"
    assert result["metrics"]["leverage"] is None
    (violation,) = result["violations"]
    assert (
        violation["limit_type"] == "leverage" and violation["current_value"] is None and "equity" in violation["reason"]
    )


def test_drawdown_tracks_its_own_peak_from_creation(trader):
    acct = books.account(trader, balance="1000", peak_equity="5000")  # an old peak the limit never saw
    limit = RiskLimitFactory(user=trader, limit_type="drawdown", symbol=None, threshold_value=D(10), warning_value=None)
    assert evaluation_out(evaluation_run(user_id=trader.pk))["violations"] == []
    limit.refresh_from_db()
    assert D(limit.equity_peaks[str(acct.pk)]) == 1000  # the peak since the limit exists

    acct.balance.balance = D(1200)
    acct.balance.save()
    evaluation_run(user_id=trader.pk)
    limit.refresh_from_db()
    assert D(limit.equity_peaks[str(acct.pk)]) == 1200

    acct.balance.balance = D(1080)  # 10% below the 1200 peak
    acct.balance.save()
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert [v["current_value"] for v in result["violations"]] == ["10.00"]
    assert result["metrics"]["drawdown"] == "78.40"  # the account's own peak of 5000


# --- desk caps (source config) ---------------------------------------------------------------
def test_symbol_cap_counts_the_whole_desk(trader, make_user, on_commit):
    other = make_user()
    books.position(books.account(trader), "BTCUSDT", "long", size="3", entry="100")  # 300
    books.position(books.account(other), "BTCUSDT", "long", size="2", entry="100")  # 200
    from risk.services.config import symbol_config_update

    symbol_config_update(actor=None, symbol="BTCUSDT", max_position_size=Decimal("500"))
    on_commit()
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    (violation,) = result["violations"]
    assert violation == {
        "limit_id": None,
        "limit_type": "position_size",
        "symbol": "BTCUSDT",
        "current_value": "500.00",
        "threshold": "500.00",
        "source": "config",
        "cap": "max_position_size",
    }
    assert result["risk_level"] == "critical"
    alert = RiskAlert.objects.get(user=trader)
    assert alert.alert_type == "position_size_exceeded" and alert.metadata["source"] == "config"
    # the other user is over the desk cap too
    assert evaluation_run(user_id=other.pk).risk_level == "critical"


def test_global_exposure_cap_and_exchange_cap(trader, make_user, on_commit):
    other = make_user()
    books.position(books.account(trader, "binanceusdm"), "ETHUSDT", "short", size="10", entry="50")  # 500
    books.position(books.account(other, "binanceusdm"), "BTCUSDT", "long", size="1", entry="600")  # 600
    config = global_config_get()
    config.max_total_exposure = D("1000")
    config.save()
    from risk.services.config import exchange_config_update

    exchange_config_update(actor=None, exchange="binanceusdm", max_exposure=Decimal("2000"))
    on_commit()
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert [(v["cap"], v["current_value"]) for v in result["violations"]] == [("max_total_exposure", "1100.00")]
    exchange_status = [s for s in evaluation_run(user_id=trader.pk).statuses if s.cap == "max_exposure"]
    assert exchange_status[0].value == D(1100) and exchange_status[0].exchange == "binanceusdm"


def test_symbol_leverage_cap_is_per_position(trader, on_commit):
    acct = books.account(trader)
    books.position(acct, "BTCUSDT", "long", leverage="20")
    from risk.services.config import symbol_config_update

    symbol_config_update(actor=None, symbol="BTCUSDT", max_leverage=Decimal("10"))
    on_commit()
    violations = evaluation_out(evaluation_run(user_id=trader.pk))["violations"]
    assert [(v["limit_type"], v["current_value"], v["threshold"]) for v in violations] == [
        ("leverage", "20.00", "10.00")
    ]


# --- alerts: one per crossing, escalation, self-resolution, cooldown ----------------------------
def _set_mark(position, mark):
    position.mark_price = D(mark)
    position.notional = abs(position.size * position.mark_price)
    position.unrealized_pnl = (position.mark_price - position.entry_price) * position.size
    position.save()


def test_alerts_are_raised_once_escalate_and_resolve_themselves(trader, published_alerts):
    acct = books.account(trader)
    position = books.position(acct, "BTCUSDT", "long", size="1", entry="100", mark="100")
    limit = RiskLimitFactory(user=trader, threshold_value=D(200), warning_value=D(150))
    config = global_config_get()
    config.alert_cooldown_seconds = 0
    config.save()

    def open_types():
        return sorted(
            RiskAlert.objects.filter(user=trader).exclude(status="resolved").values_list("alert_type", flat=True)
        )

    evaluation_run(user_id=trader.pk)
    assert open_types() == []

    _set_mark(position, "160")  # warning
    evaluation_run(user_id=trader.pk)
    evaluation_run(user_id=trader.pk)
    assert open_types() == ["position_size_warning"]
    warning = RiskAlert.objects.get(alert_type="position_size_warning")
    assert warning.severity == "medium" and warning.metadata["warning_value"] == "150.00"

    _set_mark(position, "250")  # exceeded: the exceeded alert joins the open warning
    evaluation_run(user_id=trader.pk)
    evaluation_run(user_id=trader.pk)
    assert open_types() == ["position_size_exceeded", "position_size_warning"]

    _set_mark(position, "170")  # back under the threshold, still above the warning level
    evaluation_run(user_id=trader.pk)
    assert open_types() == ["position_size_warning"]
    exceeded = RiskAlert.objects.get(alert_type="position_size_exceeded")
    assert exceeded.status == "resolved" and exceeded.resolved_at is not None
    assert exceeded.metadata["resolution"] == "condition cleared"

    _set_mark(position, "100")
    evaluation_run(user_id=trader.pk)
    assert open_types() == []
    assert RiskAlert.objects.filter(limit=limit).count() == 2

    published = [(m["alert"]["alert_type"], m["alert"]["status"]) for m in published_alerts(trader)]
    assert published == [
        ("position_size_warning", "triggered"),
        ("position_size_exceeded", "triggered"),
        ("position_size_exceeded", "resolved"),
        ("position_size_warning", "resolved"),
    ]
    assert published_alerts(trader)[0]["alert"]["type"] == "risk_limit"


def test_acknowledged_alert_still_deduplicates_and_still_resolves(trader):
    acct = books.account(trader)
    position = books.position(acct, "BTCUSDT", "long", size="3", entry="100")
    RiskLimitFactory(user=trader, threshold_value=D(200), warning_value=None)
    evaluation_run(user_id=trader.pk)
    alert = RiskAlert.objects.get()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.save()
    evaluation_run(user_id=trader.pk)
    assert RiskAlert.objects.count() == 1
    _set_mark(position, "50")
    evaluation_run(user_id=trader.pk)
    assert RiskAlert.objects.get().status == "resolved"


def test_cooldown_delays_the_same_alert_after_it_resolved(trader):
    acct = books.account(trader)
    position = books.position(acct, "BTCUSDT", "long", size="3", entry="100")
    RiskLimitFactory(user=trader, threshold_value=D(200), warning_value=None)
    config = global_config_get()
    config.alert_cooldown_seconds = 300
    config.save()
    evaluation_run(user_id=trader.pk)
    _set_mark(position, "50")
    evaluation_run(user_id=trader.pk)
    _set_mark(position, "100")
    evaluation_run(user_id=trader.pk)
    assert RiskAlert.objects.count() == 1  # held back: resolved less than 300 s ago
    RiskAlert.objects.update(
        resolved_at=RiskAlert.objects.get().resolved_at - __import__("datetime").timedelta(seconds=301)
    )
    evaluation_run(user_id=trader.pk)
    assert RiskAlert.objects.filter(status="triggered").count() == 1


def test_deleting_or_disabling_a_limit_resolves_its_alerts(trader, trader_client):
    books.position(books.account(trader), "BTCUSDT", "long", size="3", entry="100")
    limit = RiskLimitFactory(user=trader, threshold_value=D(200), warning_value=None)
    evaluation_run(user_id=trader.pk)
    assert trader_client.patch(f"/api/v1/risk/limits/{limit.pk}", {"enabled": False}, format="json").status_code == 200
    assert RiskAlert.objects.get().status == "resolved"


def test_limit_change_reevaluates_at_once(trader, trader_client, on_commit):
    books.position(books.account(trader), "BTCUSDT", "long", size="3", entry="100")
    response = trader_client.post(
        "/api/v1/risk/limits",
        {"symbol": "BTCUSDT", "limit_type": "position_size", "threshold_value": 250},
        format="json",
    )
    assert response.status_code == 201
    on_commit()  # the commit of the request: the owner is evaluated against the new limit
    assert RiskAlert.objects.get(user=trader).alert_type == "position_size_exceeded"


# --- the endpoint ----------------------------------------------------------------------------
def test_evaluate_endpoint_roles_and_validation(trader, trader_client, officer_client, make_user):
    other = make_user()
    books.position(books.account(other), "BTCUSDT", "long", size="3", entry="100")
    RiskLimitFactory(user=other, threshold_value=D(200), warning_value=None)
    from risk.tests.test_limits_api import assert_error

    assert_error(trader_client.post(URL, {"user_id": str(other.pk)}, format="json"), 404)
    assert not RiskAlert.objects.exists()
    body = officer_client.post(URL, {"user_id": str(other.pk)}, format="json").json()
    assert body["risk_level"] == "critical" and len(body["violations"]) == 1
    assert_error(trader_client.post(URL, {"symbol": "BTC/USDT"}, format="json"), 400, "symbol")
    assert_error(trader_client.post(URL, {"exchange": "nowhere"}, format="json"), 400, "exchange")
    assert_error(trader_client.post(URL, {"colour": 1}, format="json"), 400, "colour")
    assert trader_client.post(URL, {"symbol": "ethusdt", "exchange": "paper"}, format="json").status_code == 200


def test_evaluate_endpoint_query_count_does_not_grow_with_the_book(
    trader, trader_client, django_assert_max_num_queries
):
    acct = books.account(trader)
    for index in range(40):
        books.position(acct, f"S{index}USDT", "long", size="1", entry="10")
        RiskLimitFactory(user=trader, symbol=f"S{index}USDT", threshold_value=D(100), warning_value=None)
    with django_assert_max_num_queries(12):
        response = trader_client.post(URL, {}, format="json")
    assert response.status_code == 200


def test_version_bump_reloads_the_configuration(trader, on_commit):
    """Evaluators cache configuration and breakers per process, keyed by the Redis
    version the services bump after commit."""
    from django.db.models.signals import post_save

    from risk.models import GlobalConfig
    from risk.services import hooks
    from risk.services.config import global_config_update
    from risk.services.snapshots import config_view_get

    post_save.disconnect(sender=GlobalConfig, dispatch_uid="test-cache-GlobalConfig")  # the real mechanism only
    before = config_view_get()
    assert config_view_get() is before  # cached while the version stands
    global_config_update(actor=None, max_leverage=Decimal("3"))
    assert config_view_get().max_leverage is None  # not committed yet: still the cached view (no_caps)
    on_commit()
    after = config_view_get()
    assert after.version == hooks.index_version() > before.version
    assert after.max_leverage == 3
