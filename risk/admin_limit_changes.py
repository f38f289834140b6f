"""Four-eyes limit changes in the officer's console (issue 15 item 6): the pending
loosenings, approved by a different officer or withdrawn by the requester with an
action; each action calls the same service as the API. Imported by `risk.admin`."""

from django.contrib import admin

from etrms.admin_tools import ReadOnlyAdminMixin, filterset_list_filter, run_each
from risk.filters import LimitChangeFilter
from risk.models import LimitChange
from risk.services.limit_changes import limit_change_approve, limit_change_withdraw


@admin.register(LimitChange)
class LimitChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("requested_at", "kind", "limit_ref", "user", "loosens", "changes", "status", "requested_by")
    list_filter = (filterset_list_filter(LimitChangeFilter, "status"), "kind")
    list_select_related = ("user", "requested_by")
    readonly_fields = (
        "limit", "limit_ref", "user", "kind", "changes", "previous", "loosens", "status", "requested_by",
        "requested_at", "decided_by", "decided_at",
    )  # fmt: skip
    actions = ["approve", "withdraw"]

    @admin.action(description="Approve selected changes (a different officer)", permissions=["view"])
    def approve(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda change: limit_change_approve(actor=request.user, change_id=change.pk),
            done="change(s) approved and applied",
        )

    @admin.action(description="Withdraw selected changes (their requester)", permissions=["view"])
    def withdraw(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda change: limit_change_withdraw(actor=request.user, change_id=change.pk),
            done="change(s) withdrawn",
        )
