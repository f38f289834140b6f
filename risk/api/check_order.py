"""`POST /api/v1/risk/check-order` (SPEC §12, issue 15): may this order be sent?

`{exchange, symbol, side, quantity, price?, reduce_only?}` -> `{allowed, reasons,
breaches}`, a bare object like Phase 4's risk endpoints, decimals as strings. Its own
rate-limit scope (`check_order`, RATE_LIMIT_CHECK_ORDER, default 6000/min): bots call
it before every order.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.fields import ExchangeIdField
from etrms.api.inputs import PositiveDecimalField, StrictSerializer, SymbolField
from etrms.api.responses import bare
from risk.services.check_order import order_check
from risk.services.check_order_rules import OrderRequest
from risk.validators import exchange_normalize, symbol_normalize

POSITIVE = {"max_digits": 32, "decimal_places": 12}


class CheckOrderInput(StrictSerializer):
    exchange = ExchangeIdField(max_length=32)
    symbol = SymbolField(max_length=32)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = PositiveDecimalField(**POSITIVE)
    price = PositiveDecimalField(
        **POSITIVE, required=False, allow_null=True, positive_message="Must be positive (omit it to use the mark)."
    )
    reduce_only = serializers.BooleanField(required=False, default=False)

    def validate_exchange(self, value):
        return exchange_normalize(value, field=None)

    def validate_symbol(self, value):
        return symbol_normalize(value, field=None)


class BreachOutput(serializers.Serializer):
    limit_id = serializers.UUIDField(allow_null=True)
    source = serializers.ChoiceField(choices=["limit", "config"])
    limit_type = serializers.CharField()
    current_value = serializers.CharField(allow_null=True)
    after_value = serializers.CharField(allow_null=True)
    threshold = serializers.CharField()


class CheckOrderOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    breaches = BreachOutput(many=True)


class CheckOrderApi(APIView):
    throttle_scope = "check_order"

    @extend_schema(
        request=CheckOrderInput,
        responses={200: CheckOrderOutput},
        description=(
            "Pre-trade check of one order against the caller's limits after the order (resting orders on the "
            "symbol counted), the desk caps, the per-order notional cap, the order rate, the trading state and "
            "trading_enabled. A user without an account on the exchange gets a 404."
        ),
    )
    def post(self, request):
        data = CheckOrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = order_check(user_id=request.user.pk, order=OrderRequest(**data.validated_data))
        return bare(result.as_dict())
