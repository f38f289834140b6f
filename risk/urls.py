"""Risk and configuration routes, relative to /api/v1/."""

from django.urls import path

from risk.api import alerts, breakers, config, evaluate, limits
from risk.api import check_order as check_order_api  # issue 15
from risk.api import kill_switch as kill_switch_api  # issue 15
from risk.api import limit_changes as limit_changes_api  # issue 15
from risk.api import trading_state as trading_state_api  # issue 15

urlpatterns = [
    # Phase 4
    path("risk/limits", limits.LimitListCreateApi.as_view(), name="risk-limits"),
    path("risk/limits/<uuid:limit_id>", limits.LimitDetailApi.as_view(), name="risk-limit"),
    path("risk/evaluate", evaluate.EvaluateApi.as_view(), name="risk-evaluate"),
    path("risk/alerts", alerts.AlertListApi.as_view(), name="risk-alerts"),
    path("risk/alerts/<uuid:alert_id>/acknowledge", alerts.AlertAcknowledgeApi.as_view(), name="risk-alert-ack"),
    path("risk/alerts/<uuid:alert_id>/resolve", alerts.AlertResolveApi.as_view(), name="risk-alert-resolve"),
    # Beyond the seeds (issue 15)
    path("risk/trading-state", trading_state_api.TradingStateApi.as_view(), name="risk-trading-state"),
    path("risk/check-order", check_order_api.CheckOrderApi.as_view(), name="risk-check-order"),
    path("risk/limit-changes", limit_changes_api.LimitChangeListApi.as_view(), name="risk-limit-changes"),
    path(
        "risk/limit-changes/<uuid:change_id>/approve",
        limit_changes_api.LimitChangeApproveApi.as_view(),
        name="risk-limit-change-approve",
    ),
    path(
        "risk/limit-changes/<uuid:change_id>/withdraw",
        limit_changes_api.LimitChangeWithdrawApi.as_view(),
        name="risk-limit-change-withdraw",
    ),
    path("risk/kill-switch", kill_switch_api.KillSwitchApi.as_view(), name="risk-kill-switch"),
    path("risk/kill-switch/<uuid:kill_id>", kill_switch_api.KillSwitchDetailApi.as_view(), name="risk-kill-switch-one"),
    # ETRMS
    path("risk/circuit-breakers", breakers.RiskBreakerListApi.as_view(), name="risk-breakers"),
    path("risk/circuit-breakers/<str:name>", breakers.RiskBreakerDetailApi.as_view(), name="risk-breaker"),
    path(
        "risk/circuit-breakers/<str:name>/enable", breakers.RiskBreakerEnableApi.as_view(), name="risk-breaker-enable"
    ),
    path(
        "risk/circuit-breakers/<str:name>/disable",
        breakers.RiskBreakerDisableApi.as_view(),
        name="risk-breaker-disable",
    ),
    path("config", config.ConfigAllApi.as_view(), name="config"),
    path("config/", config.ConfigAllApi.as_view(), name="config-slash"),
    path("config/global", config.GlobalConfigApi.as_view(), name="config-global"),
    path("config/symbols", config.SymbolConfigListApi.as_view(), name="config-symbols"),
    path("config/symbols/<str:symbol>", config.SymbolConfigApi.as_view(), name="config-symbol"),
    path("config/exchanges", config.ExchangeConfigListApi.as_view(), name="config-exchanges"),
    path("config/exchanges/<str:exchange>", config.ExchangeConfigApi.as_view(), name="config-exchange"),
    path("config/circuit-breakers", breakers.ConfigBreakerListApi.as_view(), name="config-breakers"),
    path("config/circuit-breakers/<str:name>", breakers.ConfigBreakerDetailApi.as_view(), name="config-breaker"),
    path("config/save", config.ConfigSaveApi.as_view(), name="config-save"),
    path("config/reset", config.ConfigResetApi.as_view(), name="config-reset"),
]
