"""Alert publishing: ETRMS's alert format (plus id, severity, alert_type), after commit,
on the Redis fan-out channel (the WebSocket hub delivers it to the owner's sockets)."""

from datetime import UTC, datetime

import pytest

from risk.models import RiskAlert
from risk.publish import alert_payload, alert_publish
from risk.tests.conftest import run_on_commit_callbacks

pytestmark = pytest.mark.django_db


def _breaker_alert(user) -> RiskAlert:
    return RiskAlert.objects.create(
        user=user,
        alert_type="circuit_breaker",
        severity="critical",
        message="Position has exceeded maximum allowed drawdown",
        triggered_at=datetime(2021, 4, 13, 20, 40, tzinfo=UTC),
        metadata={
            "breaker": "max_drawdown_exceeded",
            "exchange": "binance",
            "symbol": "BTCUSDT",
            "context": {"current_drawdown": 15.5, "threshold": 10.0},
            "action_result": "Position closed successfully",
        },
    )


def test_breaker_alert_payload_is_etrms_format(trader):
    alert = _breaker_alert(trader)
    payload = alert_payload(alert)
    seed = {
        "type": "circuit_breaker",
        "condition_name": "max_drawdown_exceeded",
        "description": "Position has exceeded maximum allowed drawdown",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "triggered_at": 1618346400,
        "context": {"current_drawdown": 15.5, "threshold": 10.0},
        "action_result": "Position closed successfully",
    }
    assert {key: payload[key] for key in seed} == seed
    assert payload["id"] == str(alert.pk)
    assert payload["severity"] == "critical" and payload["alert_type"] == "circuit_breaker"
    assert payload["status"] == "triggered"


def test_limit_alert_payload_carries_numbers(trader):
    alert = RiskAlert.objects.create(
        user=trader,
        alert_type="position_size_exceeded",
        severity="high",
        message="m",
        metadata={"symbol": "BTCUSDT", "current_value": "11000.50", "threshold": "10000.00", "limit_id": "x"},
    )
    payload = alert_payload(alert)
    assert payload["type"] == "risk_limit" and payload["condition_name"] == "position_size_exceeded"
    assert payload["context"] == {"current_value": 11000.5, "threshold": 10000.0, "limit_id": "x"}
    assert payload["action_result"] is None


def test_published_after_commit_on_redis(trader, published_alerts):
    alert = _breaker_alert(trader)
    alert_publish(alert)
    run_on_commit_callbacks()

    messages = published_alerts(trader)
    assert len(messages) == 1 and messages[0]["alert"]["id"] == str(alert.pk)
    assert messages[0]["user_id"] == str(trader.pk) and messages[0]["alert"]["type"] == "circuit_breaker"


def test_nothing_is_published_when_the_transaction_rolls_back(trader, published_alerts):
    from django.db import transaction

    def publish_then_fail():
        with transaction.atomic():
            alert_publish(_breaker_alert(trader))
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert published_alerts(trader) == []


def test_listeners_hear_of_alerts_written_inside_announcements_deferred_when_the_block_ends(
    trader, published_alerts, monkeypatch
):
    """The feed's index writes every user's alerts of a tick inside the block: all of
    them are published at their commits, and the listeners (notifications: a query,
    perhaps deliveries) hear of them after, so no alert waits for another's listeners."""
    from risk import publish

    heard = []
    monkeypatch.setattr(publish, "_alert_listeners", [lambda *, payload, event: heard.append((payload["id"], event))])
    with publish.announcements_deferred():
        first, second = _breaker_alert(trader), _breaker_alert(trader)
        for alert in (first, second):
            alert_publish(alert)
            publish.alert_announce(alert, event="raised")
        with publish.announcements_deferred():  # nested: the outer block runs them
            publish.alert_announce(second, event="updated")
        run_on_commit_callbacks()
        assert len(published_alerts(trader)) == 2 and heard == []
    assert heard == [(str(first.pk), "raised"), (str(second.pk), "raised"), (str(second.pk), "updated")]

    publish.alert_announce(first, event="updated")  # outside a block: at the commit
    run_on_commit_callbacks()
    assert heard[-1] == (str(first.pk), "updated")
