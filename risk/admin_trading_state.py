"""The officer's console for issue 15 (SPEC §12): trading states, each change audited.

Saves call the same service as `PUT /api/v1/risk/trading-state`. Imported by
`risk.admin`.
"""

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from etrms.admin_tools import SERVICE_ERRORS, error_text
from risk.admin_history import HistoryAdmin
from risk.models import TradingState
from risk.services.trading_state import trading_state_set


@admin.register(TradingState)
class TradingStateAdmin(SimpleHistoryAdmin):
    list_display = ("level", "exchange", "user", "state", "reason", "source", "set_by", "set_at")
    list_filter = ("level", "state")
    search_fields = ("exchange", "user__username", "reason")
    list_select_related = ("user", "set_by")
    fields = ("level", "exchange", "user", "state", "reason", "source", "set_by", "set_at")
    readonly_fields = ("source", "set_by", "set_at")
    history_list_display = ("state", "reason", "source")

    def get_readonly_fields(self, request, obj=None):
        # The scope of an existing level does not change; only its state and reason.
        if obj is not None:
            return (*self.readonly_fields, "level", "exchange", "user")
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # back to active is a state change with a reason, not a deletion

    def save_model(self, request, obj, form, change):
        try:
            saved = trading_state_set(
                actor=request.user,
                level=obj.level,
                state=obj.state,
                reason=obj.reason,
                exchange=obj.exchange or None,
                user_id=obj.user_id,
            )
        except SERVICE_ERRORS as exc:
            self.message_user(request, f"Not saved: {error_text(exc)}", level=messages.ERROR)
            return
        obj.pk, obj.set_by_id, obj.set_at, obj.source = saved.pk, saved.set_by_id, saved.set_at, saved.source
        obj._state.adding = False


admin.site.register(TradingState.history.model, HistoryAdmin)
