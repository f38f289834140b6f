"""The dashboard page, its login and its session token endpoint, and the read-only
risk and breaker views it draws, with Django's test client."""

from decimal import Decimal

import pytest
from django.test import Client

from conftest import TEST_PASSWORD
from risk.models import BreakerTrip
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory, RiskLimitFactory

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    return client


def test_dashboard_requires_a_login():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_a_trader_logs_in_to_the_dashboard_but_not_into_the_admin(trader):
    client = _login(trader)
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert trader.username in html and "trader" in html
    assert 'id="user-filter"' not in html and 'href="/admin/"' not in html
    assert "lightweight-charts.standalone.production.js" in html and "cdn" not in html.lower()
    admin = client.get("/admin/")
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")


def test_an_officer_gets_the_user_filter_and_admin_links(officer):
    html = _login(officer).get("/").content.decode()
    assert 'id="user-filter"' in html and 'href="/admin/"' in html
    assert '"officer": true' in html


def test_a_wrong_password_shows_the_form_again(trader):
    response = Client().post("/login/", {"username": trader.username, "password": "wrong"})
    assert response.status_code == 200
    assert b"id_password" in response.content


def test_the_token_endpoint_needs_the_session_and_csrf(trader, anon_client):
    assert Client().post("/dashboard/token").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(trader)
    assert strict.post("/dashboard/token").status_code == 403  # no CSRF token
    page = strict.get("/")
    token = page.context["csrf_token"]
    response = strict.post("/dashboard/token", HTTP_X_CSRFTOKEN=str(token))
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "trader" and body["user_id"] == str(trader.pk)
    assert 0 < body["lifetime_seconds"] <= 15 * 60
    assert "refresh" not in body
    me = anon_client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200 and me.json()["username"] == trader.username
    assert strict.get("/dashboard/token").status_code == 405


def test_an_officers_token_carries_the_role(officer):
    client = Client()
    client.force_login(officer)
    assert client.post("/dashboard/token").json()["role"] == "risk_officer"


def _book(user, *, mark="30000"):
    acct = books.account(user, balance="100000")
    books.position(acct, "BTCUSDT", size="1", entry="30000", mark=mark)
    return acct


def test_risk_view_shows_every_limit_with_its_utilisation(trader, api_client_for):
    _book(trader, mark="30000")
    limit = RiskLimitFactory(
        user=trader, symbol="BTCUSDT", limit_type="position_size", threshold_value=Decimal(40000), warning_value=None
    )
    RiskLimitFactory(user=trader, symbol=None, limit_type="total_exposure", threshold_value=Decimal(20000))
    body = api_client_for(trader).get("/api/v1/dashboard/risk").json()
    (user,) = body["users"]
    assert user["user_id"] == str(trader.pk) and user["risk_level"] == "critical"
    by_type = {s["limit_type"]: s for s in user["statuses"] if s["source"] == "limit"}
    size = by_type["position_size"]
    assert size["limit_id"] == str(limit.pk) and size["utilization"] == pytest.approx(0.75)
    assert size["risk_level"] == "moderate" and size["warning_ratio"] is None
    assert by_type["total_exposure"]["risk_level"] == "critical"
    assert user["metrics"]["total_exposure"] == "30000.00"


def test_risk_view_shows_a_limits_ladder_steps_and_which_are_latched(trader, api_client_for):
    """Issue 15 item 4: 85 % of a total_exposure limit latches its 80 % step only."""
    from risk.services.evaluation import evaluation_run

    _book(trader, mark="34000")
    ladder = [{"at_pct": "80", "do": "alert"}, {"at_pct": "100", "do": "set_reducing"}]
    RiskLimitFactory(
        user=trader, symbol=None, limit_type="total_exposure", threshold_value=Decimal(40000), ladder=ladder
    )
    evaluation_run(user_id=trader.pk)
    (user,) = api_client_for(trader).get("/api/v1/dashboard/risk").json()["users"]
    (exposure,) = [s for s in user["statuses"] if s["limit_type"] == "total_exposure" and s["source"] == "limit"]
    steps = {step["at_pct"]: step for step in exposure["ladder"]}
    assert steps["80.00"]["latched"] and steps["80.00"]["do"] == "alert" and steps["80.00"]["level"] == "32000.00"
    assert steps["80.00"]["action_status"] == "dry_run" and steps["80.00"]["triggered_at"].endswith("Z")
    assert not steps["100.00"]["latched"] and steps["100.00"]["action_status"] is None


def test_risk_view_writes_nothing(trader, api_client_for):
    from risk.models import RiskAlert

    _book(trader)
    RiskLimitFactory(
        user=trader, symbol=None, limit_type="total_exposure", threshold_value=Decimal(1000), warning_value=None
    )
    assert api_client_for(trader).get("/api/v1/dashboard/risk").status_code == 200
    assert not RiskAlert.objects.exists()


def test_a_trader_sees_only_their_own_book_and_an_officer_the_desk(trader, make_user, officer, api_client_for):
    other = make_user("other-trader")
    _book(trader)
    _book(other)
    mine = api_client_for(trader).get("/api/v1/dashboard/risk").json()
    assert [u["user_id"] for u in mine["users"]] == [str(trader.pk)]
    assert api_client_for(trader).get(f"/api/v1/dashboard/risk?user_id={other.pk}").status_code == 404
    desk = api_client_for(officer).get("/api/v1/dashboard/risk").json()
    assert {u["user_id"] for u in desk["users"]} == {str(trader.pk), str(other.pk)}
    one = api_client_for(officer).get(f"/api/v1/dashboard/risk?user_id={other.pk}").json()
    assert [u["username"] for u in one["users"]] == ["other-trader"]


def test_breakers_view_shows_state_and_last_trip(trader, make_user, api_client_for, officer):
    other = make_user("other-trader")
    breaker = CircuitBreakerFactory(name="big-position", condition_type="max_position_size")
    CircuitBreakerFactory(name="off", enabled=False)
    BreakerTrip.objects.create(
        breaker=breaker,
        breaker_name=breaker.name,
        user=other,
        latch_key="k1",
        exchange="paper",
        symbol="BTCUSDT",
        condition_type=breaker.condition_type,
        threshold=breaker.threshold,
        action=breaker.action,
        dry_run=True,
        client_order_id="etrms-test-1",
        action_status="dry_run",
        action_result="Would close the position",
    )
    desk = api_client_for(officer).get("/api/v1/dashboard/breakers").json()
    states = {b["name"]: b for b in desk["breakers"]}
    assert states["big-position"]["state"] == "latched" and states["off"]["state"] == "disabled"
    trip = states["big-position"]["last_trip"]
    assert trip["dry_run"] is True and trip["action_result"] == "Would close the position"
    assert desk["dry_run"] is True
    own = api_client_for(trader).get("/api/v1/dashboard/breakers").json()
    assert {b["name"]: b["state"] for b in own["breakers"]}["big-position"] == "armed"
