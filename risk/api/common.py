"""What every risk and config view shares: throttle scopes, paging and the `user_id`
rule for lists (an officer may filter by anyone; a trader only by themselves)."""

from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.views import APIView

from accounts.roles import is_risk_officer
from etrms.api.pagination import MAX_LIMIT, MAX_OFFSET
from etrms.api.permissions import ReadAnyWriteRiskOfficer


class RiskApi(APIView):
    """Phase 4 risk endpoints and `/risk/circuit-breakers*`: the `risk` rate limit."""

    throttle_scope = "risk"


class ConfigApi(APIView):
    """`/config/*`: the `config` rate limit; traders read, risk officers write."""

    throttle_scope = "config"
    permission_classes = [ReadAnyWriteRiskOfficer]


class PageQuery(serializers.Serializer):
    """`limit` (1.., capped at MAX_LIMIT) and `offset` (0.., capped at MAX_OFFSET)."""

    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)
    user_id = serializers.UUIDField(required=False)

    default_limit = MAX_LIMIT


def query_validate(serializer_class, request) -> dict:
    """Validate query parameters (each given once); errors are 400s. Without any of
    them, the defaults (no serializer is built: lists are the hot reads)."""
    raw = {}
    for key in serializer_class._declared_fields:
        values = request.query_params.getlist(key)
        if len(values) > 1:
            raise ValidationError({key: ["Give this parameter once."]})
        if values:
            raw[key] = values[0]
    if raw:
        serializer = serializer_class(data=raw)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
    else:
        data = {"offset": 0}
    data["limit"] = min(data.get("limit") or serializer_class.default_limit, MAX_LIMIT)
    data["offset"] = min(data["offset"], MAX_OFFSET)
    return data


def user_filter(request, requested):
    """The `?user_id=` filter: officers any user, traders only themselves (else 404)."""
    if requested is None:
        return None
    if not is_risk_officer(request.user) and str(requested) != str(request.user.pk):
        raise NotFound("User not found.")
    return requested
