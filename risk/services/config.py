"""Writes on the desk's configuration (SPEC §5): the global singleton, per-symbol and
per-exchange configs, reset, and JSON snapshots under CONFIG_DIR (save and load).

Settings bodies are partial; unknown keys are errors. Snapshots hold settings and
breakers only (nothing in risk/ holds a credential).
"""

import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path, PurePosixPath

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from etrms.api.inputs import PositiveDecimalField, StrictSerializer
from etrms.errors import InvalidInput
from etrms.formatting import iso_utc, value_plain
from risk.history import history_actor_set
from risk.models import MONEY, CircuitBreaker, ExchangeConfig, GlobalConfig, SymbolConfig
from risk.services import hooks
from risk.services.common import actor_id
from risk.validators import exchange_normalize, symbol_normalize

SNAPSHOT_VERSION = 1
DEAD_MANS_SWITCH_MAX_SECONDS = 3600
DEFAULT_SNAPSHOT_NAME = "etrms-config.json"


def _cap(**kwargs):
    return PositiveDecimalField(
        **MONEY, allow_null=True, positive_message="Must be positive (null for no cap).", **kwargs
    )


class SettingsSerializer(StrictSerializer):
    unknown_message = "Unknown setting (known: {known})."


class GlobalSettings(SettingsSerializer):
    max_total_exposure = _cap()
    max_leverage = _cap()
    max_drawdown_pct = _cap(max_value=Decimal("100"))
    daily_loss_limit = _cap()
    max_margin_ratio = _cap(max_value=Decimal("1"))
    dry_run = serializers.BooleanField()
    monitoring_interval_seconds = serializers.IntegerField(min_value=1, max_value=86400)
    alert_cooldown_seconds = serializers.IntegerField(min_value=0, max_value=86400)
    max_price_age_seconds = serializers.IntegerField(min_value=1, max_value=86400)
    max_orders_per_minute = serializers.IntegerField(min_value=1, max_value=1_000_000, allow_null=True)  # issue 15
    four_eyes = serializers.BooleanField()  # issue 15
    escalate_after_seconds = serializers.IntegerField(min_value=0, max_value=86400)  # issue 15 (0: never)


class SymbolSettings(SettingsSerializer):
    max_position_size = _cap()
    max_leverage = _cap()
    trading_enabled = serializers.BooleanField()
    max_order_notional = _cap()  # issue 15


class ExchangeSettings(SettingsSerializer):
    max_exposure = _cap()
    enabled = serializers.BooleanField()
    testnet = serializers.BooleanField()
    trading_enabled = serializers.BooleanField()  # issue 15
    dead_mans_switch_seconds = serializers.IntegerField(min_value=0, max_value=DEAD_MANS_SWITCH_MAX_SECONDS)


def settings_parse(schema: type[serializers.Serializer], raw) -> dict:
    """A partial settings object (a request body's, a snapshot's, the admin's form) ->
    the keyword values of the `*_config_update` services. Unknown keys are a 400, and
    every error is under `settings`."""
    if not isinstance(raw, dict):
        raise InvalidInput({"settings": ["Must be an object of settings."]})
    serializer = schema(data=raw, partial=True)
    if not serializer.is_valid():
        raise InvalidInput({"settings": serializer.errors})
    return dict(serializer.validated_data)


def _known(schema: type[serializers.Serializer], values: dict) -> dict:
    unknown = set(values) - set(schema().fields)
    if unknown:
        raise TypeError(f"Not a setting of {schema.__name__}: {', '.join(sorted(unknown))}")
    return values


# --- reads that create the singleton ----------------------------------------------------
def global_config_get() -> GlobalConfig:
    config = GlobalConfig.objects.filter(pk=GlobalConfig.SINGLETON_PK).first()
    if config is None:
        config, _ = GlobalConfig.objects.get_or_create(pk=GlobalConfig.SINGLETON_PK)
    return config


def _apply(instance, values: dict, *, actor) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(instance, key) != value:
            setattr(instance, key, value)
            changed = True
    return changed


@transaction.atomic
def global_config_update(*, actor, **values) -> GlobalConfig:
    """`values`: settings of `GlobalSettings`, as `settings_parse` returns them."""
    _known(GlobalSettings, values)
    config = GlobalConfig.objects.select_for_update().filter(pk=GlobalConfig.SINGLETON_PK).first()
    config = config or global_config_get()
    previous_interval, was_dry_run = config.monitoring_interval_seconds, config.dry_run
    if _apply(config, values, actor=actor):
        history_actor_set(config, actor_id(actor))
        config.save()
        hooks.config_changed()
        _interval_follow(previous_interval, config.monitoring_interval_seconds)
        if was_dry_run and not config.dry_run:
            from risk.services.trips import dry_run_trips_release

            dry_run_trips_release(actor=actor, reason="dry run switched off")
    return config


def _interval_follow(previous: int, current: int) -> None:
    """The periodic sync follows `monitoring_interval_seconds` (accounts' monitoring)."""
    if previous != current:
        from accounts.services.monitoring import monitoring_interval_update

        transaction.on_commit(lambda: monitoring_interval_update(interval_seconds=current))


def global_defaults() -> dict:
    return {
        field.name: field.get_default()
        for field in GlobalConfig._meta.concrete_fields
        if field.name in GlobalSettings().fields
    }


@transaction.atomic
def config_reset(*, actor) -> GlobalConfig:
    """Default global settings (dry_run true), no symbol or exchange configs; breakers
    are left alone."""
    config = GlobalConfig.objects.select_for_update().filter(pk=GlobalConfig.SINGLETON_PK).first()
    config = config or global_config_get()
    previous_interval = config.monitoring_interval_seconds
    _apply(config, global_defaults(), actor=actor)
    _interval_follow(previous_interval, config.monitoring_interval_seconds)
    history_actor_set(config, actor_id(actor))
    config.save()
    for model in (SymbolConfig, ExchangeConfig):
        for instance in model.objects.all():
            history_actor_set(instance, actor_id(actor))
            instance.delete()
    hooks.config_changed()
    return config


@transaction.atomic
def symbol_config_update(*, actor, symbol: str, **values) -> SymbolConfig:
    """Update the symbol's config, creating it when absent. `values`: settings of
    `SymbolSettings`, as `settings_parse` returns them."""
    return _scoped_config_update(
        SymbolConfig, SymbolSettings, {"symbol": symbol_normalize(symbol)}, values, actor=actor
    )


@transaction.atomic
def exchange_config_update(*, actor, exchange: str, **values) -> ExchangeConfig:
    """Update the exchange's config, creating it when absent. `values`: settings of
    `ExchangeSettings`, as `settings_parse` returns them."""
    key = {"exchange": exchange_normalize(exchange)}
    return _scoped_config_update(ExchangeConfig, ExchangeSettings, key, values, actor=actor)


def _scoped_config_update(model, schema, key: dict, values: dict, *, actor):
    """The `model` row of `key` (locked; a new one when absent) with `values` applied,
    saved and announced when anything changed or the row is new."""
    _known(schema, values)
    config = model.objects.select_for_update().filter(**key).first() or model(**key)
    if _apply(config, values, actor=actor) or config._state.adding:
        history_actor_set(config, actor_id(actor))
        config.save()
        hooks.config_changed()
    return config


# --- snapshots ----------------------------------------------------------------------------
def _settings_of(instance, schema) -> dict:
    return {name: value_plain(getattr(instance, name)) for name in schema().fields}


def breaker_definition(breaker: CircuitBreaker) -> dict:
    return {
        "name": breaker.name,
        "description": breaker.description,
        "condition_type": breaker.condition_type,
        "threshold": value_plain(breaker.threshold),
        "action": breaker.action,
        "symbols": breaker.symbols,
        "exchanges": breaker.exchanges,
        "enabled": breaker.enabled,
        "additional_params": breaker.additional_params,
        "cooldown_seconds": breaker.cooldown_seconds,
    }


def config_snapshot() -> dict:
    """Settings and breakers as plain JSON (decimals as exact strings)."""
    return {
        "version": SNAPSHOT_VERSION,
        "saved_at": iso_utc(timezone.now()),
        "global": _settings_of(global_config_get(), GlobalSettings),
        "symbols": {config.symbol: _settings_of(config, SymbolSettings) for config in SymbolConfig.objects.all()},
        "exchanges": {
            config.exchange: _settings_of(config, ExchangeSettings) for config in ExchangeConfig.objects.all()
        },
        "circuit_breakers": [breaker_definition(breaker) for breaker in CircuitBreaker.objects.order_by("name")],
    }


def _path_error(message: str) -> InvalidInput:
    return InvalidInput({"config_path": [message]})


def config_path_resolve(config_path: str | None) -> Path:
    """The file `config_path` names inside CONFIG_DIR, or a 400: it must be relative,
    end in `.json`, have no `..` and reach its target without passing a symlink."""
    base = Path(django_settings.CONFIG_DIR)
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve()
    raw = DEFAULT_SNAPSHOT_NAME if config_path in (None, "") else config_path
    if not isinstance(raw, str) or "\x00" in raw or "\\" in raw:
        raise _path_error("Must be a relative path such as 'desk/config.json'.")
    relative = PurePosixPath(raw)
    if relative.is_absolute() or raw.startswith("~"):
        raise _path_error("Must be relative to CONFIG_DIR, not absolute.")
    if any(part in ("..", ".") for part in raw.split("/")) or not relative.parts:
        raise _path_error("Must not contain '..' or '.' segments.")
    if relative.suffix != ".json" or relative.name == ".json":
        raise _path_error("Must end in .json.")
    current = base
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise _path_error("Must not pass through a symbolic link.")
    target = base.joinpath(*relative.parts)
    if not target.resolve().is_relative_to(base) or target.parent.resolve() != target.parent.absolute():
        raise _path_error("Must stay inside CONFIG_DIR.")
    if target.exists() and not target.is_file():
        raise _path_error("Names something that is not a file.")
    return target


def config_save(*, config_path: str | None = None) -> tuple[Path, dict]:
    """Write the snapshot atomically (a temporary file in the same directory, then a
    rename, which replaces rather than follows whatever sits at the name)."""
    target = config_path_resolve(config_path)
    snapshot = config_snapshot()
    base = Path(django_settings.CONFIG_DIR).resolve()
    # Create missing directories one level at a time, refusing any symlink on the way.
    current = base
    for part in target.relative_to(base).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise _path_error("Must not pass through a symbolic link.")
        if not current.exists():
            current.mkdir(mode=0o750)
    descriptor, temporary = tempfile.mkstemp(prefix=".etrms-config-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(snapshot, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target, snapshot


@transaction.atomic
def config_load(*, snapshot: dict, actor=None, prune_breakers: bool = False) -> dict:
    """Apply a snapshot: global settings, symbol and exchange configs, breakers (upserted
    by name; with `prune_breakers`, breakers absent from the snapshot are deleted).
    Everything is validated before anything is written (one transaction)."""
    from risk.services.breakers import breaker_create, breaker_delete, breaker_fields_parse, breaker_update

    if not isinstance(snapshot, dict):
        raise InvalidInput({"snapshot": ["Must be a JSON object."]})
    unknown = set(snapshot) - {"version", "saved_at", "global", "symbols", "exchanges", "circuit_breakers"}
    if unknown:
        raise InvalidInput({"snapshot": [f"Unknown sections: {', '.join(sorted(unknown))}."]})
    summary = {"global": False, "symbols": 0, "exchanges": 0, "breakers_created": 0, "breakers_updated": 0}
    if "global" in snapshot:
        global_config_update(actor=actor, **settings_parse(GlobalSettings, snapshot["global"]))
        summary["global"] = True
    for symbol, values in (snapshot.get("symbols") or {}).items():
        symbol_config_update(actor=actor, symbol=symbol, **settings_parse(SymbolSettings, values))
        summary["symbols"] += 1
    for exchange, values in (snapshot.get("exchanges") or {}).items():
        exchange_config_update(actor=actor, exchange=exchange, **settings_parse(ExchangeSettings, values))
        summary["exchanges"] += 1
    breakers = snapshot.get("circuit_breakers") or []
    if not isinstance(breakers, list):
        raise InvalidInput({"circuit_breakers": ["Must be a list."]})
    names = set()
    for definition in breakers:
        if not isinstance(definition, dict) or "name" not in definition:
            raise InvalidInput({"circuit_breakers": ["Each breaker is an object with a name."]})
        names.add(definition["name"])
        existing = CircuitBreaker.objects.filter(name=definition["name"]).first()
        if existing is None:
            breaker_create(actor=actor, **breaker_fields_parse(definition, partial=False))
            summary["breakers_created"] += 1
        else:
            changes = breaker_fields_parse({k: v for k, v in definition.items() if k != "name"}, partial=True)
            breaker_update(actor=actor, breaker=existing, **changes)
            summary["breakers_updated"] += 1
    if prune_breakers:
        for breaker in CircuitBreaker.objects.exclude(name__in=names):
            breaker_delete(actor=actor, breaker=breaker)
    return summary


@transaction.atomic
def symbol_config_delete(*, actor, config: SymbolConfig) -> None:
    history_actor_set(config, actor_id(actor))
    config.delete()
    hooks.config_changed()


@transaction.atomic
def exchange_config_delete(*, actor, config: ExchangeConfig) -> None:
    history_actor_set(config, actor_id(actor))
    config.delete()
    hooks.config_changed()
