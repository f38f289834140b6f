"""Graded ladders of risk limits (issue 15, SPEC §12): write what `outcome_decide`
decided for a user's ladder steps, as `trips_sync` does for breakers.

A step crossing is latched as one `LadderTrip` per (limit, symbol, step): under a lock
on the limit's row, kept single by a partial unique index whatever the path and however
many processes race. It raises the step's alert, then its action runs after the latch
committed, through the trip action machinery (risk.services.trip_actions: lease, client
order ids, partial fills, retries on the critical queue), honouring dry run. A release
resolves the step's alert unless its action failed (an escalated alert stays for a
person to resolve).
"""

from django.db import IntegrityError, transaction

from etrms.formatting import decimal_str
from risk.constants import ActionStatus, AlertSeverity, AlertType, LadderAction
from risk.models import LadderTrip, RiskAlert, RiskLimit
from risk.services.alerts import AlertSpec, _resolve, alert_raise
from risk.services.common import actor_id
from risk.services.outcome import STEP_CLEARED
from risk.services.trip_actions import trip_action_run

SEVERITY = {
    LadderAction.ALERT: AlertSeverity.HIGH,
    LadderAction.SET_REDUCING: AlertSeverity.HIGH,
    LadderAction.CANCEL_ORDERS: AlertSeverity.HIGH,
    LadderAction.HALT_TRADING: AlertSeverity.CRITICAL,
    LadderAction.FLATTEN: AlertSeverity.CRITICAL,
}


def _words(step) -> tuple[str, dict]:
    """The step alert's message and metadata."""
    status = step.status
    scope = f" on {status.symbol}" if status.symbol else ""
    value = "undefined (equity <= 0)" if status.value is None else decimal_str(status.value)
    message = (
        f"{status.limit_type.replace('_', ' ').capitalize()} limit{scope} reached {step.at_pct:f}% of its "
        f"threshold: {value} >= {decimal_str(step.level)} (threshold {decimal_str(status.threshold)}); "
        f"ladder step: {LadderAction(step.action).label.lower()}."
    )
    context = {
        "limit_id": str(status.limit_id),
        "limit_type": status.limit_type,
        "at_pct": float(step.at_pct),
        "step_value": float(step.level),
        "current_value": None if status.value is None else float(status.value),
        "threshold": float(status.threshold),
        "action": step.action,
    }
    return message, {"symbol": status.symbol, "exchange": None, "context": context, **context}


def step_latch(*, step, user_id, dry_run: bool, now) -> LadderTrip | None:
    """Latch `step` (an `outcome.StepHit`) and raise its alert, in one transaction under
    the limit's row lock. None when it is already latched, or the limit is gone or
    disabled meanwhile."""
    status = step.status
    with transaction.atomic():
        limit = RiskLimit.objects.select_for_update().filter(pk=status.limit_id, enabled=True).first()
        if limit is None or LadderTrip.objects.filter(latch_key=step.key, released_at__isnull=True).exists():
            return None
        trip = LadderTrip(
            limit=limit,
            user_id=user_id,
            latch_key=step.key,
            limit_type=status.limit_type,
            symbol=status.symbol,
            threshold=status.threshold,
            at_pct=step.at_pct,
            action=step.action,
            triggered_at=now,
            dry_run=dry_run,
            context={"current_value": decimal_str(status.value), "step_value": decimal_str(step.level)},
        )
        trip.client_order_id = f"etrms-ld-{trip.id.hex[:16]}"  # each order adds its position (ladder_actions)
        try:
            with transaction.atomic():
                trip.save(force_insert=True)
        except IntegrityError:
            return None  # another evaluator latched it first
        message, metadata = _words(step)
        spec = AlertSpec(
            key=f"ladder-step:{trip.id}",
            alert_type=AlertType.LADDER_STEP,
            severity=SEVERITY[step.action],
            message=message,
            metadata={**metadata, "trip_id": str(trip.id), "dry_run": dry_run},
            limit_id=limit.pk,
        )
        trip.alert = alert_raise(user_id=user_id, spec=spec, now=now)
        trip.save(update_fields=["alert"])
    return trip


def ladder_trips_release(*, trip_ids: list, reason: str, now, actor=None) -> int:
    """Release latched steps; resolve the alerts of those whose action did not fail (a
    failed or partial one stays escalated for a person to resolve). `condition
    cleared`: an evaluation found the metric back under the step."""
    fields = {"released_at": now, "release_reason": reason, "released_by_id": actor_id(actor)}
    if reason == STEP_CLEARED:
        fields["condition_cleared_at"] = now
    trips = LadderTrip.objects.filter(pk__in=trip_ids, released_at__isnull=True)
    done = trips.filter(action_status__in=(ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN), alert__isnull=False)
    alerts = list(RiskAlert.objects.filter(pk__in=list(done.values_list("alert_id", flat=True))))
    released = trips.update(**fields)
    _resolve(alerts, now=now, reason=f"ladder step released: {reason}")
    return released


def ladder_sync(*, decision, user_id, dry_run: bool, now) -> list[LadderTrip]:
    """Latch and act on `decision.step_latch`, release `decision.step_release` (an
    `outcome.Decision`). Returns the trips this call latched, with their outcome."""
    trips = []
    for step in decision.step_latch:
        trip = step_latch(step=step, user_id=user_id, dry_run=dry_run, now=now)
        if trip is not None:
            trips.append(trip_action_run(trip=trip, additional_params={}))
    by_reason: dict = {}
    for latch, reason in decision.step_release:
        by_reason.setdefault(reason, []).append(latch.trip_id)
    for reason, trip_ids in by_reason.items():
        ladder_trips_release(trip_ids=trip_ids, reason=reason, now=now)
    return trips
