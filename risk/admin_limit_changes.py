"""Four-eyes limit changes in the officer's console (issue 15 item 6): the pending
loosenings, approved by a different officer or withdrawn by the requester with an
action; each action calls the same service as the API. Imported by `risk.admin`."""

from django.contrib import admin, messages
from rest_framework.exceptions import APIException

from risk.models import LimitChange
from risk.services.limit_changes import limit_change_approve, limit_change_withdraw


@admin.register(LimitChange)
class LimitChangeAdmin(admin.ModelAdmin):
    list_display = ("requested_at", "kind", "limit_ref", "user", "loosens", "changes", "status", "requested_by")
    list_filter = ("status", "kind")
    list_select_related = ("user", "requested_by")
    readonly_fields = (
        "limit", "limit_ref", "user", "kind", "changes", "previous", "loosens", "status", "requested_by",
        "requested_at", "decided_by", "decided_at",
    )  # fmt: skip
    actions = ["approve", "withdraw"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, service, done: str) -> None:
        count = 0
        for change in queryset:
            try:
                service(actor=request.user, change_id=change.pk)
                count += 1
            except APIException as exc:
                self.message_user(request, f"{change}: {exc.detail}", level=messages.ERROR)
        if count:
            self.message_user(request, f"{count} change(s) {done}.", level=messages.SUCCESS)

    @admin.action(description="Approve selected changes (a different officer)", permissions=["view"])
    def approve(self, request, queryset):
        self._each(request, queryset, limit_change_approve, "approved and applied")

    @admin.action(description="Withdraw selected changes (their requester)", permissions=["view"])
    def withdraw(self, request, queryset):
        self._each(request, queryset, limit_change_withdraw, "withdrawn")
