"""The alerts an evaluation wants open (SPEC §4, §5), with their words: one per limit
or desk cap and level (warning, exceeded), and one `data_stale` per stale position in a
breaker's scope. Pure."""

from etrms.formatting import decimal_str
from risk.constants import AlertSeverity, AlertType
from risk.services import assess_limits
from risk.services.alerts import AlertSpec
from risk.services.outcome import STALE_PREFIX

LEVEL_WORDS = {"warning": "above its warning level", "exceeded": "exceeded"}


def _label(status: assess_limits.LimitStatus) -> str:
    kind = status.limit_type.replace("_", " ")
    where = f" on {status.symbol}" if status.symbol else ""
    if status.exchange:
        where = f" on {status.exchange}"
    origin = f"desk cap {status.cap}" if status.source == "config" else f"{kind} limit"
    return f"{origin}{where}"


def _spec(status: assess_limits.LimitStatus, level: str) -> AlertSpec:
    bound = status.threshold if level == "exceeded" else status.warning
    value = "undefined (equity <= 0)" if status.value is None else decimal_str(status.value)
    label = _label(status)
    # Only the first letter: symbols stay as written (BTCUSDT).
    message = f"{label[:1].upper()}{label[1:]} {LEVEL_WORDS[level]}: {value} >= {decimal_str(bound)}"
    if level == "warning":
        message += f" (threshold {decimal_str(status.threshold)})"
    metadata = {
        "symbol": status.symbol,
        "current_value": decimal_str(status.value),
        "threshold": decimal_str(status.threshold),
        "limit_id": str(status.limit_id) if status.limit_id is not None else None,
        "limit_type": status.limit_type,
        "source": status.source,
        "level": level,
    }
    if status.warning is not None:
        metadata["warning_value"] = decimal_str(status.warning)
    if status.cap is not None:
        metadata["cap"] = status.cap
    if status.exchange is not None:
        metadata["exchange"] = status.exchange
    return AlertSpec(
        key=f"{status.key}:{level}",
        alert_type=f"{status.limit_type}_{level}",
        severity=AlertSeverity.HIGH if level == "exceeded" else AlertSeverity.MEDIUM,
        message=message,
        metadata=metadata,
        limit_id=status.limit_id,
    )


def wanted_alerts(statuses: list, stale: dict | None) -> dict[str, AlertSpec]:
    wanted: dict[str, AlertSpec] = {}
    for status in statuses:
        if status.exceeded:
            spec = _spec(status, "exceeded")
            wanted[spec.key] = spec
        if status.warned:
            spec = _spec(status, "warning")
            wanted[spec.key] = spec
    for position, reason in (stale or {}).values():
        key = f"{STALE_PREFIX}{position.id}"
        wanted[key] = AlertSpec(
            key=key,
            alert_type=AlertType.DATA_STALE,
            severity=AlertSeverity.CRITICAL,
            message=(
                f"Stale data on {position.exchange} {position.symbol} ({position.side}): {reason}; "
                "circuit breakers skip this position until fresh data arrives."
            ),
            metadata={"exchange": position.exchange, "symbol": position.symbol, "position_id": str(position.id)},
        )
    return wanted
