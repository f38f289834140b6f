"""Cache and WebSocket-management routes (Phase 4), relative to /api/v1/. Fixed paths come
before `cache/<cache_type>`."""

from django.urls import path

from realtime import api, api_ws

urlpatterns = [
    path("cache/health", api.CacheHealthApi.as_view(), name="cache-health"),
    path("cache/stats", api.CacheStatsApi.as_view(), name="cache-stats"),
    path("cache/market-data/<str:symbol>", api.MarketDataApi.as_view(), name="cache-market-data"),
    path("cache/price/<str:symbol>", api.PriceApi.as_view(), name="cache-price"),
    path("cache/price-alert", api.PriceAlertCreateApi.as_view(), name="cache-price-alert"),
    path("cache/price-alerts", api.PriceAlertListApi.as_view(), name="cache-price-alerts"),
    path("cache/price-alerts/<uuid:alert_id>", api.PriceAlertDeleteApi.as_view(), name="cache-price-alert-delete"),
    path("cache/invalidate", api.CacheInvalidateApi.as_view(), name="cache-invalidate"),
    path("cache/<str:cache_type>", api.CacheClearApi.as_view(), name="cache-clear"),
    path("websocket/connections", api_ws.ConnectionListApi.as_view(), name="websocket-connections"),
    path("websocket/connections/<uuid:connection_id>", api_ws.ConnectionDeleteApi.as_view(), name="websocket-close"),
    path("websocket/stats", api_ws.StatsApi.as_view(), name="websocket-stats"),
    path("websocket/broadcast", api_ws.BroadcastApi.as_view(), name="websocket-broadcast"),
]
