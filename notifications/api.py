"""Notifications out of the app (SPEC §12, issue 15 item 5): endpoints (webhooks and
e-mail addresses) per user, their test, and the delivery log. Bare objects like the
issue's risk endpoints; lists are `{"<items>": [...], "count": N}`, paged by
`limit`/`offset`. Another user's endpoint is a 404 (officers may read another user's,
not change it: `notifications.selectors`)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.views import APIView

from etrms.api.inputs import StrictSerializer
from etrms.api.pagination import PageQuery, page, query_validate
from etrms.api.permissions import user_filter
from etrms.api.responses import bare
from etrms.api.schema import AutoSchema
from etrms.errors import InvalidInput
from etrms.formatting import iso_utc
from notifications.constants import EVENT_TYPES, DeliveryEvent, DeliveryStatus, EndpointKind
from notifications.models import Delivery, NotificationEndpoint
from notifications.selectors import delivery_list, endpoint_get, endpoint_list
from notifications.services.addresses import WEBHOOK_URL_PATTERN
from notifications.services.endpoints import endpoint_create, endpoint_delete, endpoint_test, endpoint_update
from risk.constants import AlertSeverity

URL_HELP = "http(s) URL of the receiver; private, loopback and link-local addresses are refused."


# --- outputs ------------------------------------------------------------------------------
def endpoint_out(endpoint: NotificationEndpoint) -> dict:
    return {
        "id": str(endpoint.id),
        "user_id": str(endpoint.user_id),
        "name": endpoint.name,
        "kind": endpoint.kind,
        "url": endpoint.url or None,
        "email": endpoint.email or None,
        "event_types": list(endpoint.event_types),
        "min_severity": endpoint.min_severity,
        "desk_wide": endpoint.desk_wide,
        "enabled": endpoint.enabled,
        "created_at": iso_utc(endpoint.created_at),
        "updated_at": iso_utc(endpoint.updated_at),
    }


def delivery_out(delivery: Delivery) -> dict:
    return {
        "id": str(delivery.id),
        "user_id": str(delivery.user_id),
        "endpoint_id": str(delivery.endpoint_id) if delivery.endpoint_id else None,
        "kind": delivery.kind,
        "target": delivery.target,
        "event": delivery.event,
        "alert_id": str(delivery.alert_id) if delivery.alert_id else None,
        "severity": delivery.severity,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error or None,
        "job_id": str(delivery.job_id) if delivery.job_id else None,
        "created_at": iso_utc(delivery.created_at),
        "last_attempt_at": iso_utc(delivery.last_attempt_at),
        "delivered_at": iso_utc(delivery.delivered_at),
    }


class EndpointOutput(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=EndpointKind.choices)
    url = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    min_severity = serializers.ChoiceField(choices=AlertSeverity.choices)
    desk_wide = serializers.BooleanField()
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointCreatedOutput(EndpointOutput):
    secret = serializers.CharField(
        allow_null=True, help_text="The webhook's signing secret: shown here once, never again (null for e-mail)."
    )


class DeliveryOutput(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    endpoint_id = serializers.UUIDField(allow_null=True)
    kind = serializers.ChoiceField(choices=EndpointKind.choices)
    target = serializers.CharField()
    event = serializers.ChoiceField(choices=DeliveryEvent.choices)
    alert_id = serializers.UUIDField(allow_null=True)
    severity = serializers.ChoiceField(choices=AlertSeverity.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    job_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


# --- inputs -------------------------------------------------------------------------------
def _name(**kwargs):
    return serializers.RegexField(
        r"^\S(?:.{0,98}\S)?$", max_length=100, help_text="Unique among your endpoints.", **kwargs
    )


def _url(**kwargs):
    return serializers.RegexField(WEBHOOK_URL_PATTERN, max_length=500, help_text=URL_HELP, **kwargs)


def _event_types():
    return serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        max_length=len(EVENT_TYPES),
        help_text="Alert types, `risk_limit` (every limit alert) or `escalation`; empty or absent: every event.",
    )


class _EndpointSettings(StrictSerializer):
    event_types = _event_types()
    min_severity = serializers.ChoiceField(choices=AlertSeverity.choices, required=False)
    desk_wide = serializers.BooleanField(required=False, help_text="Risk officers: every user's events.")
    enabled = serializers.BooleanField(required=False)


class WebhookCreateInput(_EndpointSettings):
    kind = serializers.ChoiceField(choices=[EndpointKind.WEBHOOK])
    name = _name()
    url = _url()


class EmailCreateInput(_EndpointSettings):
    kind = serializers.ChoiceField(choices=[EndpointKind.EMAIL])
    name = _name()
    email = serializers.EmailField(max_length=254)


class EndpointUpdateInput(_EndpointSettings):
    name = _name(required=False)
    url = _url(required=False)
    email = serializers.EmailField(max_length=254, required=False)


CREATE_INPUTS = {"webhook": WebhookCreateInput, "email": EmailCreateInput}


def _validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class DeliveryQuery(PageQuery):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event = serializers.ChoiceField(choices=DeliveryEvent.choices, required=False)
    endpoint_id = serializers.UUIDField(required=False)


class _RequiredBodySchema(AutoSchema):
    """The create body is a oneOf (a webhook or an e-mail endpoint), which
    drf-spectacular never marks required; it is."""

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body:
            body["required"] = True
        return body


# --- views --------------------------------------------------------------------------------
USER_ID_PARAM = OpenApiParameter("user_id", str, description="Risk officers: another user's (default: your own).")
PAGE_PARAMS = [OpenApiParameter("limit", int), OpenApiParameter("offset", int), USER_ID_PARAM]


class EndpointListApi(APIView):
    schema = _RequiredBodySchema()

    @extend_schema(
        parameters=PAGE_PARAMS,
        responses=inline_serializer(
            "NotificationEndpointList", {"endpoints": EndpointOutput(many=True), "count": serializers.IntegerField()}
        ),
        description="Your notification endpoints, newest first (risk officers: another user's with `user_id`).",
    )
    def get(self, request):
        query = query_validate(PageQuery, request)
        endpoints = endpoint_list(user_id=user_filter(request, query.get("user_id")) or request.user.pk)
        rows = page(endpoints, limit=query["limit"], offset=query["offset"])
        return bare({"endpoints": [endpoint_out(e) for e in rows], "count": endpoints.count()})

    @extend_schema(
        request=PolymorphicProxySerializer(
            "NotificationEndpointCreate",
            serializers=CREATE_INPUTS,
            resource_type_field_name="kind",
        ),
        responses={201: EndpointCreatedOutput},
        description=(
            "A webhook (signed: `X-ETRMS-Signature: sha256=HMAC-SHA256(secret, timestamp.body)`, "
            "`X-ETRMS-Timestamp`) or an e-mail address. The webhook's secret is in this answer only."
        ),
    )
    def post(self, request):
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        if kind not in CREATE_INPUTS:
            raise InvalidInput({"kind": [f"Must be one of {', '.join(EndpointKind.values)}."]})
        data = _validated(CREATE_INPUTS[kind], request.data)
        data.pop("kind")
        endpoint, secret = endpoint_create(user=request.user, kind=kind, data=data)
        return bare({**endpoint_out(endpoint), "secret": secret}, status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    @extend_schema(responses=EndpointOutput, description="One endpoint (never its secret).")
    def get(self, request, endpoint_id):
        return bare(endpoint_out(endpoint_get(viewer=request.user, endpoint_id=endpoint_id)))

    @extend_schema(
        request=EndpointUpdateInput,
        responses=EndpointOutput,
        description="Change your endpoint's settings (its kind and secret never change).",
    )
    def patch(self, request, endpoint_id):
        endpoint = endpoint_get(viewer=request.user, endpoint_id=endpoint_id, write=True)
        data = _validated(EndpointUpdateInput, request.data, partial=True)
        return bare(endpoint_out(endpoint_update(user=request.user, endpoint=endpoint, data=data)))

    @extend_schema(responses={204: None}, description="Delete your endpoint; its deliveries stay in the log.")
    def delete(self, request, endpoint_id):
        endpoint_delete(endpoint=endpoint_get(viewer=request.user, endpoint_id=endpoint_id, write=True))
        return bare(None, status=status.HTTP_204_NO_CONTENT)


class EndpointTestApi(APIView):
    @extend_schema(
        request=None,
        responses={202: DeliveryOutput},
        description="Queue a test delivery to your endpoint; follow it in the delivery log.",
    )
    def post(self, request, endpoint_id):
        endpoint = endpoint_get(viewer=request.user, endpoint_id=endpoint_id, write=True)
        return bare(delivery_out(endpoint_test(endpoint=endpoint)), status=status.HTTP_202_ACCEPTED)


class DeliveryListApi(APIView):
    @extend_schema(
        parameters=[
            *PAGE_PARAMS,
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            OpenApiParameter("event", str, enum=DeliveryEvent.values),
            OpenApiParameter("endpoint_id", OpenApiTypes.UUID),
        ],
        responses=inline_serializer(
            "NotificationDeliveryList", {"deliveries": DeliveryOutput(many=True), "count": serializers.IntegerField()}
        ),
        description="Your deliveries, newest first, with their status (delivered, retrying, dead_lettered...).",
    )
    def get(self, request):
        query = query_validate(DeliveryQuery, request)
        deliveries = delivery_list(
            user_id=user_filter(request, query.get("user_id")) or request.user.pk,
            status=query.get("status"),
            endpoint_id=query.get("endpoint_id"),
            event=query.get("event"),
        )
        rows = page(deliveries, limit=query["limit"], offset=query["offset"])
        return bare({"deliveries": [delivery_out(d) for d in rows], "count": deliveries.count()})
