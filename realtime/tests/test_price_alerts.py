"""Price alerts: the endpoints (roles, validation, ownership, the cap), the admin, and
firing exactly once through the index, whatever the burst of crossing prices."""

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from realtime.models import PriceAlert
from realtime.services.price_alert_index import PriceAlertIndex, price_alerts_check_range
from realtime.services.price_alerts import price_alert_cancel, price_alert_create
from risk.models import RiskAlert

URL = "/api/v1/cache/price-alert"
LIST = "/api/v1/cache/price-alerts"
AT = datetime(2025, 12, 16, 10, 0, tzinfo=UTC)


def create(client, **body):
    return client.post(URL, body, format="json")


# --- endpoints ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_answers_the_spec_shape(trader_client):
    response = create(trader_client, symbol="btc/usdt", condition="above", target_price=70000)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "symbol", "exchange", "condition", "target_price", "status", "created_at"}
    assert body["symbol"] == "BTCUSDT" and body["exchange"] == "paper"
    assert body["target_price"] == "70000.00" and body["status"] == "active"
    assert body["created_at"].endswith("Z")
    assert (
        create(trader_client, symbol="ETHUSDT", condition="below", target_price="0.123456789").json()["target_price"]
        == "0.123456789"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"condition": "above", "target_price": 1}, "symbol"),
        ({"symbol": "BTCUSDT", "condition": "sideways", "target_price": 1}, "condition"),
        ({"symbol": "BTCUSDT", "condition": "above"}, "target_price"),
        ({"symbol": "BTCUSDT", "condition": "above", "target_price": 0}, "target_price"),
        ({"symbol": "BTCUSDT", "condition": "above", "target_price": -5}, "target_price"),
        ({"symbol": "BTCUSDT", "condition": "above", "target_price": "abc"}, "target_price"),
    ],
)
def test_create_validation(trader_client, body, field):
    response = trader_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.django_db
def test_create_unknown_symbol_or_exchange_is_404(trader_client, anon_client, binance_server):
    assert create(trader_client, symbol="DOGEUSDT", condition="above", target_price=1).status_code == 404
    response = create(trader_client, symbol="DOGEUSDT", condition="above", target_price=1, exchange="binanceusdm")
    assert response.status_code == 404
    assert binance_server.requests_to("/fapi/v1/ticker/24hr") == []
    assert (
        create(trader_client, symbol="BTCUSDT", condition="above", target_price=1, exchange="nope").status_code == 404
    )
    assert create(anon_client, symbol="BTCUSDT", condition="above", target_price=1).status_code == 401
    response = create(trader_client, symbol="BTCUSDT", condition="above", target_price=1, exchange="binanceusdm")
    assert response.status_code == 201 and response.json()["exchange"] == "binanceusdm"


@pytest.mark.django_db
def test_active_alerts_are_capped_per_user(trader_client, officer_client, settings):
    settings.PRICE_ALERT_MAX_ACTIVE = 2
    ids = [create(trader_client, symbol="BTCUSDT", condition="above", target_price=p).json()["id"] for p in (1, 2)]
    response = create(trader_client, symbol="BTCUSDT", condition="above", target_price=3)
    assert response.status_code == 409
    assert "2 active price alerts" in response.json()["message"]
    assert create(officer_client, symbol="BTCUSDT", condition="above", target_price=3).status_code == 201
    assert trader_client.delete(f"{LIST}/{ids[0]}").status_code == 204
    assert create(trader_client, symbol="BTCUSDT", condition="above", target_price=3).status_code == 201


@pytest.mark.django_db
def test_list_is_own_alerts_and_officers_see_all(
    trader_client, officer_client, trader, officer, make_user, api_client_for
):
    other = make_user()
    create(trader_client, symbol="BTCUSDT", condition="above", target_price=1)
    create(api_client_for(other), symbol="ETHUSDT", condition="below", target_price=2)

    body = trader_client.get(LIST).json()
    assert body["count"] == 1 and body["alerts"][0]["symbol"] == "BTCUSDT"
    assert "user_id" not in body["alerts"][0]
    assert {"triggered_at", "triggered_price", "status"} <= set(body["alerts"][0])
    assert trader_client.get(f"{LIST}?user_id={other.pk}").status_code == 404
    assert trader_client.get(f"{LIST}?user_id={trader.pk}").json()["count"] == 1

    body = officer_client.get(LIST).json()
    assert body["count"] == 2 and {item["user_id"] for item in body["alerts"]} == {str(trader.pk), str(other.pk)}
    assert officer_client.get(f"{LIST}?user_id={other.pk}").json()["count"] == 1
    assert officer_client.get(f"{LIST}?status=triggered").json()["count"] == 0
    assert officer_client.get(f"{LIST}?status=bogus").status_code == 400
    assert officer_client.get(f"{LIST}?limit=0").status_code == 400
    assert officer_client.get(f"{LIST}?limit=1").json() == {**officer_client.get(f"{LIST}?limit=1").json(), "count": 2}


@pytest.mark.django_db
def test_delete_cancels_own_and_hides_others(trader_client, make_user, api_client_for, anon_client):
    mine = create(trader_client, symbol="BTCUSDT", condition="above", target_price=1).json()["id"]
    theirs = create(api_client_for(make_user()), symbol="BTCUSDT", condition="above", target_price=1).json()["id"]
    assert anon_client.delete(f"{LIST}/{mine}").status_code == 401
    assert trader_client.delete(f"{LIST}/{theirs}").status_code == 404
    assert trader_client.delete(f"{LIST}/{uuid.uuid4()}").status_code == 404
    response = trader_client.delete(f"{LIST}/{mine}")
    assert response.status_code == 204 and not response.content
    assert PriceAlert.objects.get(pk=mine).status == "cancelled"
    assert PriceAlert.objects.get(pk=theirs).status == "active"
    assert trader_client.delete(f"{LIST}/{mine}").status_code == 204  # nothing left to cancel


@pytest.mark.django_db
def test_admin_lists_and_creates_through_the_service(client, make_user, trader):
    officer = make_user("desk-officer", officer=True, is_staff=True)
    client.force_login(officer)
    assert client.get("/admin/realtime/pricealert/").status_code == 200
    response = client.post(
        "/admin/realtime/pricealert/add/",
        {"user": trader.pk, "symbol": "eth-usdt", "exchange": "paper", "condition": "below", "target_price": "2000"},
    )
    assert response.status_code == 302
    alert = PriceAlert.objects.get(user=trader)
    assert alert.symbol == "ETHUSDT" and alert.status == "active"
    response = client.post(
        "/admin/realtime/pricealert/", {"action": "cancel_alerts", "_selected_action": [str(alert.pk)]}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "cancelled"


# --- firing ----------------------------------------------------------------------------------------
def _alert(user, condition: str, target, symbol: str = "BTCUSDT") -> PriceAlert:
    return price_alert_create(user_id=user.pk, symbol=symbol, condition=condition, target_price=Decimal(target))


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_crossing_prices_fires_once(trader, settings):
    settings.PRICE_ALERT_INDEX_CHECK_SECONDS = 0
    alert = _alert(trader, "above", "100")
    # Two indexes stand for two feed processes; 8 threads each send 25 crossing ticks.
    indexes = [PriceAlertIndex(), PriceAlertIndex()]
    for index in indexes:
        index.reload()
    fired, errors = [], []
    start = threading.Barrier(8)

    def ticks(worker: int):
        try:
            start.wait()
            for step in range(25):
                price = Decimal(100 + step + worker)
                fired.extend(
                    price_alerts_check_range(
                        exchange="paper", symbol="BTCUSDT", low=price, high=price, at=AT, index=indexes[worker % 2]
                    )
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()  # each thread's own database connection

    threads = [threading.Thread(target=ticks, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(fired) == 1
    alert.refresh_from_db()
    assert alert.status == "triggered" and alert.triggered_at is not None and alert.triggered_price >= 100
    risk_alerts = list(RiskAlert.objects.filter(user=trader, alert_type="price_alert"))
    assert len(risk_alerts) == 1
    assert risk_alerts[0].severity == "low" and risk_alerts[0].status == "triggered"
    assert risk_alerts[0].metadata["price_alert_id"] == str(alert.pk)


@pytest.mark.django_db(transaction=True)
def test_only_crossed_thresholds_fire_and_the_index_follows_changes(trader, settings):
    settings.PRICE_ALERT_INDEX_CHECK_SECONDS = 0
    above = {target: _alert(trader, "above", target) for target in ("110", "120", "130")}
    below = {target: _alert(trader, "below", target) for target in ("90", "80")}
    other_symbol = _alert(trader, "above", "1", symbol="ETHUSDT")
    index = PriceAlertIndex()
    check = lambda price: price_alerts_check_range(  # noqa: E731
        exchange="paper", symbol="BTCUSDT", low=Decimal(price), high=Decimal(price), at=AT, index=index
    )
    assert check("100") == []
    assert len(index) == 6
    assert {a.metadata["target_price"] for a in check("120")} == {"110.00", "120.00"}  # equality crosses
    assert check("119") == []
    assert {a.metadata["target_price"] for a in check("85")} == {"90.00"}
    price_alert_cancel(alert=below["80"])
    late = _alert(trader, "below", "82")  # created while the index runs: picked up on the next tick
    assert {a.metadata["target_price"] for a in check("70")} == {"82.00"}
    assert PriceAlert.objects.get(pk=below["80"].pk).status == "cancelled"
    assert PriceAlert.objects.get(pk=late.pk).status == "triggered"
    assert PriceAlert.objects.get(pk=above["130"].pk).status == "active"
    assert PriceAlert.objects.get(pk=other_symbol.pk).status == "active"
    assert PriceAlert.objects.filter(status="triggered").count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_range_fires_above_by_its_high_and_below_by_its_low(trader, settings):
    from realtime.services.price_alert_index import price_alerts_check_range

    settings.PRICE_ALERT_INDEX_CHECK_SECONDS = 0
    up, down, untouched = _alert(trader, "above", "105"), _alert(trader, "below", "95"), _alert(trader, "above", "120")
    raised = price_alerts_check_range(
        exchange="paper", symbol="BTCUSDT", low=Decimal("94"), high=Decimal("110"), at=AT, index=PriceAlertIndex()
    )
    assert {alert.metadata["current_value"] for alert in raised} == {"110.00", "94.00"}
    up.refresh_from_db(), down.refresh_from_db(), untouched.refresh_from_db()
    assert (up.triggered_price, down.triggered_price) == (Decimal(110), Decimal(94))
    assert untouched.status == "active"
