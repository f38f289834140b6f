"""The risk officer's console (SPEC §10): limits, alerts, breakers with their trips, the
desk's configuration (the global one a singleton) and the change history of each.

Every save, delete and action calls the same services as the API; errors reach the
officer through `message_user`.
"""

from decimal import Decimal

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from etrms.admin_tools import (
    NoAddOrDeleteAdminMixin,
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    enable_actions,
    filterset_list_filter,
    run_each,
)
from etrms.formatting import decimal_plain
from risk.admin_ladder import ladder_state
from risk.constants import AlertStatus
from risk.filters import AlertFilter, LimitFilter
from risk.models import (
    BreakerTrip,
    CircuitBreaker,
    ExchangeConfig,
    GlobalConfig,
    LimitChange,
    RiskAlert,
    RiskLimit,
    SymbolConfig,
)
from risk.services.alerts import alert_acknowledge, alert_resolve
from risk.services.breakers import (
    breaker_create,
    breaker_delete,
    breaker_fields_parse,
    breaker_set_enabled,
    breaker_update,
)
from risk.services.config import (
    ExchangeSettings,
    GlobalSettings,
    SymbolSettings,
    exchange_config_delete,
    exchange_config_update,
    global_config_get,
    global_config_update,
    settings_parse,
    symbol_config_delete,
    symbol_config_update,
)
from risk.services.evaluation import evaluation_run
from risk.services.limit_changes import FOUR_EYES_HELD, limit_delete_or_request, limit_update_or_request
from risk.services.limits import UPDATABLE_FIELDS, limit_create, limit_drawdown_reset, limit_update
from risk.services.sweep import evaluation_sweep
from risk.services.trips import trip_rearm


# --- limits ----------------------------------------------------------------------------------
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


# --- alerts ----------------------------------------------------------------------------------
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


# --- circuit breakers ------------------------------------------------------------------------
TRIP_FIELDS = (
    "triggered_at",
    "user",
    "exchange",
    "symbol",
    "action",
    "dry_run",
    "action_status",
    "action_result",
    "released_at",
    "release_reason",
)


class BreakerTripInline(admin.TabularInline):
    model = BreakerTrip
    fields = TRIP_FIELDS
    readonly_fields = TRIP_FIELDS
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-triggered_at",)
    show_change_link = True
    verbose_name_plural = "trip history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


BREAKER_FORM_FIELDS = (
    "name",
    "description",
    "condition_type",
    "threshold",
    "action",
    "symbols",
    "exchanges",
    "enabled",
    "additional_params",
    "cooldown_seconds",
)


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ServiceAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "name",
        "condition_type",
        "threshold",
        "action",
        "enabled",
        "cooldown_seconds",
        "trigger_count",
        "last_triggered_at",
    )
    list_editable = ("threshold", "enabled")
    list_filter = ("condition_type", "action", "enabled")
    search_fields = ("name", "description")
    fields = (*BREAKER_FORM_FIELDS, "trigger_count", "last_triggered_at", "created_at", "updated_at")
    readonly_fields = ("trigger_count", "last_triggered_at", "created_at", "updated_at")
    inlines = (BreakerTripInline,)
    actions = ("enable_breakers", "disable_breakers", "evaluate_now", "rearm_breakers")
    history_list_display = ("threshold", "enabled")

    def save_model(self, request, obj, form, change):
        if change:
            original = CircuitBreaker.objects.get(pk=obj.pk)
            changes = breaker_fields_parse(self._changes(form, BREAKER_FORM_FIELDS), partial=True)
            saved = breaker_update(actor=request.user, breaker=original, **changes)
        else:
            definition = {name: form.cleaned_data[name] for name in BREAKER_FORM_FIELDS}
            saved = breaker_create(actor=request.user, **breaker_fields_parse(definition, partial=False))
        obj.pk, obj.symbols, obj.exchanges = saved.pk, saved.symbols, saved.exchanges
        obj._state.adding = False

    def delete_model(self, request, obj):
        breaker_delete(actor=request.user, breaker=obj)

    enable_breakers, disable_breakers = enable_actions(
        "breaker", lambda request, breaker, on: breaker_set_enabled(actor=request.user, breaker=breaker, enabled=on)
    )

    @admin.action(description="Evaluate now (every user's positions)")
    def evaluate_now(self, request, queryset):
        summary = evaluation_sweep()
        level = messages.ERROR if summary["failures"] else messages.SUCCESS
        self.message_user(
            request,
            f"Evaluated {summary['users']} user(s): {summary['new_trips']} new trip(s), "
            f"{summary['alerts_raised']} alert(s) raised, {summary['alerts_resolved']} resolved"
            + (f", {summary['failures']} failed" if summary["failures"] else "")
            + ".",
            level=level,
        )

    @admin.action(description="Re-arm the latched trips of the selected breakers")
    def rearm_breakers(self, request, queryset):
        run_each(
            self,
            request,
            BreakerTrip.objects.filter(breaker__in=queryset, released_at__isnull=True),
            lambda trip: trip_rearm(actor=request.user, trip=trip),
            done="trip(s) re-armed",
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


@admin.register(BreakerTrip)
class BreakerTripAdmin(NoAddOrDeleteAdminMixin, admin.ModelAdmin):
    list_display = (
        "triggered_at",
        "breaker_name",
        "user",
        "exchange",
        "symbol",
        "action",
        "dry_run",
        "action_status",
        "latched",
    )
    list_filter = ("action_status", "condition_type", "action", "dry_run", "exchange")
    search_fields = ("breaker_name", "user__username", "symbol", "client_order_id")
    list_select_related = ("user",)
    date_hierarchy = "triggered_at"
    readonly_fields = [field.name for field in BreakerTrip._meta.fields]
    actions = ("rearm_trips",)

    @admin.display(boolean=True)
    def latched(self, obj):
        return obj.latched

    @admin.action(description="Re-arm selected trips (the breaker may trip again)")
    def rearm_trips(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(released_at__isnull=True),
            lambda trip: trip_rearm(actor=request.user, trip=trip),
            done="trip(s) re-armed",
        )


# --- configuration -----------------------------------------------------------------------------
@admin.register(GlobalConfig)
class GlobalConfigAdmin(NoAddOrDeleteAdminMixin, SimpleHistoryAdmin):
    """A singleton: the list goes straight to the one row, which cannot be added twice
    or deleted."""

    fields = (*GlobalSettings().fields, "updated_at")
    readonly_fields = ("updated_at",)
    history_list_display = ("dry_run", "max_total_exposure", "max_leverage")

    def get_object(self, request, object_id, from_field=None):
        global_config_get()  # the row exists from its first read on
        return super().get_object(request, object_id, from_field)

    def changelist_view(self, request, extra_context=None):
        config = global_config_get()
        if not self.has_view_or_change_permission(request, config):
            return super().changelist_view(request, extra_context)
        return HttpResponseRedirect(reverse("admin:risk_globalconfig_change", args=[config.pk]))

    def save_model(self, request, obj, form, change):
        settings = {name: form.cleaned_data[name] for name in form.changed_data if name in GlobalSettings().fields}
        values = settings_parse(GlobalSettings, {key: _plain(value) for key, value in settings.items()})
        global_config_update(actor=request.user, **values)


def _plain(value):
    """A form value back to what the settings schema parses (Decimals as strings)."""
    return decimal_plain(value) if isinstance(value, Decimal) else value


@admin.register(SymbolConfig)
class SymbolConfigAdmin(ServiceAdminMixin, SimpleHistoryAdmin):
    list_display = ("symbol", "max_position_size", "max_leverage", "trading_enabled", "updated_at")
    list_editable = ("max_position_size", "max_leverage", "trading_enabled")
    list_filter = ("trading_enabled",)
    search_fields = ("symbol",)
    fields = ("symbol", "max_position_size", "max_leverage", "trading_enabled", "max_order_notional", "updated_at")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "symbol") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        fields = ("max_position_size", "max_leverage", "trading_enabled", "max_order_notional")
        values = {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}
        with transaction.atomic():
            values = settings_parse(SymbolSettings, {k: _plain(v) for k, v in values.items()})
            saved = symbol_config_update(actor=request.user, symbol=obj.symbol, **values)
        obj.pk, obj.symbol = saved.pk, saved.symbol
        obj._state.adding = False

    def delete_model(self, request, obj):
        symbol_config_delete(actor=request.user, config=obj)


@admin.register(ExchangeConfig)
class ExchangeConfigAdmin(ServiceAdminMixin, SimpleHistoryAdmin):
    list_display = ("exchange", "max_exposure", "enabled", "testnet", "updated_at")
    list_editable = ("max_exposure", "enabled", "testnet")
    list_filter = ("enabled", "testnet")
    search_fields = ("exchange",)
    fields = (
        "exchange",
        "max_exposure",
        "enabled",
        "testnet",
        "trading_enabled",
        "dead_mans_switch_seconds",
        "updated_at",
    )
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "exchange") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        fields = ("max_exposure", "enabled", "testnet", "trading_enabled", "dead_mans_switch_seconds")
        values = {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}
        values = settings_parse(ExchangeSettings, {k: _plain(v) for k, v in values.items()})
        saved = exchange_config_update(actor=request.user, exchange=obj.exchange, **values)
        obj.pk, obj.exchange = saved.pk, saved.exchange
        obj._state.adding = False

    def delete_model(self, request, obj):
        exchange_config_delete(actor=request.user, config=obj)


# --- change history of everything audited -------------------------------------------------------
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

from risk import admin_kill_switch, admin_limit_changes, admin_trading_state  # noqa: E402, F401  (issue 15)
