"""Which endpoints an event goes to, and the deliveries that carry it there.

Risk announces each alert it raises or updates in place (`risk.publish.alert_announce`,
after the transaction commits). `alert_announced` picks the endpoints subscribed to it
and writes one delivery and one `notification_deliver` job each, published once that
commits: the risk action never waits on a webhook, and a failure here is logged by
the announcer, never raised into the risk action.

`alerts_escalate` (the `notification_escalate` job, run by beat) sends a critical alert
still unacknowledged after `escalate_after_seconds` (global config; 0: off) again to
every risk officer's endpoint subscribed to escalations, once per alert.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from etrms.formatting import iso_utc
from jobs.services.lifecycle import jobs_enqueue
from notifications.constants import ESCALATION, DeliveryEvent
from notifications.models import AlertEscalation, Delivery, NotificationEndpoint
from risk.constants import AlertSeverity, AlertStatus
from risk.models import RiskAlert
from risk.publish import alert_payload
from risk.services.alerts import SEVERITY_ORDER
from risk.services.config import global_config_get

logger = logging.getLogger(__name__)

DELIVER_JOB = "notification_deliver"
DELIVERY_TIMEOUT_SECONDS = 60
ESCALATION_BATCH = 200


def subscribed(endpoint: NotificationEndpoint, *, alert: dict) -> bool:
    """`alert` (ETRMS's alert format) is at or above the endpoint's minimum severity and
    of a type it subscribes to: its `alert_type`, or its ETRMS `type` (`risk_limit`)."""
    if SEVERITY_ORDER[alert["severity"]] < SEVERITY_ORDER[endpoint.min_severity]:
        return False
    types = endpoint.event_types
    return not types or alert["alert_type"] in types or alert["type"] in types


def deliveries_enqueue(*, endpoints, event: str, alert: dict | None, message: str = "") -> list[Delivery]:
    """One delivery and one `notification_deliver` job per endpoint, published after commit."""
    if not endpoints:
        return []
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        delivery = Delivery(
            user_id=endpoint.user_id,
            endpoint=endpoint,
            kind=endpoint.kind,
            target=endpoint.target,
            event=event,
            alert_id=alert["id"] if alert else None,
            severity=alert["severity"] if alert else AlertSeverity.LOW,
            max_attempts=settings.NOTIFICATION_MAX_RETRIES + 1,
        )
        delivery.payload = {"id": str(delivery.id), "event": event, "created_at": iso_utc(now), "alert": alert}
        if message:
            delivery.payload["message"] = message
        deliveries.append(delivery)
    requests = [
        {
            "name": DELIVER_JOB,
            "args": {"delivery_id": str(delivery.id)},
            "max_retries": settings.NOTIFICATION_MAX_RETRIES,
            "timeout": DELIVERY_TIMEOUT_SECONDS,
        }
        for delivery in deliveries
    ]
    with transaction.atomic():
        jobs = jobs_enqueue(user=None, requests=requests)
        for delivery, job in zip(deliveries, jobs, strict=True):
            delivery.job_id = job.id
        Delivery.objects.bulk_create(deliveries)
    return deliveries


def _of_active_officers() -> Q:
    """Endpoints whose owner is a risk officer now (a desk-wide endpoint of someone who
    is no longer one receives nothing but their own events)."""
    officer = Q(user__is_superuser=True) | Q(user__groups__name=settings.RISK_OFFICER_GROUP)
    return officer & Q(user__is_active=True)


def alert_announced(*, payload: dict, event: str) -> list[Delivery]:
    """Risk's listener (registered in `NotificationsConfig.ready`): `payload` is the
    alert as ETRMS's format shows it, `event` `raised` or `updated`."""
    candidates = (
        NotificationEndpoint.objects.filter(enabled=True)
        .filter(Q(user_id=payload["user_id"]) | (Q(desk_wide=True) & _of_active_officers()))
        .distinct()
        .order_by()
    )
    endpoints = [endpoint for endpoint in candidates if subscribed(endpoint, alert=payload)]
    return deliveries_enqueue(endpoints=endpoints, event=f"alert.{event}", alert=payload)


def _officer_endpoints() -> list[NotificationEndpoint]:
    endpoints = NotificationEndpoint.objects.filter(_of_active_officers(), enabled=True).distinct()
    return [endpoint for endpoint in endpoints if not endpoint.event_types or ESCALATION in endpoint.event_types]


def alerts_escalate(*, now=None) -> dict:
    """Escalate every critical alert unacknowledged (still `triggered`) for
    `escalate_after_seconds`, once each (the AlertEscalation row's unique key)."""
    delay = global_config_get().escalate_after_seconds
    if not delay:
        return {"escalated": 0, "deliveries": 0}
    now = now or timezone.now()
    due = RiskAlert.objects.filter(
        severity=AlertSeverity.CRITICAL,
        status=AlertStatus.TRIGGERED,
        triggered_at__lte=now - timedelta(seconds=delay),
        escalation__isnull=True,
    ).order_by("triggered_at")[:ESCALATION_BATCH]
    endpoints = _officer_endpoints()
    escalated = sent = 0
    for alert in due:
        try:
            with transaction.atomic():
                AlertEscalation.objects.create(alert=alert, escalated_at=now, deliveries=len(endpoints))
                sent += len(
                    deliveries_enqueue(endpoints=endpoints, event=DeliveryEvent.ESCALATED, alert=alert_payload(alert))
                )
        except IntegrityError:
            continue  # escalated meanwhile by another run
        escalated += 1
        logger.warning(
            "Critical alert %s unacknowledged for %ss: escalated to %d officer endpoint(s)",
            alert.id,
            delay,
            len(endpoints),
        )
    return {"escalated": escalated, "deliveries": sent}
