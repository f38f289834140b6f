"""The console's alerts: a read-only list the officer acknowledges or resolves.
Imported by `risk.admin`."""

from django.contrib import admin

from etrms.admin_tools import (
    NoAddOrDeleteAdminMixin,
    filterset_list_filter,
    run_each,
)
from risk.constants import AlertStatus
from risk.filters import AlertFilter
from risk.models import RiskAlert
from risk.services.alerts import alert_acknowledge, alert_resolve


@admin.register(RiskAlert)
class RiskAlertAdmin(NoAddOrDeleteAdminMixin, admin.ModelAdmin):
    list_display = ("triggered_at", "user", "alert_type", "severity", "status", "short_message", "symbol")
    list_filter = (
        filterset_list_filter(AlertFilter, "status"),
        filterset_list_filter(AlertFilter, "severity"),
        "alert_type",
    )
    search_fields = ("user__username", "alert_type", "message")
    list_select_related = ("user",)
    date_hierarchy = "triggered_at"
    actions = ("acknowledge_alerts", "resolve_alerts")
    readonly_fields = (
        "id",
        "user",
        "alert_type",
        "severity",
        "message",
        "triggered_at",
        "status",
        "metadata",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "limit",
        "dedup_key",
    )
    fields = readonly_fields

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message if len(obj.message) <= 80 else obj.message[:77] + "..."

    @admin.display(description="symbol")
    def symbol(self, obj):
        return (obj.metadata or {}).get("symbol") or ""

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge_alerts(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(status=AlertStatus.TRIGGERED),
            lambda alert: alert_acknowledge(actor=request.user, alert=alert),
            done="alert(s) acknowledged",
        )

    @admin.action(description="Resolve selected alerts")
    def resolve_alerts(self, request, queryset):
        run_each(
            self,
            request,
            queryset.exclude(status=AlertStatus.RESOLVED),
            lambda alert: alert_resolve(actor=request.user, alert=alert),
            done="alert(s) resolved",
        )
