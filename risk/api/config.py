"""ETRMS configuration endpoints (`/config/*`): envelope, JSON numbers. Traders read;
risk officers write. `PUT` bodies are `{"settings": {...}}`, partial."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from etrms.api.inputs import StrictSerializer
from etrms.api.responses import envelope
from risk.api.common import ConfigApi
from risk.api.outputs import breaker_out, exchange_config_out, global_out, symbol_config_out
from risk.selectors import (
    breaker_list,
    exchange_config_find,
    exchange_config_list,
    symbol_config_find,
    symbol_config_list,
)
from risk.services.config import (
    ExchangeSettings,
    GlobalSettings,
    SymbolSettings,
    config_reset,
    config_save,
    exchange_config_update,
    global_config_get,
    global_config_update,
    settings_parse,
    symbol_config_update,
)
from risk.validators import exchange_normalize, symbol_normalize


def _settings_body(request, schema) -> dict:
    """`{"settings": {...}}` -> the keyword values of the `*_config_update` services."""
    if not hasattr(request.data, "keys") or set(request.data.keys()) != {"settings"}:
        raise ValidationError({"settings": ['The body is {"settings": {...}}.']})
    return settings_parse(schema, request.data["settings"])


class GlobalSettingsBody(StrictSerializer):
    settings = GlobalSettings(partial=True)


class SymbolSettingsBody(StrictSerializer):
    settings = SymbolSettings(partial=True)


class ExchangeSettingsBody(StrictSerializer):
    settings = ExchangeSettings(partial=True)


def _symbols() -> dict:
    return {config.symbol: symbol_config_out(config, symbol=config.symbol) for config in symbol_config_list()}


def _exchanges() -> dict:
    return {config.exchange: exchange_config_out(config, exchange=config.exchange) for config in exchange_config_list()}


class ConfigAllApi(ConfigApi):
    @extend_schema(description="Global, per-symbol and per-exchange settings and the circuit breakers.")
    def get(self, request):
        data = {
            "global": global_out(global_config_get()),
            "symbols": _symbols(),
            "exchanges": _exchanges(),
            "circuit_breakers": [breaker_out(breaker) for breaker in breaker_list()],
        }
        return envelope(data, message="Risk configuration")


class GlobalConfigApi(ConfigApi):
    def get(self, request):
        return envelope(global_out(global_config_get()), message="Global configuration")

    @extend_schema(request=GlobalSettingsBody, description='`{"settings": {...}}`, partial; unknown keys are a 400.')
    def put(self, request):
        config = global_config_update(actor=request.user, **_settings_body(request, GlobalSettings))
        return envelope(global_out(config), message="Global configuration updated")


class SymbolConfigListApi(ConfigApi):
    def get(self, request):
        return envelope(_symbols(), message="Symbol configurations")


class SymbolConfigApi(ConfigApi):
    @extend_schema(description="The symbol's settings, or the defaults it would have (`configured` false).")
    def get(self, request, symbol):
        symbol = symbol_normalize(symbol)
        return envelope(
            symbol_config_out(symbol_config_find(symbol=symbol), symbol=symbol),
            message=f"Configuration of {symbol}",
        )

    @extend_schema(
        request=SymbolSettingsBody, description='`{"settings": {...}}`, partial; creates the config when absent.'
    )
    def put(self, request, symbol):
        config = symbol_config_update(actor=request.user, symbol=symbol, **_settings_body(request, SymbolSettings))
        return envelope(
            symbol_config_out(config, symbol=config.symbol), message=f"Configuration of {config.symbol} updated"
        )


class ExchangeConfigListApi(ConfigApi):
    def get(self, request):
        return envelope(_exchanges(), message="Exchange configurations")


class ExchangeConfigApi(ConfigApi):
    @extend_schema(
        description="The exchange's settings, or the defaults it would have (`configured` false).",
    )
    def get(self, request, exchange):
        exchange = exchange_normalize(exchange)
        return envelope(
            exchange_config_out(exchange_config_find(exchange=exchange), exchange=exchange),
            message=f"Configuration of {exchange}",
        )

    @extend_schema(
        request=ExchangeSettingsBody,
        description='`{"settings": {...}}`, partial; creates the config when absent.',
    )
    def put(self, request, exchange):
        config = exchange_config_update(
            actor=request.user, exchange=exchange, **_settings_body(request, ExchangeSettings)
        )
        return envelope(
            exchange_config_out(config, exchange=config.exchange),
            message=f"Configuration of {config.exchange} updated",
        )


# risk.services.config.config_path_resolve: relative, no "." or ".." segments, ".json".
CONFIG_PATH_PATTERN = r"^$|^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.json$"


class SaveInput(serializers.Serializer):
    config_path = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=500)

    document_rules = {"allOf": [{"properties": {"config_path": {"pattern": CONFIG_PATH_PATTERN}}}]}


class ConfigSaveApi(ConfigApi):
    @extend_schema(
        request=SaveInput,
        description="Write a JSON snapshot (settings and breakers) to `config_path`, relative to CONFIG_DIR, "
        "ending in .json; anything else is a 400 and nothing is written.",
    )
    def post(self, request):
        data = SaveInput(data=request.data)
        data.is_valid(raise_exception=True)
        path, snapshot = config_save(config_path=data.validated_data.get("config_path"))
        from django.conf import settings

        relative = str(path.relative_to(settings.CONFIG_DIR.resolve()))
        return envelope(
            {
                "config_path": relative,
                "saved_at": snapshot["saved_at"],
                "symbols": len(snapshot["symbols"]),
                "exchanges": len(snapshot["exchanges"]),
                "circuit_breakers": len(snapshot["circuit_breakers"]),
            },
            message=f"Configuration saved to {relative}",
        )


class ConfigResetApi(ConfigApi):
    @extend_schema(request=None, description="Default settings (dry_run true); breakers are left alone.")
    def post(self, request):
        config = config_reset(actor=request.user)
        return envelope(
            {"global": global_out(config), "symbols": {}, "exchanges": {}}, message="Configuration reset to defaults"
        )
