"""WebSocket URL patterns under /api/v1/ws; the realtime app adds its consumers here."""

websocket_urlpatterns: list = []
