"""WebSocket URL patterns of the realtime app under /api/v1/ws (SPEC §7), composed into the ASGI
application by etrms/asgi.py as realtime/urls.py is into ROOT_URLCONF."""

from django.urls import path

from realtime.consumers import StreamConsumer, channel_consumer

websocket_urlpatterns: list = [
    path("api/v1/ws", StreamConsumer.as_asgi()),
    *(
        path(f"api/v1/ws/{stream}", channel_consumer(stream))
        for stream in ("positions", "accounts", "risk-metrics", "alerts")
    ),
]
