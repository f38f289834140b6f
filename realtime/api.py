"""Phase 4's cache endpoints (bare objects, SPEC §8): health, stats, market data and
price read-through, clearing and invalidation, and price alerts."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from redis import RedisError
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts.exchanges import UnknownSymbol, normalize_symbol
from accounts.fields import ExchangeIdField
from etrms.api.inputs import PositiveDecimalField, SymbolField
from etrms.api.pagination import PageQuery, page, query_filter, query_validate
from etrms.api.permissions import IsRiskOfficer, user_filter
from etrms.api.responses import bare
from etrms.api.schema import string_in
from etrms.api.throttles import ScopedRateThrottle
from etrms.roles import is_risk_officer
from realtime import cache
from realtime.filters import PriceAlertFilter
from realtime.models import PriceAlertCondition, PriceAlertStatus
from realtime.selectors import PRICE_ALERT_FIELDS, price_alert_get, price_alert_list, price_alert_out
from realtime.services.market_data import market_data_get, price_get
from realtime.services.price_alerts import price_alert_cancel, price_alert_create

EXCHANGE_PARAM = OpenApiParameter(
    "exchange", OpenApiTypes.STR, description="Exchange id (default: the first monitored exchange, else paper)."
)
SYMBOL_PATH = OpenApiParameter("symbol", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. BTCUSDT.")
CLEARABLE = (*cache.CACHE_TYPES, cache.ALL)


class CacheApi(APIView):
    throttle_scope = "cache"


class _HealthThrottle(ScopedRateThrottle):
    """The health check must answer while Redis is down: the limit fails open then."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            self._wait = None
            return True


def _exchange_query(request) -> str | None:
    values = request.query_params.getlist("exchange")
    if len(values) > 1:
        raise ValidationError({"exchange": ["Give this parameter once."]})
    return values[0] if values else None


# --- health and stats ---------------------------------------------------------------------
HealthOutput = inline_serializer(
    "CacheHealth",
    {
        "status": serializers.ChoiceField(choices=["healthy", "unhealthy"]),
        "redis_connected": serializers.BooleanField(),
        "uptime_seconds": serializers.IntegerField(allow_null=True),
        "cache_hit_rate": serializers.FloatField(allow_null=True),
    },
)


class CacheTypeStats(serializers.Serializer):
    keys = serializers.IntegerField()
    hit_rate = serializers.FloatField()
    avg_ttl_seconds = serializers.FloatField(allow_null=True)
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()


class CacheStatsOutput(serializers.Serializer):
    market_data_cache = CacheTypeStats()
    user_session_cache = CacheTypeStats()
    price_cache = CacheTypeStats()


class CacheHealthApi(CacheApi):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [_HealthThrottle]

    @extend_schema(
        responses={200: HealthOutput, 503: HealthOutput},
        description="No auth. 503 with status unhealthy when Redis does not answer.",
    )
    def get(self, request):
        healthy, body = cache.cache_health()
        return bare(body, status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE)


class CacheStatsApi(CacheApi):
    @extend_schema(
        responses=CacheStatsOutput,
        description="Per cache type: keys (SCAN), hit rate 0..1, mean TTL of a sample of keys, hits, misses.",
    )
    def get(self, request):
        try:
            return bare(cache.cache_stats())
        except RedisError as exc:
            raise cache.unavailable(exc) from None


# --- read-through ---------------------------------------------------------------------------
PriceOutput = inline_serializer(
    "CachedPrice",
    {
        "symbol": serializers.CharField(),
        "exchange": serializers.CharField(),
        "price": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "cached": serializers.BooleanField(),
    },
)
MarketDataOutput = inline_serializer(
    "CachedMarketData",
    {
        "symbol": serializers.CharField(),
        "exchange": serializers.CharField(),
        "price": serializers.CharField(),
        "order_book": serializers.JSONField(help_text="{bids: [[price, quantity]], asks: [...]} or null"),
        "recent_trades": serializers.JSONField(help_text="[{price, quantity, time}], newest first"),
        "timestamp": serializers.DateTimeField(),
        "cached_at": serializers.DateTimeField(),
        "cached": serializers.BooleanField(),
    },
)


class MarketDataApi(CacheApi):
    @extend_schema(
        parameters=[SYMBOL_PATH, EXCHANGE_PARAM],
        responses=MarketDataOutput,
        description="Read-through: a miss fetches ticker, order book and trades once and caches them.",
    )
    def get(self, request, symbol):
        return bare(market_data_get(symbol=symbol, exchange=_exchange_query(request)))


class PriceApi(CacheApi):
    @extend_schema(
        parameters=[SYMBOL_PATH, EXCHANGE_PARAM],
        responses=PriceOutput,
        description="Read-through: a miss fetches the ticker once and caches its price.",
    )
    def get(self, request, symbol):
        return bare(price_get(symbol=symbol, exchange=_exchange_query(request)))


# --- clearing and invalidation ------------------------------------------------------------------
class CacheClearApi(CacheApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        parameters=[
            OpenApiParameter("cache_type", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(CLEARABLE)),
        ],
        responses={
            200: inline_serializer(
                "CacheCleared", {"cleared": serializers.IntegerField(), "cache_type": serializers.CharField()}
            )
        },
        description="Risk officers. Removes that cache type's keys only (SCAN + UNLINK).",
    )
    def delete(self, request, cache_type):
        if cache_type not in CLEARABLE:
            raise ValidationError({"cache_type": [f"Unknown cache type {cache_type!r}: use one of {list(CLEARABLE)}."]})
        try:
            cleared = cache.cache_clear(cache_type=cache_type)
        except RedisError as exc:
            raise cache.unavailable(exc) from None
        return bare({"cleared": cleared, "cache_type": cache_type})


class CacheInvalidateInput(serializers.Serializer):
    cache_type = serializers.ChoiceField(choices=CLEARABLE, required=False, default=cache.ALL)
    symbols = serializers.ListField(  # two letters or digits at least, once accounts' normalize_symbol drops separators
        child=serializers.RegexField(r"^(?:[/:_-]*[A-Za-z0-9]){2}[A-Za-z0-9/:_-]*$", max_length=40),
        required=False,
        max_length=1000,
    )
    keys = serializers.ListField(child=serializers.CharField(max_length=200), required=False, max_length=1000)

    # validate(): symbols or keys, not empty; user_session entries have no symbol.
    document_rules = {
        "anyOf": [
            {"properties": {"symbols": {"minItems": 1}}, "required": ["symbols"]},
            {"properties": {"keys": {"minItems": 1}}, "required": ["keys"]},
        ],
        "not": {"properties": {"cache_type": string_in("user_session")}, "required": ["cache_type", "symbols"]},
    }

    def validate_symbols(self, values):
        try:
            return [normalize_symbol(value) for value in values]
        except UnknownSymbol as exc:
            raise serializers.ValidationError(str(exc.detail)) from None

    def validate(self, data):
        if not data.get("symbols") and not data.get("keys"):
            raise serializers.ValidationError("Give symbols or keys to invalidate (DELETE /cache/{type} clears).")
        if data.get("symbols") and data["cache_type"] == cache.USER_SESSION:
            raise serializers.ValidationError({"symbols": ["user_session entries belong to no symbol."]})
        return data


class CacheInvalidateApi(CacheApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        request=CacheInvalidateInput,
        responses=inline_serializer(
            "CacheInvalidated", {"invalidated": serializers.IntegerField(), "cache_type": serializers.CharField()}
        ),
        description=(
            "Risk officers. `symbols`: their entries on every exchange (market_data and price); `keys`: "
            "entries by key (`<exchange>:<SYMBOL>`, or a session key for user_session). Answers the keys removed."
        ),
    )
    def post(self, request):
        data = CacheInvalidateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            removed = cache.cache_invalidate(
                cache_type=values["cache_type"], symbols=values.get("symbols"), keys=values.get("keys")
            )
        except RedisError as exc:
            raise cache.unavailable(exc) from None
        return bare({"invalidated": removed, "cache_type": values["cache_type"]})


# --- price alerts --------------------------------------------------------------------------------
class PriceAlertOutput(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField(required=False, help_text="Risk officers only.")
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    condition = serializers.ChoiceField(choices=PriceAlertCondition.choices)
    target_price = serializers.CharField()
    status = serializers.ChoiceField(choices=PriceAlertStatus.choices)
    created_at = serializers.DateTimeField()
    triggered_at = serializers.DateTimeField(allow_null=True)
    triggered_price = serializers.CharField(allow_null=True)


class PriceAlertListOutput(serializers.Serializer):
    alerts = PriceAlertOutput(many=True)
    count = serializers.IntegerField()


class PriceAlertCreateApi(CacheApi):
    class PriceAlertInput(serializers.Serializer):
        symbol = SymbolField(max_length=40)
        condition = serializers.ChoiceField(choices=PriceAlertCondition.choices)
        target_price = PositiveDecimalField(
            max_digits=32, decimal_places=12, positive_message="Must be greater than zero."
        )
        exchange = ExchangeIdField(max_length=32, required=False, allow_null=True, allow_blank=True)

    @extend_schema(
        request=PriceAlertInput,
        responses={201: PriceAlertOutput},
        description=(
            "An alert that fires once (a low `price_alert` risk alert) when the price reaches the target. "
            "Unknown exchange or symbol: 404; more than PRICE_ALERT_MAX_ACTIVE (100) active alerts: 409."
        ),
    )
    def post(self, request):
        data = self.PriceAlertInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = price_alert_create(user_id=request.user.pk, **data.validated_data)
        out = price_alert_out(alert)
        del out["triggered_at"], out["triggered_price"]
        return bare(out, status=status.HTTP_201_CREATED)


class PriceAlertListQuery(PageQuery):
    default_limit = 100


class PriceAlertListApi(CacheApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=PriceAlertStatus.values),
            OpenApiParameter("user_id", OpenApiTypes.UUID, description="Risk officers: one user's alerts."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Default 100, at most 1000."),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses=PriceAlertListOutput,
        description="The caller's price alerts (a risk officer: everyone's, with user_id), newest first.",
    )
    def get(self, request):
        query = query_validate(PriceAlertListQuery, request)
        officer = is_risk_officer(request.user)
        queryset = price_alert_list(viewer=request.user, user_id=user_filter(request, query.get("user_id")))
        queryset = query_filter(PriceAlertFilter, queryset, request)
        rows = page(queryset.values(*PRICE_ALERT_FIELDS), limit=query["limit"], offset=query["offset"])
        return bare({"alerts": [price_alert_out(row, include_user=officer) for row in rows], "count": queryset.count()})


class PriceAlertDeleteApi(CacheApi):
    @extend_schema(responses={204: None}, description="Cancel the alert (kept, status cancelled). Not yours: 404.")
    def delete(self, request, alert_id):
        alert = price_alert_get(viewer=request.user, alert_id=alert_id)
        price_alert_cancel(alert=alert)
        return bare(None, status=status.HTTP_204_NO_CONTENT)
