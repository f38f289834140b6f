"""The change history of every audited risk model: a read-only list of who changed what,
when, old -> new. Imported by `risk.admin`."""

from django.contrib import admin
from django.utils.html import format_html

from etrms.admin_tools import ReadOnlyAdminMixin
from risk.models import (
    CircuitBreaker,
    ExchangeConfig,
    GlobalConfig,
    RiskLimit,
    SymbolConfig,
)


class HistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only list of one audited model's changes: who, when, what, old -> new."""

    list_display = ("history_date", "history_user", "history_type", "object_name", "changes")
    list_filter = ("history_type", "history_date")
    search_fields = ("history_user__username",)
    list_select_related = ("history_user",)
    date_hierarchy = "history_date"

    @admin.display(description="object")
    def object_name(self, obj):
        return str(obj.instance)

    @admin.display(description="changes (old -> new)")
    def changes(self, obj):
        previous = obj.prev_record
        if obj.history_type == "+":
            return "created"
        if obj.history_type == "-":
            return "deleted"
        if previous is None:
            return ""
        delta = obj.diff_against(previous)
        return format_html(
            "<br>".join(["{}: {} \u2192 {}"] * len(delta.changes)),
            *[value for change in delta.changes for value in (change.field, change.old, change.new)],
        )


for audited in (RiskLimit, CircuitBreaker, GlobalConfig, SymbolConfig, ExchangeConfig):
    admin.site.register(audited.history.model, HistoryAdmin)
