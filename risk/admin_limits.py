"""The console's limits (SPEC §10): list, edit through the four-eyes services, enable,
disable, evaluate the owners now, reset drawdown tracking. Imported by `risk.admin`."""

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from etrms.admin_tools import (
    ServiceAdminMixin,
    enable_actions,
    filterset_list_filter,
    run_each,
)
from risk.admin_ladder import ladder_state
from risk.filters import LimitFilter
from risk.models import (
    LimitChange,
    RiskLimit,
)
from risk.services.evaluation import evaluation_run
from risk.services.limit_changes import FOUR_EYES_HELD, limit_delete_or_request, limit_update_or_request
from risk.services.limits import UPDATABLE_FIELDS, limit_create, limit_drawdown_reset, limit_update


@admin.register(RiskLimit)
class RiskLimitAdmin(ServiceAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "user",
        "limit_type",
        "symbol_or_all",
        "threshold_value",
        "warning_value",
        "enabled",
        "officer_set",
        "updated_at",
    )
    list_display_links = ("user", "limit_type")
    list_editable = ("threshold_value", "warning_value", "enabled")
    list_filter = (filterset_list_filter(LimitFilter, "limit_type"), "enabled", "symbol")
    search_fields = ("user__username", "symbol", "limit_type")
    list_select_related = ("user", "set_by")
    fields = (
        "user",
        "symbol",
        "limit_type",
        "threshold_value",
        "warning_value",
        "enabled",
        "ladder",
        "ladder_steps",
        "set_by",
        "reset_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("ladder_steps", "set_by", "reset_at", "created_at", "updated_at")
    actions = ("enable_limits", "disable_limits", "evaluate_now", "reset_drawdown_tracking")
    history_list_display = ("threshold_value", "warning_value", "enabled")

    @admin.display(description="symbol", ordering="symbol")
    def symbol_or_all(self, obj):
        return obj.symbol or "(each symbol)"

    @admin.display(boolean=True, description="officer-set")
    def officer_set(self, obj):
        return obj.officer_set

    @admin.display(description="ladder steps now")
    def ladder_steps(self, obj):
        return ladder_state(obj)

    def get_readonly_fields(self, request, obj=None):
        # The owner of an existing limit does not change.
        return (*self.readonly_fields, "user") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            original = RiskLimit.objects.get(pk=obj.pk)
            changes = self._changes(form, UPDATABLE_FIELDS)
            saved = limit_update_or_request(actor=request.user, limit=original, changes=changes)
            if isinstance(saved, LimitChange):  # issue 15: four eyes held a loosening back
                self.message_user(request, f"{FOUR_EYES_HELD} (change {saved.pk}).", level=messages.WARNING)
                saved = original
        else:
            saved = limit_create(
                actor=request.user,
                user_id=obj.user_id,
                symbol=obj.symbol,
                limit_type=obj.limit_type,
                threshold_value=obj.threshold_value,
                warning_value=obj.warning_value,
                enabled=obj.enabled,
                ladder=obj.ladder,
            )
        for name in ("pk", "set_by_id", "created_at", "updated_at"):
            setattr(obj, name, getattr(saved, name))
        obj._state.adding = False

    def delete_model(self, request, obj):
        held = limit_delete_or_request(actor=request.user, limit=obj)
        if held is not None:  # issue 15: four eyes
            self.message_user(request, f"{obj}: {FOUR_EYES_HELD} (change {held.pk}).", level=messages.WARNING)

    # A disable is a loosening of an officer-set limit: with four eyes it waits for approval.
    enable_limits, disable_limits = enable_actions(
        "limit",
        lambda request, limit, on: (limit_update if on else limit_update_or_request)(
            actor=request.user, limit=limit, changes={"enabled": on}
        ),
    )

    @admin.action(description="Evaluate now (the owners of the selected limits)")
    def evaluate_now(self, request, queryset):
        _evaluate_users(self, request, sorted({str(user_id) for user_id in queryset.values_list("user_id", flat=True)}))

    @admin.action(description="Reset drawdown tracking (peak equity from now)")
    def reset_drawdown_tracking(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(limit_type="drawdown"),
            lambda limit: limit_drawdown_reset(actor=request.user, limit=limit),
            done="drawdown limit(s) reset",
        )


def _evaluate_users(modeladmin, request, user_ids) -> None:
    levels = {}
    for user_id in user_ids:
        try:
            result = evaluation_run(user_id=user_id)
        except Exception as exc:  # report, and go on with the others
            modeladmin.message_user(request, f"Evaluation of {user_id} failed: {exc}", level=messages.ERROR)
            continue
        levels[result.risk_level] = levels.get(result.risk_level, 0) + 1
    summary = ", ".join(f"{count} {level}" for level, count in sorted(levels.items()))
    modeladmin.message_user(request, f"Evaluated {len(user_ids)} user(s): {summary or 'nothing to evaluate'}.")
