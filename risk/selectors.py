"""Reads of the risk app: what the API, the admin and evaluation list and fetch."""

from django.db.models import QuerySet

from etrms.errors import NotFound
from etrms.roles import is_risk_officer
from risk.models import CircuitBreaker, ExchangeConfig, LadderTrip, RiskAlert, RiskLimit, SymbolConfig


def _owned(queryset: QuerySet, *, viewer) -> QuerySet:
    """A trader sees their own rows; an officer everyone's."""
    if is_risk_officer(viewer):
        return queryset
    return queryset.filter(user_id=viewer.pk)


def _where(queryset: QuerySet, **filters) -> QuerySet:
    """The filters that were given (None means "not filtered")."""
    given = {field: value for field, value in filters.items() if value is not None}
    return queryset.filter(**given) if given else queryset


def limit_list(*, viewer, user_id=None, symbol=None, limit_type=None, enabled=None) -> QuerySet:
    """Newest first. `symbol` matches exactly (a null-symbol limit is not returned for a
    symbol filter)."""
    queryset = _owned(RiskLimit.objects.all(), viewer=viewer)
    queryset = _where(queryset, user_id=user_id, symbol=symbol, limit_type=limit_type, enabled=enabled)
    return queryset.order_by("-created_at", "-id")


def limit_get(*, viewer, limit_id) -> RiskLimit:
    """The limit, or a 404 if it is unknown or not the viewer's (officers see all)."""
    limit = _owned(RiskLimit.objects.all(), viewer=viewer).filter(pk=limit_id).first()
    if limit is None:
        raise NotFound("Risk limit not found.")
    return limit


def alert_list(*, viewer, user_id=None, status=None, severity=None, alert_type=None) -> QuerySet:
    queryset = _owned(RiskAlert.objects.all(), viewer=viewer)
    queryset = _where(queryset, user_id=user_id, status=status, severity=severity, alert_type=alert_type)
    return queryset.order_by("-triggered_at", "-id")


def alert_get(*, viewer, alert_id) -> RiskAlert:
    alert = _owned(RiskAlert.objects.all(), viewer=viewer).filter(pk=alert_id).first()
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
