"""Who receives what, run in this process: e-mail through Django's mail backend (locmem
in tests), subscriptions by event type and severity, desk-wide officer endpoints, the
escalation of unacknowledged critical alerts (and none once acknowledged), and a
notification failure that never fails the risk action."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from jobs.models import Job
from jobs.registry import handler_get
from notifications.models import AlertEscalation, Delivery
from risk.constants import AlertSeverity
from risk.models import GlobalConfig, RiskAlert
from risk.services.alerts import AlertSpec, alert_acknowledge, alert_raise

pytestmark = pytest.mark.django_db
BASE = "/api/v1/notifications/endpoints"


def run_job(job):
    """The job's handler, here, as the worker runs it."""
    return handler_get(job.name).func(job, **job.args)


def raise_alert(user, *, captured, severity=AlertSeverity.HIGH, alert_type="daily_loss_exceeded") -> RiskAlert:
    with captured(execute=True):
        alert = alert_raise(
            user_id=user.pk,
            spec=AlertSpec(
                key=f"test:{alert_type}", alert_type=alert_type, severity=severity, message="Daily loss 6,000"
            ),
        )
    return alert


def test_email_delivered_through_the_mail_backend(
    trader_client, create_endpoint, trader, django_capture_on_commit_callbacks
):
    create_endpoint(trader_client, kind="email", email="desk@example.com", event_types=["risk_limit"])
    alert = raise_alert(trader, captured=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(alert_id=alert.id)
    result = run_job(Job.objects.get(pk=delivery.job_id))

    assert result["status"] == "delivered"
    (message,) = mail.outbox
    assert message.to == ["desk@example.com"]
    assert message.subject == "[ETRMS] HIGH daily_loss_exceeded"
    assert "Daily loss 6,000" in message.body and str(alert.id) in message.body
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1


def test_subscriptions_by_event_type_and_minimum_severity(
    trader_client, trader, officer_client, create_endpoint, django_capture_on_commit_callbacks
):
    every = create_endpoint(trader_client, name="every", kind="email", email="a@example.com", min_severity="low")
    limits = create_endpoint(
        trader_client, name="limits", kind="email", email="b@example.com", event_types=["risk_limit"]
    )
    create_endpoint(
        trader_client, name="breakers", kind="email", email="c@example.com", event_types=["circuit_breaker"]
    )
    create_endpoint(trader_client, name="critical", kind="email", email="d@example.com", min_severity="critical")
    desk = create_endpoint(officer_client, name="desk", kind="email", email="r@example.com", desk_wide=True)
    create_endpoint(officer_client, name="officer-own", kind="email", email="o@example.com")
    off = create_endpoint(trader_client, name="off", kind="email", email="e@example.com", enabled=False)

    alert = raise_alert(trader, captured=django_capture_on_commit_callbacks)
    reached = {str(d.endpoint_id) for d in Delivery.objects.filter(alert_id=alert.id)}
    assert reached == {every["id"], limits["id"], desk["id"]}
    assert off["id"] not in reached
    assert Delivery.objects.get(alert_id=alert.id, endpoint_id=desk["id"]).user_id != trader.pk


def test_a_desk_wide_endpoint_stops_when_its_owner_is_no_longer_an_officer(
    trader, officer, officer_client, create_endpoint, django_capture_on_commit_callbacks
):
    create_endpoint(officer_client, name="desk", kind="email", email="r@example.com", desk_wide=True)
    officer.groups.clear()
    alert = raise_alert(trader, captured=django_capture_on_commit_callbacks)
    assert not Delivery.objects.filter(alert_id=alert.id).exists()


def test_a_notification_failure_never_fails_the_risk_action(
    trader_client, trader, create_endpoint, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    create_endpoint(trader_client, kind="email", email="a@example.com")

    def broken(**kwargs):
        raise RuntimeError("queue is down")

    monkeypatch.setattr("notifications.services.dispatch.jobs_enqueue", broken)
    alert = raise_alert(trader, captured=django_capture_on_commit_callbacks)
    assert RiskAlert.objects.filter(pk=alert.id).exists()
    assert not Delivery.objects.exists()
    assert "a listener failed on raised" in caplog.text


def _critical(user, *, age_seconds: int) -> RiskAlert:
    return RiskAlert.objects.create(
        user=user,
        alert_type="circuit_breaker",
        severity=AlertSeverity.CRITICAL,
        message="Circuit breaker stop-loss tripped",
        triggered_at=timezone.now() - timedelta(seconds=age_seconds),
    )


def escalate():
    return handler_get("notification_escalate").func(None)


@pytest.fixture
def escalation_after_60s():
    GlobalConfig.objects.update_or_create(pk=GlobalConfig.SINGLETON_PK, defaults={"escalate_after_seconds": 60})


def test_unacknowledged_critical_alert_escalated_to_officers_once(
    escalation_after_60s, officer_client, trader_client, trader, create_endpoint
):
    desk = create_endpoint(officer_client, name="desk", kind="email", email="risk@example.com")
    create_endpoint(
        officer_client, name="breakers", kind="email", email="b@example.com", event_types=["circuit_breaker"]
    )
    create_endpoint(trader_client, name="mine", kind="email", email="t@example.com")
    due, young = _critical(trader, age_seconds=61), _critical(trader, age_seconds=30)
    high = RiskAlert.objects.create(
        user=trader,
        alert_type="daily_loss_exceeded",
        severity=AlertSeverity.HIGH,
        message="x",
        triggered_at=timezone.now() - timedelta(hours=1),
    )

    assert escalate() == {"escalated": 1, "deliveries": 1}
    (delivery,) = Delivery.objects.all()
    assert str(delivery.endpoint_id) == desk["id"] and delivery.alert_id == due.id
    assert delivery.event == "alert.escalated" and delivery.payload["alert"]["severity"] == "critical"
    assert AlertEscalation.objects.get(alert=due).deliveries == 1
    assert escalate() == {"escalated": 0, "deliveries": 0}
    assert not Delivery.objects.filter(alert_id__in=[young.id, high.id]).exists()

    run_job(Job.objects.get(pk=delivery.job_id))
    assert mail.outbox[0].subject == "[ETRMS] ESCALATED CRITICAL circuit_breaker"


def test_no_escalation_once_acknowledged(escalation_after_60s, officer_client, officer, trader, create_endpoint):
    create_endpoint(officer_client, name="desk", kind="email", email="risk@example.com")
    alert = _critical(trader, age_seconds=120)
    alert_acknowledge(actor=officer, alert=alert)
    assert escalate() == {"escalated": 0, "deliveries": 0}
    assert not Delivery.objects.exists() and not AlertEscalation.objects.exists()


def test_escalation_off_when_escalate_after_seconds_is_zero(officer_client, trader, create_endpoint):
    GlobalConfig.objects.update_or_create(pk=GlobalConfig.SINGLETON_PK, defaults={"escalate_after_seconds": 0})
    create_endpoint(officer_client, name="desk", kind="email", email="risk@example.com")
    _critical(trader, age_seconds=86400)
    assert escalate() == {"escalated": 0, "deliveries": 0}


def test_escalate_after_seconds_is_a_global_config_key(officer_client, trader_client):
    assert officer_client.get("/api/v1/config/global").json()["data"]["escalate_after_seconds"] == 300
    changed = officer_client.put("/api/v1/config/global", {"settings": {"escalate_after_seconds": 120}}, format="json")
    assert changed.status_code == 200, changed.json()
    assert GlobalConfig.objects.get().escalate_after_seconds == 120
    bad = officer_client.put("/api/v1/config/global", {"settings": {"escalate_after_seconds": -1}}, format="json")
    assert bad.status_code == 400


def test_kill_switch_reaches_the_endpoints_subscribed_to_it(
    officer_client, trader_client, trader, make_exchange_account, create_endpoint, django_capture_on_commit_callbacks
):
    make_exchange_account(trader, "paper")
    kills = create_endpoint(trader_client, name="kills", url="https://hooks.example.com/k", event_types=["kill_switch"])
    states = create_endpoint(
        trader_client, name="states", kind="email", email="s@example.com", event_types=["trading_state"]
    )
    body = {"scope": "user", "user_id": str(trader.pk), "confirm": True, "reason": "runaway bot"}
    with django_capture_on_commit_callbacks(execute=True):
        assert officer_client.post("/api/v1/risk/kill-switch", body, format="json").status_code == 200

    by_endpoint = {}
    for delivery in Delivery.objects.filter(user=trader).order_by("created_at"):
        by_endpoint.setdefault(str(delivery.endpoint_id), []).append(delivery)
    assert {d.payload["alert"]["alert_type"] for d in by_endpoint[kills["id"]]} == {"kill_switch"}
    assert by_endpoint[kills["id"]][0].event == "alert.raised" and by_endpoint[kills["id"]][0].severity == "critical"
    assert [d.payload["alert"]["context"]["state"] for d in by_endpoint[states["id"]]] == ["halted"]


def test_admin_shows_the_delivery_log_read_only(client, make_user, trader_client, create_endpoint):
    hook = create_endpoint(trader_client, kind="email", email="me@example.com")
    trader_client.post(f"{BASE}/{hook['id']}/test")
    client.force_login(make_user(is_superuser=True, is_staff=True))
    page = client.get("/admin/notifications/delivery/")
    assert page.status_code == 200 and "me@example.com" in page.content.decode()
    delivery = Delivery.objects.get()
    detail = client.get(f"/admin/notifications/delivery/{delivery.pk}/change/")
    assert detail.status_code == 200 and 'name="status"' not in detail.content.decode()
    assert client.get("/admin/notifications/delivery/add/").status_code == 403
    assert client.post(f"/admin/notifications/delivery/{delivery.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (
        "secret" not in client.get(f"/admin/notifications/notificationendpoint/{hook['id']}/change/").content.decode()
    )


def test_a_ladder_step_reaches_the_endpoints_subscribed_to_ladder_steps(
    trader_client, trader, create_endpoint, django_capture_on_commit_callbacks
):
    """Issue 15 item 4: a limit's ladder step raises a `ladder_step` alert (ETRMS type
    `risk_limit`), which an endpoint can subscribe to on its own."""
    from decimal import Decimal

    from risk.services.evaluation import evaluation_run
    from risk.services.limits import limit_create
    from risk.tests import books

    books.position(books.account(trader), "BTCUSDT", size="1", entry="8500")
    steps = create_endpoint(
        trader_client, name="steps", kind="email", email="l@example.com", event_types=["ladder_step"]
    )
    create_endpoint(trader_client, name="states", kind="email", email="s@example.com", event_types=["trading_state"])
    ladder = [{"at_pct": "80", "do": "alert"}, {"at_pct": "120", "do": "flatten"}]
    limit_create(actor=trader, limit_type="total_exposure", threshold_value=Decimal(10000), ladder=ladder)
    with django_capture_on_commit_callbacks(execute=True):
        evaluation_run(user_id=trader.pk)

    deliveries = list(Delivery.objects.filter(user=trader).order_by("created_at"))
    assert {str(d.endpoint_id) for d in deliveries} == {steps["id"]}
    # raised, then updated in place with the step's (dry-run) action result
    assert [d.event for d in deliveries] == ["alert.raised", "alert.updated"]
    alert = deliveries[0].payload["alert"]
    assert alert["alert_type"] == "ladder_step" and alert["type"] == "risk_limit"
    assert alert["context"]["at_pct"] == 80 and alert["context"]["action"] == "alert"
