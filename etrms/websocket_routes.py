"""WebSocket URL patterns under /api/v1/ws: the realtime app's consumers (SPEC §7)."""

from django.urls import path

from realtime.consumers import StreamConsumer, channel_consumer

websocket_urlpatterns: list = [
    path("api/v1/ws", StreamConsumer.as_asgi()),
    *(
        path(f"api/v1/ws/{stream}", channel_consumer(stream))
        for stream in ("positions", "accounts", "risk-metrics", "alerts")
    ),
]
