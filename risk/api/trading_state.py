"""`GET/PUT /api/v1/risk/trading-state` (SPEC §12, issue 15): bare objects like
Phase 4's risk endpoints.

GET: the caller's effective state and each level that applies (an officer may pass
`?user_id=`; `?exchange=` adds that exchange's level to the effective state). PUT: a
risk officer sets one level, with a reason.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from accounts.fields import ExchangeIdField
from accounts.selectors import account_exchanges
from etrms.api.inputs import StrictSerializer
from etrms.api.permissions import ReadAnyWriteRiskOfficer, user_filter
from etrms.api.responses import bare
from etrms.formatting import iso_utc
from etrms.roles import is_risk_officer
from risk.api.common import RiskApi, scope_rules
from risk.models import TradingLevel, TradingState, TradingStateValue
from risk.services.trading_state import effective_of, trading_state_set, trading_states_load
from risk.validators import exchange_normalize


def level_out(row: TradingState) -> dict:
    return {
        "level": row.level,
        "exchange": row.exchange or None,
        "user_id": str(row.user_id) if row.user_id else None,
        "state": row.state,
        "reason": row.reason,
        "source": row.source,
        "set_by": str(row.set_by_id) if row.set_by_id else None,
        "set_at": iso_utc(row.set_at),
    }


def trading_state_out(*, user_id, exchange: str | None) -> dict:
    """What applies to `user_id`: the effective state (desk, user and `exchange`), each
    level set, and the effective state on each exchange the user trades or that has a
    level of its own."""
    rows = trading_states_load(user_id=user_id, all_exchanges=True)
    effective = effective_of(rows, exchange=exchange)
    exchanges = account_exchanges(user_id=user_id)
    exchanges |= {row.exchange for row in rows if row.level == TradingLevel.EXCHANGE}
    return {
        "user_id": str(user_id),
        "exchange": exchange,
        "state": effective.state,
        "decided_by": effective.level,
        "reason": effective.reason or None,
        "levels": [level_out(row) for row in rows if row.level != TradingLevel.EXCHANGE or row.exchange in exchanges],
        "exchanges": {name: effective_of(rows, exchange=name).state for name in sorted(exchanges)},
    }


class TradingStateQuery(serializers.Serializer):
    user_id = serializers.UUIDField(required=False, allow_null=True)
    exchange = ExchangeIdField(required=False, allow_null=True, max_length=32)

    def validate_exchange(self, value):
        return None if value in (None, "") else exchange_normalize(value, field=None)


class TradingStateInput(StrictSerializer):
    level = serializers.ChoiceField(choices=TradingLevel.choices)
    exchange = ExchangeIdField(required=False, allow_null=True, max_length=32)
    user_id = serializers.UUIDField(required=False, allow_null=True)
    state = serializers.ChoiceField(choices=TradingStateValue.choices)
    reason = serializers.CharField(max_length=2000)

    document_rules = scope_rules("level")


class TradingStateApi(RiskApi):
    permission_classes = [ReadAnyWriteRiskOfficer]

    @extend_schema(
        parameters=[OpenApiParameter("user_id", str), OpenApiParameter("exchange", str)],
        description="The effective trading state of the caller (officers: `user_id`) and each level.",
    )
    def get(self, request):
        query = TradingStateQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = user_filter(request, query.validated_data.get("user_id")) or request.user.pk
        return bare(trading_state_out(user_id=user_id, exchange=query.validated_data.get("exchange")))

    @extend_schema(request=TradingStateInput, description="Set one level's trading state (risk officers).")
    def put(self, request):
        data = TradingStateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        row = trading_state_set(
            actor=request.user,
            level=values["level"],
            state=values["state"],
            reason=values["reason"],
            exchange=values.get("exchange"),
            user_id=values.get("user_id"),
        )
        out = level_out(row)
        if row.user_id is not None and is_risk_officer(request.user):
            out["effective"] = trading_state_out(user_id=row.user_id, exchange=None)["state"]
        return bare(out)
