"""The console's circuit breakers with their trip history, and the trips themselves
(re-armed from either). Imported by `risk.admin`."""

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from etrms.admin_tools import (
    NoAddOrDeleteAdminMixin,
    ServiceAdminMixin,
    enable_actions,
    run_each,
)
from risk.models import (
    BreakerTrip,
    CircuitBreaker,
)
from risk.services.breakers import (
    breaker_create,
    breaker_delete,
    breaker_fields_parse,
    breaker_set_enabled,
    breaker_update,
)
from risk.services.sweep import evaluation_sweep
from risk.services.trips import trip_rearm

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
