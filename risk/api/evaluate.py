"""`POST /risk/evaluate` (Phase 4, and ETRMS's manual breaker evaluation): the same
evaluation as the event-driven path; it raises and resolves alerts and trips breakers,
latched, so calling it twice acts once."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from accounts.fields import ExchangeIdField
from etrms.api.inputs import StrictSerializer, SymbolField
from etrms.api.permissions import user_filter
from etrms.api.responses import bare
from risk.api.common import RiskApi
from risk.api.outputs import evaluation_out
from risk.services.evaluation import evaluation_run
from risk.validators import exchange_normalize, symbol_normalize


class EvaluateInput(StrictSerializer):
    symbol = SymbolField(required=False, allow_null=True, max_length=32)
    exchange = ExchangeIdField(required=False, allow_null=True, max_length=32)
    user_id = serializers.UUIDField(required=False, allow_null=True, help_text="Risk officers: evaluate this user.")

    def validate_symbol(self, value):
        return None if value in (None, "") else symbol_normalize(value, field=None)

    def validate_exchange(self, value):
        return None if value in (None, "") else exchange_normalize(value, field=None)


class MetricsOutput(serializers.Serializer):
    position_size = serializers.CharField(help_text="Decimal string: the requested symbol's, else the largest.")
    daily_pnl = serializers.CharField()
    total_exposure = serializers.CharField()
    margin_ratio = serializers.CharField(
        help_text='Decimal string; "0.00" when no account reports margin, "Infinity" when equity <= 0 owes margin.'
    )
    leverage = serializers.CharField(allow_null=True, help_text="Decimal string; null when equity <= 0 (critical).")
    drawdown = serializers.CharField()
    daily_loss = serializers.CharField()


class EvaluateOutput(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()
    risk_level = serializers.ChoiceField(choices=["low", "moderate", "high", "critical"])
    metrics = MetricsOutput()
    violations = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(child=serializers.DictField())
    circuit_breakers = serializers.ListField(child=serializers.DictField())


class EvaluateApi(RiskApi):
    @extend_schema(
        request=EvaluateInput,
        responses={200: EvaluateOutput},
        description=(
            "Evaluate the caller's limits, the desk caps that apply to them and the circuit breakers on their "
            "positions. `symbol` / `exchange` narrow the report (position_size metric, violations, breaker "
            "entries), never what is evaluated."
        ),
    )
    def post(self, request):
        values = {}
        if request.data:  # an empty body has nothing to validate (the serializer would answer {})
            data = EvaluateInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
        user_id = user_filter(request, values.get("user_id")) or request.user.pk
        result = evaluation_run(user_id=user_id, symbol=values.get("symbol"), exchange=values.get("exchange"))
        return bare(evaluation_out(result))
