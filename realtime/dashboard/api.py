"""The dashboard's read-only API (JWT, like every /api/v1 endpoint): each user's metrics
against every limit and desk cap that applies, and the circuit breakers' state."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from etrms.api.permissions import user_filter
from etrms.api.responses import bare
from etrms.roles import is_risk_officer
from realtime.dashboard import selectors

USER_ID_PARAM = OpenApiParameter(
    "user_id", OpenApiTypes.UUID, description="Risk officers: only this user (default: the desk)."
)


class ScopeQuery(serializers.Serializer):
    user_id = serializers.UUIDField(required=False)


def _scope(request):
    """The user to show, or None for the whole desk (officers only)."""
    query = ScopeQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    wanted = user_filter(request, query.validated_data.get("user_id"))
    if wanted is None and not is_risk_officer(request.user):
        return request.user.pk
    return wanted


class DashboardRiskApi(APIView):
    throttle_scope = "risk"

    @extend_schema(
        operation_id="dashboard_risk",
        parameters=[USER_ID_PARAM],
        responses=OpenApiTypes.OBJECT,
        description=(
            "Read-only: each user's metrics (SPEC §4) and the utilisation of every enabled limit and desk cap "
            "that applies, with its risk level; no alert is raised and no breaker evaluated. A trader gets "
            f"their own; an officer the desk (the first {selectors.DESK_USERS_MAX} users) or `user_id`."
        ),
    )
    def get(self, request):
        scope = _scope(request)
        user_ids = [scope] if scope is not None else selectors.desk_user_ids()
        return bare(selectors.risk_view(user_ids=user_ids))


class DashboardBreakersApi(APIView):
    throttle_scope = "risk"

    @extend_schema(
        operation_id="dashboard_breakers",
        parameters=[USER_ID_PARAM],
        responses=OpenApiTypes.OBJECT,
        description=(
            "Circuit breakers with their state (armed, latched, disabled), latched trips, last trip and its "
            "action result, and the global dry_run. A trader sees their own trips; an officer the desk's."
        ),
    )
    def get(self, request):
        return bare(selectors.breakers_view(user_id=_scope(request)))
