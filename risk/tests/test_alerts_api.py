"""Phase 4 risk alerts: list (filters, default page of 50, cap), acknowledge, resolve,
ownership, and the publish of every change."""

from datetime import timedelta

import pytest
from django.utils import timezone

from risk.constants import AlertStatus
from risk.models import RiskAlert
from risk.tests.factories import RiskAlertFactory
from risk.tests.test_limits_api import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/risk/alerts"


def test_list_seed_shape(trader_client, trader, django_assert_max_num_queries):
    alert = RiskAlertFactory(user=trader)
    with django_assert_max_num_queries(2):
        response = trader_client.get(URL)
    assert response.status_code == 200
    (item,) = response.json()["alerts"]
    assert item == {
        "id": str(alert.pk),
        "user_id": str(trader.pk),
        "alert_type": "position_size_exceeded",
        "severity": "high",
        "message": "Position size exceeded threshold",
        "triggered_at": item["triggered_at"],
        "status": "triggered",
        "metadata": {"symbol": "BTCUSDT", "current_value": "11000.00", "threshold": "10000.00"},
        "acknowledged_at": None,
        "resolved_at": None,
    }
    assert item["triggered_at"].endswith("Z")


def test_default_page_is_50_newest_first(trader_client, trader, django_assert_max_num_queries):
    now = timezone.now()
    for index in range(60):
        RiskAlertFactory(user=trader, triggered_at=now - timedelta(minutes=index), message=f"m{index}")
    with django_assert_max_num_queries(2):
        body = trader_client.get(URL).json()
    assert body["count"] == 60
    assert len(body["alerts"]) == 50
    assert [item["message"] for item in body["alerts"][:3]] == ["m0", "m1", "m2"]
    assert [item["message"] for item in trader_client.get(f"{URL}?limit=5&offset=58").json()["alerts"]] == [
        "m58",
        "m59",
    ]
    assert len(trader_client.get(f"{URL}?limit=5000").json()["alerts"]) == 60


@pytest.mark.parametrize(
    ("query", "expected"),
    [("status=triggered", 2), ("status=resolved", 1), ("severity=critical", 1), ("severity=high", 2)],
)
def test_filters(trader_client, trader, query, expected):
    RiskAlertFactory(user=trader)
    RiskAlertFactory(user=trader, severity="critical", alert_type="circuit_breaker")
    RiskAlertFactory(user=trader, status=AlertStatus.RESOLVED)
    assert len(trader_client.get(f"{URL}?{query}").json()["alerts"]) == expected


@pytest.mark.parametrize(
    "query",
    [
        "status=open",
        "severity=urgent",
        "alert_type=Not-A-Type",
        "status=triggered&status=resolved",
        "limit=0",
        "limit=-3",
        "limit=ten",
    ],
)
def test_bad_filters_are_400s(trader_client, query):
    assert_error(trader_client.get(f"{URL}?{query}"), 400)


def test_trader_sees_own_officer_sees_all(trader_client, officer_client, trader, make_user):
    other = make_user()
    RiskAlertFactory(user=trader)
    RiskAlertFactory(user=other)
    assert trader_client.get(URL).json()["count"] == 1
    assert officer_client.get(URL).json()["count"] == 2
    assert officer_client.get(f"{URL}?user_id={other.pk}").json()["count"] == 1
    assert_error(trader_client.get(f"{URL}?user_id={other.pk}"), 404)


def test_acknowledge_then_resolve(trader_client, trader, published_alerts):
    alert = RiskAlertFactory(user=trader)
    response = trader_client.post(f"{URL}/{alert.pk}/acknowledge")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged" and body["acknowledged_at"].endswith("Z") and body["id"] == str(alert.pk)
    alert.refresh_from_db()
    assert alert.acknowledged_by_id == trader.pk

    # idempotent
    assert trader_client.post(f"{URL}/{alert.pk}/acknowledge").json()["status"] == "acknowledged"

    resolved = trader_client.post(f"{URL}/{alert.pk}/resolve")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert_error(trader_client.post(f"{URL}/{alert.pk}/acknowledge"), 409)
    assert trader_client.post(f"{URL}/{alert.pk}/resolve").json()["status"] == "resolved"

    statuses = [message["alert"]["status"] for message in published_alerts(trader)]
    assert statuses == ["acknowledged", "resolved"]


def test_another_users_alert_is_a_404(trader_client, officer_client, make_user):
    alert = RiskAlertFactory(user=make_user())
    assert_error(trader_client.post(f"{URL}/{alert.pk}/acknowledge"), 404)
    assert_error(trader_client.post(f"{URL}/{alert.pk}/resolve"), 404)
    assert RiskAlert.objects.get(pk=alert.pk).status == "triggered"
    assert officer_client.post(f"{URL}/{alert.pk}/acknowledge").status_code == 200


def test_unknown_alert_is_a_404(trader_client):
    assert_error(trader_client.post(f"{URL}/00000000-0000-0000-0000-000000000000/acknowledge"), 404)
