"""Notifications in the admin: endpoints (read-only here: their secret is created by the
API and shown once) and the delivery log, read-only."""

from django.contrib import admin

from etrms.admin_tools import ReadOnlyAdminMixin
from notifications.models import AlertEscalation, Delivery, NotificationEndpoint


@admin.register(NotificationEndpoint)
class NotificationEndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "user", "kind", "target", "min_severity", "desk_wide", "enabled", "created_at"]
    list_filter = ["kind", "enabled", "desk_wide", "min_severity"]
    search_fields = ["name", "url", "email", "user__username"]
    list_select_related = ["user"]
    exclude = ["secret_encrypted"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "event",
        "user",
        "kind",
        "target",
        "severity",
        "status",
        "attempts",
        "last_status_code",
    ]
    list_filter = ["status", "event", "kind", "severity"]
    search_fields = ["id", "target", "alert_id", "job_id", "user__username", "last_error"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"


@admin.register(AlertEscalation)
class AlertEscalationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["alert", "escalated_at", "deliveries"]
    list_select_related = ["alert"]
