"""What is open and latched for users now (`outcome.OpenState`), read in four queries
whatever the number of users: open alert keys, alerts resolved within the cooldown,
breaker trips that are latched or acted live within the longest breaker cooldown, and
ladder steps that are latched or acted live within the desk's alert cooldown."""

from datetime import datetime, timedelta

from django.db.models import Q

from risk.constants import AlertStatus
from risk.models import BreakerTrip, LadderTrip, RiskAlert
from risk.services.outcome import LatchState, OpenState, StepLatch
from risk.services.snapshots import ConfigView


def open_states_load(*, user_ids: list, config: ConfigView, now: datetime) -> dict:
    """{user_id: OpenState} for `user_ids` (every user given gets one)."""
    states = {user_id: OpenState() for user_id in user_ids}
    alerts = RiskAlert.objects.filter(user_id__in=user_ids).exclude(dedup_key="")
    for user_id, key in alerts.exclude(status=AlertStatus.RESOLVED).values_list("user_id", "dedup_key"):
        states[user_id].alert_keys.add(key)
    if config.alert_cooldown_seconds > 0:
        since = now - timedelta(seconds=config.alert_cooldown_seconds)
        for user_id, key, resolved_at in alerts.filter(status=AlertStatus.RESOLVED, resolved_at__gt=since).values_list(
            "user_id", "dedup_key", "resolved_at"
        ):
            cooling = states[user_id].cooling
            cooling[key] = max(cooling.get(key, resolved_at), resolved_at)
    longest = max((breaker.cooldown_seconds for breaker in config.breakers), default=0)
    recent_live = Q(dry_run=False, triggered_at__gt=now - timedelta(seconds=longest))
    for row in BreakerTrip.objects.filter(Q(released_at__isnull=True) | recent_live, user_id__in=user_ids).values_list(
        "id", "user_id", "breaker_id", "latch_key", "triggered_at", "dry_run", "action_status", "released_at"
    ):
        trip_id, user_id, breaker_id, latch_key, triggered_at, dry_run, action_status, released_at = row
        state, pair = states[user_id], (breaker_id, latch_key)
        if released_at is None:
            state.latched[pair] = LatchState(
                trip_id=trip_id,
                breaker_id=breaker_id,
                latch_key=latch_key,
                triggered_at=triggered_at,
                dry_run=dry_run,
                action_status=action_status,
            )
        if not dry_run:
            state.last_action[pair] = max(state.last_action.get(pair, triggered_at), triggered_at)
    _steps_load(states, user_ids=user_ids, cooldown_seconds=config.alert_cooldown_seconds, now=now)
    return states


def _steps_load(states: dict, *, user_ids: list, cooldown_seconds: int, now: datetime) -> None:
    recent_live = Q(dry_run=False, triggered_at__gt=now - timedelta(seconds=cooldown_seconds))
    rows = LadderTrip.objects.filter(Q(released_at__isnull=True) | recent_live, user_id__in=user_ids).values_list(
        "id", "user_id", "latch_key", "triggered_at", "dry_run", "released_at"
    )
    for trip_id, user_id, latch_key, triggered_at, dry_run, released_at in rows:
        state = states[user_id]
        if released_at is None:
            state.steps[latch_key] = StepLatch(trip_id=trip_id, latch_key=latch_key)
        if not dry_run:
            last = state.step_last_action.get(latch_key, triggered_at)
            state.step_last_action[latch_key] = max(last, triggered_at)
