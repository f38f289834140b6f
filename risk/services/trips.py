"""Circuit breaker trips (SPEC §5): latch, act, record, release.

A trip is per (breaker, latch key): the position, or for consecutive_losses the
(account, symbol) streak. `trip_latch` decides who acts: under a lock on the breaker's
row it inserts the latched trip, which a partial unique index keeps single whatever
the path (feed, sync, sweep, manual evaluate) and however many processes race. Only
the winner runs the action, after the latch is committed, so no database lock is held
across an exchange call. The client order id is derived from the trip, so a retry of a
failed action can never send a second order.

While global `dry_run` is on, nothing is sent and `action_result` says what would have
been. A failed action is recorded as failed with the exchange's error, escalated in
the trip's critical alert and retried on the critical queue (`breaker_action_retry`).
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from risk.models import ActionStatus, AlertSeverity, AlertType, BreakerAction, BreakerTrip, CircuitBreaker
from risk.services.alerts import AlertSpec, alert_escalate, alert_raise
from risk.services.breaker_params import DEFAULT_REDUCE_PCT
from risk.services.common import actor_id

logger = logging.getLogger(__name__)

RETRY_JOB = "breaker_action_retry"


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def client_order_id_for(trip_id) -> str:
    """Idempotency key of the trip's order: the same for every retry of this trip."""
    return f"etrms-cb-{trip_id.hex[:24]}"


def _reduce_pct(additional_params: dict) -> Decimal:
    return Decimal(str(additional_params.get("reduce_pct", DEFAULT_REDUCE_PCT)))


def trip_latch(*, hit, dry_run: bool, now=None) -> BreakerTrip | None:
    """Latch `hit` (an `assess.BreakerHit`) and raise its critical alert, in one
    transaction under the breaker's row lock. None when the pair is already latched or
    the breaker is gone or disabled meanwhile."""
    now = now or timezone.now()
    breaker_view, position = hit.breaker, hit.position
    with transaction.atomic():
        breaker = CircuitBreaker.objects.select_for_update().filter(pk=breaker_view.id, enabled=True).first()
        if breaker is None:
            return None
        if BreakerTrip.objects.filter(breaker=breaker, latch_key=hit.latch_key, released_at__isnull=True).exists():
            return None
        trip = BreakerTrip(
            breaker=breaker,
            breaker_name=breaker.name,
            user_id=position.user_id,
            latch_key=hit.latch_key,
            position_ref=str(position.id),
            exchange=position.exchange,
            symbol=position.symbol,
            condition_type=breaker.condition_type,
            threshold=breaker.threshold,
            action=breaker.action,
            triggered_at=now,
            dry_run=dry_run,
            context={
                **_plain(hit.context),
                "side": position.side,
                "size": float(position.size),
                "mark_price": float(position.mark_price),
                "summary": hit.summary,
            },
        )
        trip.client_order_id = client_order_id_for(trip.id)
        try:
            with transaction.atomic():
                trip.save(force_insert=True)
        except IntegrityError:
            return None  # another evaluator latched it first
        CircuitBreaker.objects.filter(pk=breaker.pk).update(trigger_count=F("trigger_count") + 1, last_triggered_at=now)
        alert = alert_raise(
            user_id=trip.user_id,
            spec=AlertSpec(
                key=f"breaker:{trip.id}",
                alert_type=AlertType.CIRCUIT_BREAKER,
                severity=AlertSeverity.CRITICAL,
                message=(
                    f"Circuit breaker {breaker.name} tripped on {trip.exchange} {trip.symbol} "
                    f"({position.side}): {hit.summary}."
                ),
                metadata=_alert_metadata(trip, breaker.description),
            ),
            now=now,
        )
        trip.alert = alert
        trip.save(update_fields=["alert"])
    return trip


def _alert_metadata(trip: BreakerTrip, description: str = "") -> dict:
    return {
        "breaker": trip.breaker_name,
        "description": description,
        "condition_type": trip.condition_type,
        "exchange": trip.exchange,
        "symbol": trip.symbol,
        "position_id": trip.position_ref,
        "trip_id": str(trip.id),
        "threshold": _fmt(trip.threshold),
        "context": {key: value for key, value in trip.context.items() if key != "summary"},
        "action": trip.action,
        "dry_run": trip.dry_run,
        "action_status": trip.action_status,
        "action_result": trip.action_result or None,
    }


def _describe(trip: BreakerTrip, position, params: dict) -> tuple[str, str, Decimal | None]:
    """(what the action does in words, order side, amount) for the trip's position."""
    side = position.side if position is not None else trip.context.get("side", "long")
    size = position.size if position is not None else Decimal(str(trip.context.get("size", 0)))
    order_side = "sell" if side == "long" else "buy"
    if trip.action == BreakerAction.CANCEL_ALL_ORDERS:
        return f"cancel all open {trip.symbol} orders on {trip.exchange}", "", None
    held = f"the {side} {_fmt(size)} {trip.symbol} position on {trip.exchange}"
    if trip.action == BreakerAction.CLOSE_POSITION:
        return f"close {held} with a reduce-only market {order_side} of {_fmt(size)}", order_side, size
    pct = _reduce_pct(params)
    amount = size * pct / 100
    return (
        f"reduce {held} by {_fmt(pct)}% with a reduce-only market {order_side} of {_fmt(amount)}",
        order_side,
        amount,
    )


def _execute(trip: BreakerTrip, params: dict) -> tuple[str, dict]:
    """Send the trip's action through the exchange layer. Returns (result, details);
    raises the exchange layer's errors."""
    from accounts.models import Position
    from accounts.services.trading import orders_cancel_all, position_close, position_reduce

    position = Position.objects.select_related("account").filter(pk=trip.position_ref).first()
    if position is None:
        raise LookupError(f"position {trip.position_ref} no longer exists")
    if trip.action == BreakerAction.CANCEL_ALL_ORDERS:
        cancelled = orders_cancel_all(account=position.account, symbol=trip.symbol)
        count = "all" if cancelled.cancelled is None else str(cancelled.cancelled)
        return f"Cancelled {count} open {trip.symbol} order(s) on {trip.exchange}", {"cancelled": cancelled.cancelled}
    if position.closed_at is not None:
        return f"No order needed: the {trip.symbol} position on {trip.exchange} was already closed", {}
    if trip.action == BreakerAction.CLOSE_POSITION:
        order = position_close(position=position, client_order_id=trip.client_order_id)
        verb = "Position closed"
    else:
        order = position_reduce(position=position, reduce_pct=_reduce_pct(params), client_order_id=trip.client_order_id)
        verb = f"Position reduced by {_fmt(_reduce_pct(params))}%"
    price = f" at {_fmt(order.average_price)}" if order.average_price is not None else ""
    result = (
        f"{verb}: reduce-only market {order.side} of {_fmt(order.amount)} {trip.symbol} on {trip.exchange}, "
        f"filled {_fmt(order.filled)}{price} (order {order.id}, status {order.status})"
    )
    details = {
        "order_id": order.id,
        "client_order_id": order.client_order_id,
        "side": order.side,
        "amount": _fmt(order.amount),
        "filled": _fmt(order.filled),
        "average_price": _fmt(order.average_price) if order.average_price is not None else None,
        "status": order.status,
    }
    if order.status == "rejected":
        raise RuntimeError(f"the exchange rejected the order: {result}")
    return result, details


def trip_action_run(*, trip: BreakerTrip, additional_params: dict) -> BreakerTrip:
    """Run the trip's action (or describe it on a dry run) and record the outcome.
    A failure is recorded, escalated in the alert and queued for retry (critical)."""
    trip.action_attempts += 1
    if trip.dry_run:
        from accounts.models import Position

        position = Position.objects.filter(pk=trip.position_ref).first()
        words, order_side, amount = _describe(trip, position, additional_params)
        trip.action_status = ActionStatus.DRY_RUN
        trip.action_result = f"Dry run: would {words}; nothing was sent"
        trip.action_details = {"would": trip.action, "side": order_side, "amount": _fmt(amount) if amount else None}
        failed = False
    else:
        try:
            trip.action_result, trip.action_details = _execute(trip, additional_params)
            trip.action_status, trip.action_error = ActionStatus.SUCCEEDED, ""
            failed = False
        except Exception as exc:  # an action that fails must be loud, whatever failed
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            logger.warning("Breaker %s trip %s: action %s failed: %s", trip.breaker_name, trip.id, trip.action, detail)
            trip.action_status = ActionStatus.FAILED
            trip.action_error = str(detail)
            trip.action_result = f"FAILED: {trip.action} on {trip.symbol} ({trip.exchange}): {detail}"
            failed = True
    with transaction.atomic():
        trip.save(update_fields=["action_attempts", "action_status", "action_result", "action_error", "action_details"])
        if trip.alert_id is not None:
            alert = trip.alert
            metadata = {
                **alert.metadata,
                "action_status": trip.action_status,
                "action_result": trip.action_result,
                "action_attempts": trip.action_attempts,
            }
            message = alert.message.split(" Action ")[0]
            if failed:
                metadata["escalated"] = True
                message = f"{message} Action FAILED (attempt {trip.action_attempts}): {trip.action_error}. Retrying."
            elif trip.action_attempts > 1:
                message = f"{message} Action succeeded on attempt {trip.action_attempts}."
            alert_escalate(alert=alert, message=message, metadata=metadata)
        if failed and trip.action_attempts == 1:
            _retry_enqueue(trip)
    return trip


def _retry_enqueue(trip: BreakerTrip) -> None:
    from jobs.services.lifecycle import job_enqueue

    job_enqueue(user=None, name=RETRY_JOB, args={"trip_id": str(trip.id)}, priority="critical")


def trip_action_retry(*, trip_id) -> dict:
    """`breaker_action_retry`: run a failed action again with the same client order id;
    raises if it fails again, so the job machinery retries it and finally dead-letters
    it (the trip stays failed, the alert escalated)."""
    trip = BreakerTrip.objects.select_related("alert", "breaker").get(pk=trip_id)
    if trip.action_status in (ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN):
        return {"trip_id": str(trip.id), "status": trip.action_status, "result": trip.action_result}
    params = trip.breaker.additional_params if trip.breaker is not None else {}
    trip = trip_action_run(trip=trip, additional_params=params)
    if trip.action_status == ActionStatus.FAILED:
        raise RuntimeError(trip.action_result)
    return {"trip_id": str(trip.id), "status": trip.action_status, "result": trip.action_result}


def trips_release(*, trip_ids: list, reason: str, now=None, actor=None) -> int:
    """Release latches (the condition cleared and the cooldown passed, or an officer
    re-armed them): the pair may trip again."""
    if not trip_ids:
        return 0
    return BreakerTrip.objects.filter(pk__in=trip_ids, released_at__isnull=True).update(
        released_at=now or timezone.now(), release_reason=reason, released_by_id=actor_id(actor)
    )


def trip_rearm(*, actor, trip: BreakerTrip) -> BreakerTrip:
    """An officer re-arms a latched trip. For consecutive_losses this also restarts the
    streak count: losses closed before now no longer count."""
    now = timezone.now()
    trips_release(trip_ids=[trip.pk], reason="rearmed", now=now, actor=actor)
    trip.refresh_from_db()
    return trip


def release_due(trip, *, cooldown_seconds: int, now) -> bool:
    return now - trip.triggered_at >= timedelta(seconds=cooldown_seconds)
