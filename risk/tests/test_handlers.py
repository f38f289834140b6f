"""The risk job handlers through the jobs registry: `evaluate_risk` (one user, or the
sweep of every user) and `breaker_action_retry` (officer-only, critical)."""

from decimal import Decimal

import pytest

from jobs.registry import handler_get
from risk.models import RiskAlert
from risk.tests import books
from risk.tests.factories import RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_breakers", "no_caps")]


def test_evaluate_risk_is_registered_with_its_schema():
    handler = handler_get("evaluate_risk")
    assert handler.default_priority == "high" and not handler.officer_only
    assert set(handler.args_schema()) == {"user_id", "symbol"}
    retry = handler_get("breaker_action_retry")
    assert retry.officer_only and retry.default_priority == "critical"
    assert retry.args_schema()["trip_id"]["required"] is True


def test_sweep_evaluates_every_user_with_an_account(make_user):
    users = [make_user() for _ in range(3)]
    for user in users[:2]:
        books.position(books.account(user), "BTCUSDT", size="3", entry="100")
        RiskLimitFactory(user=user, threshold_value=Decimal(100), warning_value=None)
    result = handler_get("evaluate_risk").func(None)
    assert result["users"] == 2 and result["risk_levels"] == {"critical": 2} and result["alerts_raised"] == 2
    assert RiskAlert.objects.count() == 2
    again = handler_get("evaluate_risk").func(None)
    assert again["alerts_raised"] == 0 and RiskAlert.objects.count() == 2


def test_one_user(trader, make_user):
    other = make_user()
    for user in (trader, other):
        books.position(books.account(user), "BTCUSDT", size="3", entry="100")
        RiskLimitFactory(user=user, threshold_value=Decimal(100), warning_value=None)
    result = handler_get("evaluate_risk").func(None, user_id=trader.pk)
    assert result["users"] == 1
    assert list(RiskAlert.objects.values_list("user_id", flat=True)) == [trader.pk]


def test_trader_enqueues_evaluate_risk_for_themselves_only(trader_client, trader, make_user):
    other = make_user()
    mine = trader_client.post("/api/v1/jobs/enqueue", {"name": "evaluate_risk", "args": {}}, format="json")
    assert mine.status_code in (200, 201), mine.content
    theirs = trader_client.post(
        "/api/v1/jobs/enqueue", {"name": "evaluate_risk", "args": {"user_id": str(other.pk)}}, format="json"
    )
    assert theirs.status_code == 404
    retry = trader_client.post(
        "/api/v1/jobs/enqueue",
        {"name": "breaker_action_retry", "args": {"trip_id": "00000000-0000-0000-0000-000000000000"}},
        format="json",
    )
    assert retry.status_code == 403
