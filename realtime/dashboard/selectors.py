"""Read-only views of the desk for the dashboard: each user's metrics against every
limit and desk cap that applies (the pure `compute` step of the evaluation, no write), with
each limit's ladder steps and which are latched, and the circuit breakers with their latched
trips and last trip."""

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import account_holders
from etrms.formatting import decimal_str, iso_utc, number
from risk.models import BreakerTrip, LadderTrip, RiskLimit
from risk.services import assess, assess_limits
from risk.services.evaluation import compute
from risk.services.outcome import ladder_key
from risk.services.snapshots import book_load, config_view_get, desk_totals_load, limits_load

# The officer's desk view evaluates each user in turn; past this many it asks for a filter.
DESK_USERS_MAX = 50


def desk_user_ids() -> list:
    """Users with an exchange account or a limit, by username (at most DESK_USERS_MAX + 1)."""
    users = get_user_model().objects.filter(Q(pk__in=account_holders()) | Q(pk__in=RiskLimit.objects.values("user_id")))
    users = users.order_by("username")
    return list(users.values_list("pk", flat=True)[: DESK_USERS_MAX + 1])


def _ladder_out(status: assess_limits.LimitStatus, latches: dict) -> list[dict]:
    """The limit's steps (issue 15): level, action and, when latched, since when and how
    its action went (`latches`: {ladder latch key: LadderTrip})."""
    steps = []
    for at_pct, action in status.ladder:
        trip = latches.get(ladder_key(status, at_pct))
        steps.append(
            {
                "at_pct": decimal_str(at_pct),
                "do": action,
                "level": decimal_str(status.threshold * at_pct / 100),
                "latched": trip is not None,
                "triggered_at": iso_utc(trip.triggered_at) if trip else None,
                "action_status": trip.action_status if trip else None,
                "dry_run": trip.dry_run if trip else None,
            }
        )
    return steps


def _status_out(status: assess_limits.LimitStatus, latches: dict) -> dict:
    u = status.utilization
    return {
        "key": status.key,
        "source": status.source,
        "limit_id": str(status.limit_id) if status.limit_id is not None else None,
        "limit_type": status.limit_type,
        "symbol": status.symbol,
        "exchange": status.exchange,
        "cap": status.cap,
        "current_value": decimal_str(status.value),
        "threshold": decimal_str(status.threshold),
        "warning_value": decimal_str(status.warning),
        "warning_ratio": float(status.warning / status.threshold) if status.warning is not None else None,
        "utilization": float(u) if u is not None else None,
        "risk_level": status.risk_level,
        "ladder": _ladder_out(status, latches),
    }


def _metrics_out(metrics: assess.Metrics) -> dict:
    if metrics.margin_ratio_undefined:
        margin = "Infinity"
    else:
        margin = decimal_str(metrics.margin_ratio) if metrics.margin_ratio is not None else "0.00"
    return {
        "total_exposure": decimal_str(metrics.total_exposure),
        "equity": decimal_str(metrics.equity),
        "daily_pnl": decimal_str(metrics.daily_pnl),
        "daily_loss": decimal_str(metrics.daily_loss),
        "leverage": decimal_str(metrics.leverage),
        "drawdown": decimal_str(metrics.drawdown),
        "margin_ratio": margin,
    }


def user_risk(*, user_id, config, now) -> dict:
    """One user's metrics and the status of every limit and desk cap that applies."""
    book = book_load(user_id=user_id)
    desk = None
    if config.needs_desk_totals and (book.positions or book.accounts):
        desk = desk_totals_load(
            config=config,
            symbols={position.symbol for position in book.positions},
            exchanges={position.exchange for position in book.positions},
        )
    computed = compute(book=book, limits=limits_load(user_id=user_id), config=config, desk=desk, now=now, inputs=None)
    statuses = computed.limits.statuses
    latched = BreakerTrip.objects.filter(user_id=user_id, released_at__isnull=True).exists()
    steps = {}
    if any(status.ladder for status in statuses):
        steps = {t.latch_key: t for t in LadderTrip.objects.filter(user_id=user_id, released_at__isnull=True)}
    return {
        "user_id": str(user_id),
        "risk_level": assess_limits.risk_level_of(statuses, breaker_exposed=latched),
        "metrics": _metrics_out(computed.metrics),
        "statuses": [_status_out(status, steps) for status in statuses],
    }


def risk_view(*, user_ids: list) -> dict:
    config = config_view_get()
    now = timezone.now()
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    users = []
    for user_id in user_ids[:DESK_USERS_MAX]:
        item = user_risk(user_id=user_id, config=config, now=now)
        item["username"] = names.get(user_id, "")
        users.append(item)
    return {"users": users, "truncated": len(user_ids) > DESK_USERS_MAX, "evaluated_at": iso_utc(now)}


def _trip_out(trip: BreakerTrip | None) -> dict | None:
    if trip is None:
        return None
    return {
        "id": str(trip.pk),
        "user_id": str(trip.user_id),
        "exchange": trip.exchange,
        "symbol": trip.symbol,
        "triggered_at": iso_utc(trip.triggered_at),
        "dry_run": trip.dry_run,
        "action_status": trip.action_status,
        "action_result": trip.action_result or trip.action_error,
        "latched": trip.released_at is None,
    }


def breakers_view(*, user_id) -> dict:
    """Every breaker with its state: armed (enabled, nothing latched), latched (trips
    holding positions in scope) or disabled; its last trip and that trip's action result.
    `user_id` None: the desk's trips; else only that user's."""
    from risk.models import CircuitBreaker

    trips = BreakerTrip.objects.all() if user_id is None else BreakerTrip.objects.filter(user_id=user_id)
    breakers = []
    for breaker in CircuitBreaker.objects.order_by("name"):
        mine = trips.filter(Q(breaker=breaker) | Q(breaker__isnull=True, breaker_name=breaker.name))
        latched = mine.filter(released_at__isnull=True).count()
        last = mine.order_by("-triggered_at").first()
        state = "disabled" if not breaker.enabled else ("latched" if latched else "armed")
        breakers.append(
            {
                "id": breaker.pk,
                "name": breaker.name,
                "condition_type": breaker.condition_type,
                "threshold": number(breaker.threshold),
                "action": breaker.action,
                "enabled": breaker.enabled,
                "state": state,
                "latched": latched,
                "trigger_count": breaker.trigger_count,
                "last_trip": _trip_out(last),
            }
        )
    return {"dry_run": config_view_get().dry_run, "breakers": breakers}
