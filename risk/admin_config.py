"""The console's desk configuration: the global singleton, per symbol and per exchange,
each saved through the settings schema and its service. Imported by `risk.admin`."""

from django.contrib import admin
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from etrms.admin_tools import (
    NoAddOrDeleteAdminMixin,
    ServiceAdminMixin,
)
from etrms.formatting import value_plain
from risk.models import (
    ExchangeConfig,
    GlobalConfig,
    SymbolConfig,
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
        changed = [name for name in form.changed_data if name in GlobalSettings().fields]
        values = _form_settings(GlobalSettings, form, changed)
        global_config_update(actor=request.user, **values)


def _form_settings(schema, form, names) -> dict:
    """The form's values of `names` parsed by the settings `schema` (Decimals back to the
    strings the schema parses)."""
    values = {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}
    return settings_parse(schema, {name: value_plain(value) for name, value in values.items()})


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
        with transaction.atomic():
            values = _form_settings(SymbolSettings, form, fields)
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
        values = _form_settings(ExchangeSettings, form, fields)
        saved = exchange_config_update(actor=request.user, exchange=obj.exchange, **values)
        obj.pk, obj.exchange = saved.pk, saved.exchange
        obj._state.adding = False

    def delete_model(self, request, obj):
        exchange_config_delete(actor=request.user, config=obj)
