"""Admin: price alerts (SPEC §10). Officers create, filter and cancel them; every write
goes through the price-alert services, so the feed's indexes hear of it."""

from django.contrib import admin, messages

from etrms.admin_tools import SERVICE_ERRORS, error_text, filterset_list_filter
from realtime.filters import PriceAlertFilter
from realtime.models import PriceAlert, PriceAlertStatus
from realtime.services.price_alerts import price_alert_cancel, price_alert_create


@admin.register(PriceAlert)
class PriceAlertAdmin(admin.ModelAdmin):
    list_display = ("symbol", "exchange", "condition", "target_price", "status", "user", "created_at", "triggered_at")
    list_filter = (filterset_list_filter(PriceAlertFilter, "status"), "condition", "exchange")
    search_fields = ("symbol", "user__username")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    actions = ["cancel_alerts"]
    fields = (
        "user",
        "symbol",
        "exchange",
        "condition",
        "target_price",
        "status",
        "created_at",
        "triggered_at",
        "triggered_price",
        "cancelled_at",
    )

    def get_readonly_fields(self, request, obj=None):
        done = ("status", "created_at", "triggered_at", "triggered_price", "cancelled_at")
        if obj is None:
            return done
        return ("user", "symbol", "exchange", "condition", "target_price", *done)

    def has_change_permission(self, request, obj=None):
        # Existing alerts are read-only (cancel them with the action); the form shows them.
        return super().has_change_permission(request, obj) and obj is None

    def has_delete_permission(self, request, obj=None):
        return False  # alerts are cancelled, not deleted: their history stays

    def save_model(self, request, obj, form, change):
        try:
            created = price_alert_create(
                user_id=obj.user_id,
                symbol=obj.symbol,
                condition=obj.condition,
                target_price=obj.target_price,
                exchange=obj.exchange or None,
            )
        except SERVICE_ERRORS as exc:
            self.message_user(request, f"Price alert not created: {error_text(exc)}", level=messages.ERROR)
            return
        obj.pk, obj.symbol, obj.exchange = created.pk, created.symbol, created.exchange

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None or not PriceAlert.objects.filter(pk=obj.pk).exists():
            return self.response_post_save_add(request, obj)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Cancel the selected active price alerts")
    def cancel_alerts(self, request, queryset):
        count = 0
        for alert in queryset.filter(status=PriceAlertStatus.ACTIVE):
            price_alert_cancel(alert=alert)
            count += 1
        self.message_user(request, f"{count} price alert(s) cancelled.", level=messages.SUCCESS)
