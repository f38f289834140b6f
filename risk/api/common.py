"""What every risk and config view shares: the throttle scopes, and the document of a
scoped body."""

from rest_framework.views import APIView

from etrms.api.permissions import ReadAnyWriteRiskOfficer
from etrms.api.schema import string_in


class RiskApi(APIView):
    """Phase 4 risk endpoints and `/risk/circuit-breakers*`: the `risk` rate limit."""

    throttle_scope = "risk"


class ConfigApi(APIView):
    """`/config/*`: the `config` rate limit; traders read, risk officers write."""

    throttle_scope = "config"
    permission_classes = [ReadAnyWriteRiskOfficer]


def scope_rules(field: str) -> dict:
    """The OpenAPI rule of a `{<field>: desk|exchange|user, exchange?, user_id?}` body, as
    risk.services.trading_state checks it: the desk takes neither, the exchange level
    its exchange only, the user level its user_id only."""
    return {
        "oneOf": [
            {
                "properties": {field: string_in("desk")},
                "not": {"anyOf": [{"required": ["exchange"]}, {"required": ["user_id"]}]},
            },
            {
                "properties": {field: string_in("exchange"), "exchange": {"type": "string"}},
                "required": ["exchange"],
                "not": {"required": ["user_id"]},
            },
            {
                "properties": {field: string_in("user"), "user_id": {"type": "string"}},
                "required": ["user_id"],
                "not": {"required": ["exchange"]},
            },
        ]
    }
