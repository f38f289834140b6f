"""ETRMS's account, position and monitoring endpoints (envelope responses, SPEC §6).

Scope: a trader sees their own accounts and positions; a risk officer sees everyone's,
with `user_id` on each item and an optional `?user_id=` filter. An exchange the caller
has no account on, or a symbol without an open position, is a 404.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from accounts import selectors
from accounts.exchanges import UnknownSymbol, is_known_exchange, normalize_symbol
from accounts.services.monitoring import monitoring_start, monitoring_stop
from etrms.api.permissions import IsRiskOfficer, user_filter
from etrms.api.responses import envelope
from etrms.roles import is_risk_officer

USER_ID_PARAM = OpenApiParameter(
    "user_id", OpenApiTypes.UUID, description="Risk officers: only this user's accounts and positions."
)
EXCHANGE_PARAM = OpenApiParameter(
    "exchange", OpenApiTypes.STR, OpenApiParameter.PATH, description="Exchange id, e.g. 'binanceusdm', 'paper'."
)
SYMBOL_PARAM = OpenApiParameter("symbol", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. 'BTCUSDT'.")


class ScopeQuery(serializers.Serializer):
    user_id = serializers.UUIDField(required=False)


def caller_scope(request) -> tuple[object, bool]:
    """(user id to filter on or None for everyone, whether items carry user_id)."""
    query = ScopeQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    wanted = user_filter(request, query.validated_data.get("user_id"))  # another user's: a 404
    if is_risk_officer(request.user):
        return wanted, True
    return request.user.pk, False


def exchange_param(exchange: str) -> str:
    exchange = exchange.strip().lower()
    if not is_known_exchange(exchange):
        raise NotFound(f"Unknown exchange {exchange!r}.")
    return exchange


def symbol_param(symbol: str) -> str:
    try:
        return normalize_symbol(symbol)
    except UnknownSymbol:
        raise NotFound(f"Unknown symbol {symbol!r}.") from None


def _listed(request, name: str) -> list[str]:
    values = []
    for raw in request.query_params.getlist(name):
        values.extend(part for part in raw.split(",") if part.strip())
    return values


# --- accounts ---------------------------------------------------------------------------
class AccountSummaryApi(APIView):
    """`GET /accounts/`: balance, equity, available and margin used per exchange, and totals."""

    @extend_schema(operation_id="accounts_summary", parameters=[USER_ID_PARAM], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        user_id, include_user = caller_scope(request)
        accounts = list(selectors.account_list(user_id=user_id))
        data = selectors.accounts_payload(accounts=accounts, include_user=include_user)
        return envelope(data, message="Account summary retrieved")


class AccountDetailApi(APIView):
    """`GET /accounts/{exchange}`: the caller's account on one exchange."""

    @extend_schema(
        operation_id="accounts_exchange", parameters=[EXCHANGE_PARAM, USER_ID_PARAM], responses=OpenApiTypes.OBJECT
    )
    def get(self, request, exchange: str):
        exchange = exchange_param(exchange)
        user_id, include_user = caller_scope(request)
        accounts = list(selectors.account_list(user_id=user_id, exchange=exchange))
        if not accounts:
            raise NotFound(f"No {exchange} account.")
        data = {"exchange": exchange, **selectors.account_entry(accounts, include_user=include_user)}
        return envelope(data, message=f"{exchange} account retrieved")


# --- monitoring -------------------------------------------------------------------------
class MonitorStartApi(APIView):
    """`POST /accounts/monitor/start`: start (or retarget) the periodic sync and the feed."""

    permission_classes = [IsRiskOfficer]

    @extend_schema(
        operation_id="accounts_monitor_start",
        parameters=[
            OpenApiParameter(
                "exchanges", OpenApiTypes.STR, many=True, description="Exchanges (repeat or comma-separate)."
            ),
            OpenApiParameter("symbols", OpenApiTypes.STR, many=True, description="Symbols (repeat or comma-separate)."),
        ],
        request=None,
        responses=OpenApiTypes.OBJECT,
    )
    def post(self, request):
        _, was_running = monitoring_start(
            exchanges=_listed(request, "exchanges"), symbols=_listed(request, "symbols"), started_by_id=request.user.pk
        )
        message = "Monitoring updated" if was_running else "Monitoring started"
        return envelope(selectors.monitoring_status_payload(), message=message)


class MonitorStopApi(APIView):
    """`POST /accounts/monitor/stop`."""

    permission_classes = [IsRiskOfficer]

    @extend_schema(operation_id="accounts_monitor_stop", request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        _, was_running = monitoring_stop()
        message = "Monitoring stopped" if was_running else "Monitoring was not running"
        return envelope(selectors.monitoring_status_payload(), message=message)


class MonitorStatusApi(APIView):
    """`GET /accounts/monitor/status`: running, exchanges, symbols, interval, last sync, last error."""

    @extend_schema(operation_id="accounts_monitor_status", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return envelope(selectors.monitoring_status_payload(), message="Monitoring status retrieved")


# --- positions --------------------------------------------------------------------------
def _positions(request) -> tuple[dict, bool]:
    user_id, include_user = caller_scope(request)
    positions, exchanges = selectors.positions_view(user_id=user_id)
    data = selectors.positions_payload(positions=positions, exchanges=exchanges, include_user=include_user)
    return data, include_user


class PositionSummaryApi(APIView):
    """`GET /positions/`: totals, positions per exchange and per symbol."""

    @extend_schema(operation_id="positions_summary", parameters=[USER_ID_PARAM], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data, _ = _positions(request)
        return envelope(data, message="Position summary retrieved")


class PositionsBySymbolApi(APIView):
    """`GET /positions/by-symbol`."""

    @extend_schema(operation_id="positions_by_symbol", parameters=[USER_ID_PARAM], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data, _ = _positions(request)
        keep = ("total_position_value", "total_unrealized_pnl", "positions_by_symbol")
        return envelope({key: data[key] for key in keep}, message="Positions by symbol retrieved")


class PositionsByExchangeApi(APIView):
    """`GET /positions/by-exchange`."""

    @extend_schema(operation_id="positions_by_exchange", parameters=[USER_ID_PARAM], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data, _ = _positions(request)
        keep = ("total_position_value", "total_unrealized_pnl", "exchanges")
        return envelope({key: data[key] for key in keep}, message="Positions by exchange retrieved")


def _exchange_positions(request, exchange: str, symbol: str | None = None) -> dict:
    user_id, include_user = caller_scope(request)
    if not selectors.account_list(user_id=user_id, exchange=exchange).exists():
        raise NotFound(f"No {exchange} account.")
    positions = list(selectors.position_list(user_id=user_id, exchange=exchange, symbol=symbol))
    data = selectors.positions_payload(positions=positions, exchanges=[exchange], include_user=include_user)
    return data["exchanges"][exchange]


class ExchangePositionsApi(APIView):
    """`GET /positions/{exchange}`."""

    @extend_schema(
        operation_id="positions_exchange", parameters=[EXCHANGE_PARAM, USER_ID_PARAM], responses=OpenApiTypes.OBJECT
    )
    def get(self, request, exchange: str):
        exchange = exchange_param(exchange)
        data = {"exchange": exchange, **_exchange_positions(request, exchange)}
        return envelope(data, message=f"{exchange} positions retrieved")


class SymbolPositionApi(APIView):
    """`GET /positions/{exchange}/{symbol}`: both sides in hedge mode."""

    @extend_schema(
        operation_id="positions_exchange_symbol",
        parameters=[EXCHANGE_PARAM, SYMBOL_PARAM, USER_ID_PARAM],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, exchange: str, symbol: str):
        exchange, symbol = exchange_param(exchange), symbol_param(symbol)
        group = _exchange_positions(request, exchange, symbol)
        if not group["positions"]:
            raise NotFound(f"No open {symbol} position on {exchange}.")
        return envelope(
            {"exchange": exchange, "symbol": symbol, **group}, message=f"{symbol} position on {exchange} retrieved"
        )
