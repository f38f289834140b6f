from django.urls import path

from accounts import api

urlpatterns = [
    path("accounts/", api.AccountSummaryApi.as_view(), name="account-summary"),
    path("accounts/monitor/start", api.MonitorStartApi.as_view(), name="monitor-start"),
    path("accounts/monitor/stop", api.MonitorStopApi.as_view(), name="monitor-stop"),
    path("accounts/monitor/status", api.MonitorStatusApi.as_view(), name="monitor-status"),
    path("accounts/<str:exchange>", api.AccountDetailApi.as_view(), name="account-detail"),
    path("positions/", api.PositionSummaryApi.as_view(), name="position-summary"),
    path("positions/by-symbol", api.PositionsBySymbolApi.as_view(), name="positions-by-symbol"),
    path("positions/by-exchange", api.PositionsByExchangeApi.as_view(), name="positions-by-exchange"),
    path("positions/<str:exchange>", api.ExchangePositionsApi.as_view(), name="positions-exchange"),
    path("positions/<str:exchange>/<str:symbol>", api.SymbolPositionApi.as_view(), name="position-detail"),
]
