"""What every risk and config view shares: the throttle scopes."""

from rest_framework.views import APIView

from etrms.api.permissions import ReadAnyWriteRiskOfficer


class RiskApi(APIView):
    """Phase 4 risk endpoints and `/risk/circuit-breakers*`: the `risk` rate limit."""

    throttle_scope = "risk"


class ConfigApi(APIView):
    """`/config/*`: the `config` rate limit; traders read, risk officers write."""

    throttle_scope = "config"
    permission_classes = [ReadAnyWriteRiskOfficer]
