"""Circuit breaker trips (SPEC §5): latch, release, re-arm, recover.

A trip is per (breaker, latch key): the position, or for consecutive_losses the
(account, symbol) streak. `trip_latch` decides who acts: under a lock on the breaker's
row it inserts the latched trip, which a partial unique index keeps single whatever
the path (feed, sync, sweep, manual evaluate) and however many processes race. Only
the winner runs the action (risk.services.trip_actions), after the latch is committed,
so no database lock is held across an exchange call.

`trips_sync` writes what `outcome_decide` decided for a user's breakers, as
`alerts_sync` does for alerts. A latch is released when an evaluation finds the
condition clear or the position gone, when an officer re-arms it, and for trips made
under dry run when dry run is switched off or the breaker is enabled again, so a
dry-run trip never blocks a live action.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from etrms.formatting import decimal_plain, json_numbers
from etrms.metrics import BREAKER_TRIPS
from risk.constants import ActionStatus, AlertSeverity, AlertType
from risk.models import BreakerTrip, CircuitBreaker, LadderTrip
from risk.services import hooks
from risk.services.alerts import AlertSpec, alert_raise
from risk.services.common import actor_id
from risk.services.ladder import ladder_trips_release
from risk.services.trip_actions import client_order_id_for, trip_action_run, trip_params

logger = logging.getLogger(__name__)

STUCK_AFTER_SECONDS = 30  # a latched trip not acted on by then lost its process


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
                **json_numbers(hit.context),
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
        "threshold": decimal_plain(trip.threshold),
        "context": {key: value for key, value in trip.context.items() if key != "summary"},
        "action": trip.action,
        "dry_run": trip.dry_run,
        "action_status": trip.action_status,
        "action_result": trip.action_result or None,
    }


@dataclass
class TripOutcome:
    """A hit this evaluation latched (and acted on), or found latched by another."""

    hit: object
    trip: BreakerTrip | None
    new: bool


def trips_sync(*, decision, dry_run: bool, now) -> list[TripOutcome]:
    """Latch and act on `decision.latch`, release `decision.release` (an
    `outcome.Decision`). Returns the outcome of each latched hit."""
    outcomes = []
    for hit in decision.latch:
        trip = trip_latch(hit=hit, dry_run=dry_run, now=now)
        if trip is None:  # another evaluator latched it first: report its trip
            trip = BreakerTrip.objects.filter(
                breaker_id=hit.breaker.id, latch_key=hit.latch_key, released_at__isnull=True
            ).first()
            outcomes.append(TripOutcome(hit=hit, trip=trip, new=False))
            continue
        BREAKER_TRIPS.labels(hit.breaker.condition_type, hit.breaker.action).inc()
        outcomes.append(
            TripOutcome(
                hit=hit, trip=trip_action_run(trip=trip, additional_params=hit.breaker.additional_params), new=True
            )
        )
    by_reason: dict = {}
    for latch, reason in decision.release:
        by_reason.setdefault(reason, []).append(latch.trip_id)
    for reason, trip_ids in by_reason.items():
        trips_release(trip_ids=trip_ids, reason=reason, now=now, cleared=True)
    return outcomes


def trips_release(*, trip_ids: list, reason: str, now=None, actor=None, cleared: bool = False) -> int:
    """Release latches: the pair may trip again (after its cooldown, counted from its
    last live action). `cleared`: an evaluation found the condition clear."""
    if not trip_ids:
        return 0
    now = now or timezone.now()
    fields = {"released_at": now, "release_reason": reason, "released_by_id": actor_id(actor)}
    if cleared:
        fields["condition_cleared_at"] = now
    return BreakerTrip.objects.filter(pk__in=trip_ids, released_at__isnull=True).update(**fields)


def trip_rearm(*, actor, trip: BreakerTrip) -> BreakerTrip:
    """An officer re-arms a latched trip. For consecutive_losses this also restarts the
    streak count: losses closed before now no longer count."""
    trips_release(trip_ids=[trip.pk], reason="rearmed", now=timezone.now(), actor=actor)
    hooks.breakers_changed()  # long-lived evaluators (the feed's index) read the latches again
    trip.refresh_from_db()
    return trip


def dry_run_trips_release(*, actor, reason: str, breaker: CircuitBreaker | None = None) -> int:
    """Release the latches of trips made under dry run (of `breaker`, or all, ladder
    steps included): dry run was switched off or the breaker enabled again, and a
    dry-run trip must never block the live action (SPEC §5). Recorded on each trip with
    who and why."""
    trips = BreakerTrip.objects.filter(released_at__isnull=True, dry_run=True)
    if breaker is not None:
        trips = trips.filter(breaker=breaker)
    trip_ids = list(trips.values_list("pk", flat=True))
    released = trips_release(trip_ids=trip_ids, reason=reason, actor=actor)
    if breaker is None:
        steps = LadderTrip.objects.filter(released_at__isnull=True, dry_run=True).values_list("pk", flat=True)
        released += ladder_trips_release(trip_ids=list(steps), reason=reason, now=timezone.now(), actor=actor)
    hooks.breakers_changed()
    if released:
        logger.info("Released %d dry-run trip latch(es): %s", released, reason)
    return released


def trips_recover(*, now=None) -> int:
    """The sweep's recovery step: run the action of live trips (a breaker's or a ladder
    step's) latched but never acted on (the process died between latch and action), or
    whose action's process died (its lease lapsed), with the same client order id.
    Returns how many were run."""
    now = now or timezone.now()
    count = 0
    for model in (BreakerTrip, LadderTrip):
        stuck = (
            model.objects.filter(
                released_at__isnull=True,
                dry_run=False,
                action_status=ActionStatus.PENDING,
                triggered_at__lt=now - timedelta(seconds=STUCK_AFTER_SECONDS),
            )
            .filter(Q(action_lease_until__isnull=True) | Q(action_lease_until__lt=now))
            .select_related("alert")
        )
        for trip in stuck:
            logger.warning("Trip %s (%s) was never acted on: acting now", trip.id, trip)
            trip_action_run(trip=trip, additional_params=trip_params(trip))
            count += 1
    return count
