"""Phase 4 risk alerts: `GET /risk/alerts`, `POST /risk/alerts/{id}/acknowledge` and
`POST /risk/alerts/{id}/resolve`. Bare objects."""

from drf_spectacular.utils import OpenApiParameter, extend_schema

from etrms.api.pagination import PageQuery, page, query_filter, query_validate
from etrms.api.permissions import user_filter
from etrms.api.responses import bare
from risk.api.common import RiskApi
from risk.api.outputs import ALERT_FIELDS, alert_out
from risk.constants import AlertSeverity, AlertStatus
from risk.filters import ALERT_TYPE_PATTERN, AlertFilter
from risk.selectors import alert_get, alert_list
from risk.services.alerts import alert_acknowledge, alert_resolve


class AlertListQuery(PageQuery):
    default_limit = 50


class AlertListApi(RiskApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=AlertStatus.values),
            OpenApiParameter("severity", str, enum=AlertSeverity.values),
            OpenApiParameter("alert_type", str, pattern=ALERT_TYPE_PATTERN),
            OpenApiParameter("user_id", str, description="Risk officers: one user's alerts."),
            OpenApiParameter("limit", int, description="Default 50, at most 1000."),
            OpenApiParameter("offset", int),
        ],
        description="The caller's risk alerts (a risk officer: everyone's), newest first.",
    )
    def get(self, request):
        query = query_validate(AlertListQuery, request)
        queryset = alert_list(viewer=request.user, user_id=user_filter(request, query.get("user_id")))
        queryset = query_filter(AlertFilter, queryset, request)
        rows = page(queryset.values(*ALERT_FIELDS), limit=query["limit"], offset=query["offset"])
        return bare({"alerts": [alert_out(row) for row in rows], "count": queryset.count()})


class AlertAcknowledgeApi(RiskApi):
    @extend_schema(request=None, description="triggered -> acknowledged; a resolved alert is a 409.")
    def post(self, request, alert_id):
        alert = alert_get(viewer=request.user, alert_id=alert_id)
        return bare(alert_out(alert_acknowledge(actor=request.user, alert=alert)))


class AlertResolveApi(RiskApi):
    @extend_schema(request=None, description="Resolve the alert (by hand).")
    def post(self, request, alert_id):
        alert = alert_get(viewer=request.user, alert_id=alert_id)
        return bare(alert_out(alert_resolve(actor=request.user, alert=alert)))
