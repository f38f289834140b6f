"""Deliveries through the real job queue and worker process: a signed webhook retried
after the receiver answers 500 until it answers 200, dead-lettered after the last
attempt, an alert raised by a risk action reaching the endpoints subscribed to it, and
the escalation task sending an unacknowledged critical alert to the officers."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import wait_for
from jobs.models import Job, JobStatus
from jobs.scheduling import scheduled_task_run_now
from notifications.bootstrap import ESCALATE_TASK_NAME, bootstrap
from notifications.models import Delivery
from risk.constants import AlertSeverity
from risk.models import GlobalConfig
from risk.tests.factories import RiskAlertFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def settled(delivery_id, *statuses):
    return Delivery.objects.filter(pk=delivery_id, status__in=statuses).first()


def test_webhook_signed_and_retried_after_500_until_it_answers_200(
    celery_worker, trader_client, webhook_receiver, create_endpoint
):
    webhook_receiver.answers = [500, 500]
    hook = create_endpoint(trader_client, url=webhook_receiver.url)
    queued = trader_client.post(f"/api/v1/notifications/endpoints/{hook['id']}/test").json()

    delivery = wait_for(lambda: settled(queued["id"], "delivered"), message="the delivery to succeed")
    requests = webhook_receiver.received()
    assert [r["answered"] for r in requests] == [500, 500, 200]
    assert all(webhook_receiver.signature_valid(r, hook["secret"]) for r in requests)
    assert not webhook_receiver.signature_valid(requests[0], "another-secret")
    assert {r["headers"]["X-ETRMS-Delivery"] for r in requests} == {queued["id"]}
    assert all(r["path"] == "/hooks/etrms?desk=1" for r in requests)
    assert webhook_receiver.payload(requests[-1])["event"] == "test"
    assert delivery.attempts == 3 and delivery.last_status_code == 200 and delivery.delivered_at is not None
    job = Job.objects.get(pk=delivery.job_id)
    assert job.status == JobStatus.COMPLETED and job.retry_count == 2
    listed = trader_client.get("/api/v1/notifications/deliveries").json()["deliveries"][0]
    assert listed["status"] == "delivered" and listed["attempts"] == 3


def test_webhook_dead_lettered_after_the_last_attempt(
    celery_worker, settings, trader_client, webhook_receiver, create_endpoint
):
    settings.NOTIFICATION_MAX_RETRIES = 2
    webhook_receiver.answers = [500] * 10
    hook = create_endpoint(trader_client, url=webhook_receiver.url)
    queued = trader_client.post(f"/api/v1/notifications/endpoints/{hook['id']}/test").json()
    assert queued["max_attempts"] == 3

    delivery = wait_for(lambda: settled(queued["id"], "dead_lettered"), message="the delivery to be dead-lettered")
    assert len(webhook_receiver.received()) == 3
    assert delivery.attempts == 3 and delivery.last_status_code == 500
    assert delivery.last_error == "The webhook answered HTTP 500."
    job = wait_for(lambda: Job.objects.filter(pk=delivery.job_id, dead_lettered=True).first(), message="the DLQ")
    assert job.status == JobStatus.FAILED
    shown = trader_client.get("/api/v1/notifications/deliveries", {"status": "dead_lettered"}).json()
    assert [d["id"] for d in shown["deliveries"]] == [queued["id"]]


def test_trading_state_change_reaches_the_endpoints_subscribed_to_it(
    celery_worker, officer_client, trader_client, trader, webhook_receiver, create_endpoint
):
    hook = create_endpoint(trader_client, url=webhook_receiver.url, event_types=["trading_state"])
    create_endpoint(trader_client, name="breakers-only", url=webhook_receiver.url, event_types=["circuit_breaker"])
    create_endpoint(trader_client, name="critical-only", url=webhook_receiver.url, min_severity="critical")

    body = {"level": "user", "user_id": str(trader.pk), "state": "halted", "reason": "desk review"}
    assert officer_client.put("/api/v1/risk/trading-state", body, format="json").status_code == 200

    deliveries = list(Delivery.objects.filter(user=trader))
    assert {str(d.endpoint_id) for d in deliveries} == {hook["id"]}
    wait_for(lambda: settled(deliveries[0].id, "delivered"), message="the trading-state webhook")
    (request,) = webhook_receiver.received()
    assert webhook_receiver.signature_valid(request, hook["secret"])
    payload = webhook_receiver.payload(request)
    assert payload["event"] == "alert.raised"
    alert = payload["alert"]
    assert alert["type"] == alert["condition_name"] == "trading_state"
    assert alert["severity"] == "high" and alert["user_id"] == str(trader.pk)
    assert alert["context"]["state"] == "halted" and isinstance(alert["triggered_at"], int)


def test_unacknowledged_critical_alert_escalated_once_to_the_officers_by_the_periodic_task(
    celery_worker, officer_client, trader_client, trader, webhook_receiver, create_endpoint
):
    GlobalConfig.objects.update_or_create(pk=GlobalConfig.SINGLETON_PK, defaults={"escalate_after_seconds": 60})
    officer_hook = create_endpoint(officer_client, name="desk", url=webhook_receiver.url, event_types=["escalation"])
    create_endpoint(trader_client, name="mine", url=webhook_receiver.url, event_types=["escalation"])
    alert = RiskAlertFactory(
        user=trader,
        alert_type="circuit_breaker",
        severity=AlertSeverity.CRITICAL,
        triggered_at=timezone.now() - timedelta(seconds=120),
    )
    bootstrap(stdout=io.StringIO())

    first = scheduled_task_run_now(name=ESCALATE_TASK_NAME)
    wait_for(lambda: Job.objects.filter(pk=first.pk, status=JobStatus.COMPLETED).first(), message="the escalation")
    escalated = wait_for(lambda: settled(Delivery.objects.get(alert_id=alert.id).id, "delivered"), message="delivery")
    assert str(escalated.endpoint_id) == officer_hook["id"] and escalated.event == "alert.escalated"
    (request,) = webhook_receiver.received()
    assert webhook_receiver.signature_valid(request, officer_hook["secret"])
    assert webhook_receiver.payload(request)["alert"]["id"] == str(alert.id)

    again = scheduled_task_run_now(name=ESCALATE_TASK_NAME)
    done = wait_for(lambda: Job.objects.filter(pk=again.pk, status=JobStatus.COMPLETED).first(), message="2nd run")
    assert done.result == {"escalated": 0, "deliveries": 0}
    assert Delivery.objects.filter(alert_id=alert.id).count() == 1
