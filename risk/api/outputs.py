"""How risk objects look in responses: Phase 4 shapes (decimal strings, ISO times) and
ETRMS shapes (JSON numbers). Plain functions over rows, so lists cost one query."""

from decimal import Decimal

from etrms.formatting import decimal_str, iso_utc, number
from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, RiskAlert, SymbolConfig


def as_text(queryset, *fields):
    """Annotate `fields` as their database text (`<field>_text`): a list of N rows then
    skips 2N datetime converters; the outputs parse the text once."""
    from django.db.models import CharField
    from django.db.models.functions import Cast

    return queryset.annotate(**{f"{field}_text": Cast(field, output_field=CharField()) for field in fields})


def uuid_text(value) -> str | None:
    """A UUID as its canonical text, from a UUID or the database's text of one
    (SQLite keeps 32 hex digits, PostgreSQL the dashed form)."""
    if value is None:
        return None
    text = str(value)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def ladder_out(steps: list, latches: dict) -> list[dict]:
    """A limit's ladder steps, each with its latches now (`latches`: {at_pct: [LadderTrip]},
    risk.selectors.ladder_latches_get): one per symbol where the step is crossed."""
    return [
        {
            "at_pct": step["at_pct"],
            "do": step["do"],
            "latched": [
                {
                    "symbol": trip.symbol,
                    "trip_id": str(trip.id),
                    "triggered_at": iso_utc(trip.triggered_at),
                    "action_status": trip.action_status,
                    "dry_run": trip.dry_run,
                }
                for trip in latches.get(Decimal(step["at_pct"]), ())
            ],
        }
        for step in steps or ()
    ]


ALERT_FIELDS = (
    "id",
    "user_id",
    "alert_type",
    "severity",
    "message",
    "triggered_at",
    "status",
    "metadata",
    "acknowledged_at",
    "resolved_at",
)


def alert_out(alert: RiskAlert | dict) -> dict:
    row = alert if isinstance(alert, dict) else {name: getattr(alert, name) for name in ALERT_FIELDS}
    return {
        "id": str(row["id"]),
        "user_id": str(row["user_id"]),
        "alert_type": row["alert_type"],
        "severity": row["severity"],
        "message": row["message"],
        "triggered_at": iso_utc(row["triggered_at"]),
        "status": row["status"],
        "metadata": row["metadata"],
        "acknowledged_at": iso_utc(row["acknowledged_at"]),
        "resolved_at": iso_utc(row["resolved_at"]),
    }


def breaker_out(breaker: CircuitBreaker) -> dict:
    """An ETRMS circuit breaker (numbers as JSON numbers)."""
    return {
        "name": breaker.name,
        "description": breaker.description,
        "condition_type": breaker.condition_type,
        "threshold": number(breaker.threshold),
        "action": breaker.action,
        "symbols": breaker.symbols,
        "exchanges": breaker.exchanges,
        "enabled": breaker.enabled,
        "additional_params": breaker.additional_params or {},
        "cooldown_seconds": breaker.cooldown_seconds,
        "last_triggered_at": iso_utc(breaker.last_triggered_at),
        "trigger_count": breaker.trigger_count,
        "created_at": iso_utc(breaker.created_at),
        "updated_at": iso_utc(breaker.updated_at),
    }


def global_out(config: GlobalConfig) -> dict:
    return {
        "max_total_exposure": number(config.max_total_exposure),
        "max_leverage": number(config.max_leverage),
        "max_drawdown_pct": number(config.max_drawdown_pct),
        "daily_loss_limit": number(config.daily_loss_limit),
        "max_margin_ratio": number(config.max_margin_ratio),
        "dry_run": config.dry_run,
        "monitoring_interval_seconds": config.monitoring_interval_seconds,
        "alert_cooldown_seconds": config.alert_cooldown_seconds,
        "max_price_age_seconds": config.max_price_age_seconds,
        "max_orders_per_minute": config.max_orders_per_minute,
        "four_eyes": config.four_eyes,
        "escalate_after_seconds": config.escalate_after_seconds,
        "updated_at": iso_utc(config.updated_at),
    }


def symbol_config_out(config: SymbolConfig | None, *, symbol: str) -> dict:
    """A symbol's config, or the defaults it would have (`configured` false)."""
    config = config or SymbolConfig(symbol=symbol)
    return {
        "symbol": config.symbol,
        "max_position_size": number(config.max_position_size),
        "max_leverage": number(config.max_leverage),
        "trading_enabled": config.trading_enabled,
        "max_order_notional": number(config.max_order_notional),
        "configured": config.pk is not None,
        "updated_at": iso_utc(config.updated_at),
    }


def exchange_config_out(config: ExchangeConfig | None, *, exchange: str) -> dict:
    config = config or ExchangeConfig(exchange=exchange)
    return {
        "exchange": config.exchange,
        "max_exposure": number(config.max_exposure),
        "enabled": config.enabled,
        "testnet": config.testnet,
        "trading_enabled": config.trading_enabled,
        "configured": config.pk is not None,
        "updated_at": iso_utc(config.updated_at),
    }


# --- POST /risk/evaluate ------------------------------------------------------------------
def _status_item(status, *, warning: bool) -> dict:
    item = {
        "limit_id": str(status.limit_id) if status.limit_id is not None else None,
        "limit_type": status.limit_type,
        "symbol": status.symbol,
        "current_value": decimal_str(status.value),
        "threshold": decimal_str(status.threshold),
        "source": status.source,
    }
    if warning:
        item["warning_value"] = decimal_str(status.warning)
    if status.cap is not None:
        item["cap"] = status.cap
    if status.exchange is not None:
        item["exchange"] = status.exchange
    if status.value is None:
        item["reason"] = "equity <= 0: undefined, critical whatever the threshold"
    return item


def _breaker_item(report) -> dict:
    data = {"name": report.name, "triggered": report.triggered, "action": report.action}
    data["action_result"] = report.action_result
    if report.triggered:
        data.update(
            exchange=report.exchange,
            symbol=report.symbol,
            action_status=report.action_status,
            dry_run=report.dry_run,
            new_trip=report.new_trip,
            trip_id=report.trip_id,
        )
    return data


def _breaker_items(result) -> list[dict]:
    """Every breaker hit in the report's scope, then every other enabled breaker in it
    as not triggered; by name."""
    symbol, exchange = result.symbol, result.exchange
    shown = [
        report
        for report in result.breakers
        if (symbol is None or report.symbol == symbol) and (exchange is None or report.exchange == exchange)
    ]
    names = {report.name for report in shown}
    items = [(report.name, report.symbol or "", _breaker_item(report)) for report in shown]
    for breaker in result.config.breakers:
        if (
            breaker.name not in names
            and (symbol is None or breaker.symbols is None or symbol in breaker.symbols)
            and (exchange is None or breaker.exchanges is None or exchange in breaker.exchanges)
        ):
            items.append(
                (
                    breaker.name,
                    "",
                    {"name": breaker.name, "triggered": False, "action": breaker.action, "action_result": None},
                )
            )
    return [item for _, _, item in sorted(items, key=lambda entry: (entry[0], entry[1]))]


def _margin_ratio_str(metrics) -> str:
    """A decimal string always (issue 10 C2): "0.00" when no account reports margin
    (nothing is at risk), "Infinity" when an account owes maintenance margin on equity at
    or below zero (past liquidation; the violation says why)."""
    if metrics.margin_ratio_undefined:
        return "Infinity"
    return decimal_str(metrics.margin_ratio if metrics.margin_ratio is not None else 0)


def evaluation_out(result) -> dict:
    """Phase 4's evaluate shape plus `circuit_breakers` and ETRMS's status/message."""
    relevant = [s for s in result.statuses if result.symbol is None or s.symbol in (None, result.symbol)]
    violations = [_status_item(s, warning=False) for s in relevant if s.exceeded]
    warnings = [_status_item(s, warning=True) for s in relevant if s.warned and not s.exceeded]
    breakers = _breaker_items(result) if result.breakers_evaluated else []
    tripped = sum(1 for item in breakers if item["triggered"])
    m = result.metrics
    return {
        "status": "success",
        "message": (
            f"Risk evaluated: {result.risk_level}; {len(violations)} violation(s), {len(warnings)} warning(s), "
            f"{tripped} circuit breaker trip(s)"
        ),
        "risk_level": result.risk_level,
        "metrics": {
            "position_size": decimal_str(m.position_size(result.symbol)),
            "daily_pnl": decimal_str(m.daily_pnl),
            "total_exposure": decimal_str(m.total_exposure),
            "margin_ratio": _margin_ratio_str(m),
            "leverage": decimal_str(m.leverage),
            "drawdown": decimal_str(m.drawdown),
            "daily_loss": decimal_str(m.daily_loss),
        },
        "violations": violations,
        "warnings": warnings,
        "circuit_breakers": breakers,
    }
