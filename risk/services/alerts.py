"""Writes on risk alerts (SPEC §4): raise, de-duplicate, resolve, acknowledge.

An alert names its condition with `dedup_key`; at most one alert per (user, key) is
open (a partial unique index backs this against concurrent evaluators). Evaluation
hands `alerts_sync` the alerts its conditions want open; open alerts of the kinds it
manages whose condition is gone resolve themselves. After a self-resolution the same
alert is not raised again for `alert_cooldown_seconds`.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from etrms.errors import Conflict, PermissionDenied
from etrms.metrics import ALERTS_RAISED
from risk.constants import AlertSeverity, AlertStatus
from risk.models import RiskAlert
from risk.publish import alert_announce, alert_publish
from risk.services.common import actor_id

SEVERITY_ORDER = {AlertSeverity.LOW: 0, AlertSeverity.MEDIUM: 1, AlertSeverity.HIGH: 2, AlertSeverity.CRITICAL: 3}


@dataclass(frozen=True)
class AlertSpec:
    """An alert a condition wants open."""

    key: str
    alert_type: str
    severity: str
    message: str
    metadata: dict = field(default_factory=dict, compare=False)
    limit_id: object = None


@dataclass
class AlertChanges:
    raised: list = field(default_factory=list)
    resolved: list = field(default_factory=list)


def alert_raise(*, user_id, spec: AlertSpec, now=None) -> RiskAlert | None:
    """Insert the alert unless one is already open for (user, spec.key). Returns the
    new alert, or None when it was already open (a concurrent evaluator raised it)."""
    alert = RiskAlert(
        user_id=user_id,
        alert_type=spec.alert_type,
        severity=spec.severity,
        message=spec.message,
        metadata=spec.metadata,
        limit_id=spec.limit_id,
        dedup_key=spec.key,
        triggered_at=now or timezone.now(),
    )
    try:
        with transaction.atomic():
            alert.save(force_insert=True)
    except IntegrityError:
        if (
            spec.key
            and RiskAlert.objects.filter(user_id=user_id, dedup_key=spec.key)
            .exclude(status=AlertStatus.RESOLVED)
            .exists()
        ):
            return None
        raise
    ALERTS_RAISED.labels(alert.alert_type).inc()
    alert_publish(alert)
    alert_announce(alert, event="raised")
    return alert


def _resolve(alerts, *, now, reason: str, resolved_by_id=None) -> list[RiskAlert]:
    """Resolve open `alerts` (one UPDATE), publish each. Skips ones resolved meanwhile."""
    alerts = [alert for alert in alerts if alert.status != AlertStatus.RESOLVED]
    if not alerts:
        return []
    ids = [alert.pk for alert in alerts]
    updated_ids = set(
        RiskAlert.objects.filter(pk__in=ids).exclude(status=AlertStatus.RESOLVED).values_list("pk", flat=True)
    )
    RiskAlert.objects.filter(pk__in=updated_ids).update(
        status=AlertStatus.RESOLVED, resolved_at=now, resolved_by_id=resolved_by_id, updated_at=now
    )
    resolved = []
    for alert in alerts:
        if alert.pk in updated_ids:
            alert.status, alert.resolved_at, alert.resolved_by_id = AlertStatus.RESOLVED, now, resolved_by_id
            alert.metadata = {**alert.metadata, "resolution": reason}
            alert_publish(alert)
            resolved.append(alert)
    for alert in resolved:  # keep why in the row (rare path: one small UPDATE each)
        RiskAlert.objects.filter(pk=alert.pk).update(metadata=alert.metadata)
    return resolved


def alerts_apply(*, user_id, raise_specs: dict[str, AlertSpec], resolve_keys: list[str], now) -> AlertChanges:
    """Write what `outcome_decide` decided for the user's alerts: resolve the open ones
    under `resolve_keys` (one query and one UPDATE), raise `raise_specs` (the cooldown
    was decided already)."""
    changes = AlertChanges()
    if resolve_keys:
        stale = list(
            RiskAlert.objects.filter(user_id=user_id, dedup_key__in=resolve_keys).exclude(status=AlertStatus.RESOLVED)
        )
        changes.resolved = _resolve(stale, now=now, reason="condition cleared")
    for spec in raise_specs.values():
        alert = alert_raise(user_id=user_id, spec=spec, now=now)
        if alert is not None:
            changes.raised.append(alert)
    return changes


@transaction.atomic
def alerts_resolve_for_limit(*, limit_id, reason: str) -> list[RiskAlert]:
    now = timezone.now()
    open_alerts = list(RiskAlert.objects.filter(limit_id=limit_id).exclude(status=AlertStatus.RESOLVED))
    return _resolve(open_alerts, now=now, reason=reason)


@transaction.atomic
def alert_acknowledge(*, actor, alert: RiskAlert) -> RiskAlert:
    """triggered -> acknowledged. Acknowledging an acknowledged alert changes nothing;
    a resolved one is a 409."""
    locked = RiskAlert.objects.select_for_update().get(pk=alert.pk)
    if locked.status == AlertStatus.RESOLVED:
        raise Conflict("This alert is resolved; it can no longer be acknowledged.")
    if locked.status == AlertStatus.ACKNOWLEDGED:
        return locked
    now = timezone.now()
    locked.status, locked.acknowledged_at, locked.acknowledged_by_id = AlertStatus.ACKNOWLEDGED, now, actor_id(actor)
    locked.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
    alert_publish(locked)
    return locked


@transaction.atomic
def alert_resolve(*, actor, alert: RiskAlert) -> RiskAlert:
    """triggered or acknowledged -> resolved (by a person). Resolving a resolved alert
    changes nothing. A breaker trip's alert whose action has not succeeded (pending,
    failed, partial, or a dry run that sent nothing) is a risk officer's to resolve: the
    position is still exposed. Resolving it never changes the latch or the risk level,
    which follow the trip (SPEC §4)."""
    from etrms.roles import is_risk_officer
    from risk.constants import ActionStatus, AlertType
    from risk.models import BreakerTrip

    locked = RiskAlert.objects.select_for_update().get(pk=alert.pk)
    if locked.status == AlertStatus.RESOLVED:
        return locked
    if locked.alert_type == AlertType.CIRCUIT_BREAKER and not is_risk_officer(actor):
        trip = BreakerTrip.objects.filter(alert=locked).only("action_status", "dry_run").first()
        if trip is not None and (trip.dry_run or trip.action_status != ActionStatus.SUCCEEDED):
            raise PermissionDenied(
                f"The circuit breaker's action has not succeeded ({trip.action_status}): the position is still "
                "exposed, so only a risk officer can resolve this alert."
            )
    return _resolve([locked], now=timezone.now(), reason="resolved by user", resolved_by_id=actor_id(actor))[0]


def alert_escalate(*, alert: RiskAlert, message: str, metadata: dict) -> RiskAlert:
    """Update an open alert in place (a breaker action that failed, then its retries)."""
    alert.message, alert.metadata = message, metadata
    alert.save(update_fields=["message", "metadata", "updated_at"])
    alert_publish(alert)
    alert_announce(alert, event="updated")
    return alert


def alerts_delete_resolved(*, older_than) -> int:
    """Housekeeping: resolved alerts resolved before `older_than` (a step of the `cleanup` job)."""
    deleted, _ = RiskAlert.objects.filter(status=AlertStatus.RESOLVED, resolved_at__lt=older_than).delete()
    return deleted
