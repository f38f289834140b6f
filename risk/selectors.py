"""Reads of the risk app: what the API, the admin and evaluation list and fetch."""

from django.db.models import QuerySet

from etrms.errors import NotFound
from etrms.filters import filters_apply
from etrms.roles import visible_to
from risk.filters import LimitFilter
from risk.models import CircuitBreaker, ExchangeConfig, LadderTrip, RiskAlert, RiskLimit, SymbolConfig


def _of_user(queryset: QuerySet, user_id) -> QuerySet:
    return queryset if user_id is None else queryset.filter(user_id=user_id)


def limit_list(*, viewer, user_id=None, filters: dict | None = None) -> QuerySet:
    """The limits `viewer` sees (of `user_id` when given), narrowed by `filters` (the
    validated parameters of `risk.filters.LimitFilter`), newest first."""
    queryset = _of_user(visible_to(RiskLimit.objects.all(), viewer), user_id).order_by("-created_at", "-id")
    return filters_apply(LimitFilter, queryset, filters) if filters else queryset


def limit_get(*, viewer, limit_id) -> RiskLimit:
    """The limit, or a 404 if it is unknown or not the viewer's (officers see all)."""
    limit = visible_to(RiskLimit.objects.all(), viewer).filter(pk=limit_id).first()
    if limit is None:
        raise NotFound("Risk limit not found.")
    return limit


def alert_list(*, viewer, user_id=None) -> QuerySet:
    """The alerts `viewer` sees (of `user_id` when given), newest first; the list's
    filters: `risk.filters.AlertFilter`."""
    return _of_user(visible_to(RiskAlert.objects.all(), viewer), user_id).order_by("-triggered_at", "-id")


def alert_get(*, viewer, alert_id) -> RiskAlert:
    alert = visible_to(RiskAlert.objects.all(), viewer).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("Risk alert not found.")
    return alert


def breaker_list() -> QuerySet:
    return CircuitBreaker.objects.order_by("name")


def breaker_get(*, name: str) -> CircuitBreaker:
    breaker = CircuitBreaker.objects.filter(name=name).first()
    if breaker is None:
        raise NotFound(f"Circuit breaker {name!r} not found.")
    return breaker


def symbol_config_list() -> QuerySet:
    return SymbolConfig.objects.order_by("symbol")


def symbol_config_find(*, symbol: str) -> SymbolConfig | None:
    return SymbolConfig.objects.filter(symbol=symbol).first()


def exchange_config_list() -> QuerySet:
    return ExchangeConfig.objects.order_by("exchange")


def exchange_config_find(*, exchange: str) -> ExchangeConfig | None:
    return ExchangeConfig.objects.filter(exchange=exchange).first()


def ladder_latches_get(*, limit_ids: list) -> dict:
    """{limit id (text): {at_pct: [latched LadderTrip, by symbol]}} for `limit_ids`
    (one query; the caller has checked who may see the limits)."""
    latches: dict = {}
    if not limit_ids:
        return latches
    trips = LadderTrip.objects.filter(limit_id__in=limit_ids, released_at__isnull=True).order_by("symbol")
    for trip in trips:
        latches.setdefault(str(trip.limit_id), {}).setdefault(trip.at_pct, []).append(trip)
    return latches
