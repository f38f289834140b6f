"""Phase 4's WebSocket management endpoints (bare objects, SPEC §3, §7), read from and
acting through the Redis registry (`realtime.ws.registry`), so they are right whatever
process serves them and whichever daphne process holds a socket."""

from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from etrms.api.permissions import IsRiskOfficer, user_filter
from etrms.api.responses import bare
from etrms.roles import is_risk_officer
from realtime.streams import iso_z
from realtime.ws import registry
from realtime.ws.protocol import CHANNELS


class ConnectionOutput(serializers.Serializer):
    connection_id = serializers.UUIDField()
    client_id = serializers.CharField()
    user_id = serializers.UUIDField(required=False, help_text="Risk officers only.")
    connected_at = serializers.CharField()
    subscriptions = serializers.ListField(child=serializers.CharField())


class ConnectionListOutput(serializers.Serializer):
    connections = ConnectionOutput(many=True)


class ConnectionListApi(APIView):
    """`GET /websocket/connections`: a risk officer sees all (with `user_id`, `?user_id=`
    to narrow), a trader their own."""

    @extend_schema(
        operation_id="websocket_connections",
        parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, description="Risk officers: one user's.")],
        responses=ConnectionListOutput,
    )
    def get(self, request):
        officer = is_risk_officer(request.user)
        requested = user_filter(request, request.query_params.get("user_id"))
        user_id = requested if officer else request.user.pk
        keep = ("connection_id", "client_id", "user_id", "connected_at", "subscriptions")
        if not officer:
            keep = keep[:2] + keep[3:]
        items = [{key: record[key] for key in keep} for record in registry.connections_list(user_id=user_id)]
        return bare({"connections": items})


class StatsApi(APIView):
    """`GET /websocket/stats`: connections, subscriptions per channel, messages in and out,
    totals and per daphne process."""

    @extend_schema(operation_id="websocket_stats", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return bare(registry.stats_get())


class BroadcastInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=CHANNELS)
    message = serializers.JSONField()
    symbols = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=1000)


class BroadcastApi(APIView):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        operation_id="websocket_broadcast",
        request=BroadcastInput,
        responses=inline_serializer("WebsocketBroadcast", {"delivered": serializers.IntegerField()}),
        description=(
            "Risk officers. Subscribers of `channel` (of `symbols`, for ticker and trades) receive "
            '`{"channel", "type": "broadcast", "from", "message", "timestamp"}`; `delivered` counts the sockets '
            "that took it, on every daphne process."
        ),
    )
    def post(self, request):
        data = BroadcastInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        symbols = [symbol.strip().upper() for symbol in values.get("symbols") or []]
        delivered = registry.broadcast_send(
            channel=values["channel"],
            message=values["message"],
            symbols=symbols or None,
            sender=request.user.username,
            timestamp=iso_z(datetime.now(UTC)),
        )
        return bare({"delivered": delivered})


class ConnectionDeleteApi(APIView):
    permission_classes = [IsRiskOfficer]

    @extend_schema(operation_id="websocket_connection_close", responses={204: None})
    def delete(self, request, connection_id):
        if not registry.connection_close(connection_id=str(connection_id)):
            raise NotFound("WebSocket connection not found.")
        return bare(None, status=status.HTTP_204_NO_CONTENT)
