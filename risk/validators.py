"""Shared value checks: symbols, exchange ids, and a circuit breaker's definition per
condition type (SPEC §5: the threshold's range, `additional_params` with unknown keys or
bad values refused, the `symbols` / `exchanges` scopes). They raise Django's
ValidationError, which the admin shows on its form and the API's error handler turns
into a 400. Shared by the API, the admin form, the model's `clean()` and config loading."""

import re
import zoneinfo
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from risk.constants import (
    CONDITION_PARAMS,
    MAX_CONSECUTIVE_LOSSES,
    MAX_LADDER_STEPS,
    PNL_DIRECTIONS,
    VOLATILITY_WINDOW_RANGE,
    BreakerAction,
    ConditionType,
    LadderAction,
)

MAX_LADDER_PCT = Decimal(10000)  # a step at 100x the threshold
LADDER_PCT_STEP = Decimal("0.0001")  # LadderTrip.at_pct keeps 4 decimals
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,32}$")
EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9]{1,31}$")


def _invalid(field: str | None, message: str) -> ValidationError:
    """Keyed by `field`, or bare (None) inside a serializer field, which adds the key."""
    return ValidationError({field: [message]} if field else message)


def symbol_normalize(value: str, *, field: str | None = "symbol") -> str:
    """Exchange-style symbol (`BTCUSDT`), upper-cased; anything else is a ValidationError."""
    if not isinstance(value, str):
        raise _invalid(field, "A symbol is a string such as BTCUSDT.")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise _invalid(field, f"{value!r} is not an exchange-style symbol such as BTCUSDT.")
    return symbol


def exchange_normalize(value: str, *, field: str | None = "exchange") -> str:
    """A ccxt exchange id (`binanceusdm`) or `paper`, lower-cased."""
    if not isinstance(value, str):
        raise _invalid(field, "An exchange is a ccxt id such as binanceusdm, or paper.")
    from accounts.exchanges import is_known_exchange

    exchange = value.strip().lower()
    if not EXCHANGE_RE.match(exchange) or not is_known_exchange(exchange):
        raise _invalid(field, f"{value!r} is not an exchange id such as binanceusdm or paper.")
    return exchange


def _hhmm(value, *, where: str, errors: list[str]) -> None:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        errors.append(f"{where} must be a time 'HH:MM'.")
        return
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        errors.append(f"{where} must be a time 'HH:MM'.")


def _flat_windows(value, errors: list[str]) -> None:
    if not isinstance(value, list) or not value:
        errors.append('flat_windows must be a non-empty list of {"start": "HH:MM", "end": "HH:MM", "tz": "UTC"}.')
        return
    for index, window in enumerate(value):
        where = f"flat_windows[{index}]"
        if not isinstance(window, dict):
            errors.append(f"{where} must be an object with start, end and tz.")
            continue
        unknown = set(window) - {"start", "end", "tz"}
        if unknown:
            errors.append(f"{where}: unknown keys {', '.join(sorted(unknown))}.")
        for key in ("start", "end"):
            if key not in window:
                errors.append(f"{where}.{key} is required.")
            else:
                _hhmm(window[key], where=f"{where}.{key}", errors=errors)
        if window.get("start") is not None and window.get("start") == window.get("end"):
            errors.append(f"{where}: start and end must differ.")
        tz = window.get("tz", "UTC")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            errors.append(f"{where}.tz {tz!r} is not a known time zone.")


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def additional_params_errors(*, condition_type: str, action: str | None, params) -> list[str]:
    if params is None:
        return []
    if not isinstance(params, dict):
        return ["additional_params must be an object."]
    allowed = set(CONDITION_PARAMS.get(condition_type, set()))
    if action == BreakerAction.REDUCE_POSITION_SIZE:
        allowed.add("reduce_pct")
    errors: list[str] = []
    unknown = set(params) - allowed
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        names = ", ".join(sorted(unknown))
        errors.append(f"Unknown keys for {condition_type} / {action}: {names} (accepted: {accepted}).")
    if "direction" in params and params["direction"] not in PNL_DIRECTIONS:
        errors.append("direction must be 'loss' or 'profit'.")
    if "flat_windows" in params:
        _flat_windows(params["flat_windows"], errors)
    if "window_seconds" in params:
        seconds = params["window_seconds"]
        low, high = VOLATILITY_WINDOW_RANGE
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
            errors.append(f"window_seconds must be an integer from {low} to {high}.")
    if "reduce_pct" in params:
        pct = _decimal(params["reduce_pct"])
        if pct is None or not Decimal("0") < pct < Decimal("100"):
            errors.append("reduce_pct must be a number above 0 and below 100 (close_position closes all).")
    return errors


def threshold_errors(*, condition_type: str, threshold) -> list[str]:
    value = _decimal(threshold)
    if value is None:
        return ["threshold must be a number."]
    if value <= 0:
        return ["threshold must be positive."]
    if condition_type == ConditionType.CONSECUTIVE_LOSSES and (
        value != value.to_integral_value() or value > MAX_CONSECUTIVE_LOSSES
    ):
        return [f"A consecutive_losses threshold is a whole number of closed positions (1..{MAX_CONSECUTIVE_LOSSES})."]
    if condition_type == ConditionType.TRAILING_STOP and value >= 100:
        return ["A trailing_stop threshold is a percentage below 100."]
    return []


def scope_normalize(value, *, field: str, normalize) -> list[str] | None:
    """None (all) or a non-empty list of normalized, distinct names."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValidationError({field: [f"{field} is null (all) or a non-empty list."]})
    seen: list[str] = []
    for item in value:
        name = normalize(item, field=field)
        if name not in seen:
            seen.append(name)
    return seen


def breaker_definition_validate(
    *, condition_type, threshold, additional_params, symbols, exchanges, action=None
) -> dict:
    """Check a breaker's definition; returns the normalized scopes. Raises
    ValidationError({field: [...]}) naming every problem at once."""
    errors: dict[str, list[str]] = {}
    if condition_type not in ConditionType.values:
        errors["condition_type"] = [f"Must be one of {', '.join(ConditionType.values)}."]
    if action is not None and action not in BreakerAction.values:
        errors["action"] = [f"Must be one of {', '.join(BreakerAction.values)}."]
    if "condition_type" not in errors:
        if problems := threshold_errors(condition_type=condition_type, threshold=threshold):
            errors["threshold"] = problems
        if problems := additional_params_errors(condition_type=condition_type, action=action, params=additional_params):
            errors["additional_params"] = problems
    normalized = {}
    scopes = (("symbols", symbols, symbol_normalize), ("exchanges", exchanges, exchange_normalize))
    for field, value, normalize in scopes:
        try:
            normalized[field] = scope_normalize(value, field=field, normalize=normalize)
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.message_dict.get(field, exc.messages))
    if errors:
        raise ValidationError(errors)
    return normalized


def ladder_normalize(value, *, field: str | None = "ladder") -> list[dict]:
    """A limit's graded ladder (issue 15): null (no ladder) or a non-empty list of at
    most MAX_LADDER_STEPS steps `{"at_pct": percent of the threshold, "do": action}`,
    `at_pct` positive and strictly increasing, each action a LadderAction. Returns the
    steps with `at_pct` as exact decimal text; raises ValidationError naming every
    problem."""
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise _invalid(field, "ladder is null (no ladder) or a non-empty list of steps {at_pct, do}.")
    if len(value) > MAX_LADDER_STEPS:
        raise _invalid(field, f"A ladder has at most {MAX_LADDER_STEPS} steps.")
    errors: list[str] = []
    steps: list[dict] = []
    previous = None
    for index, step in enumerate(value):
        where = f"step {index + 1}"
        if not isinstance(step, dict) or set(step) != {"at_pct", "do"}:
            errors.append(f"{where} must be an object with exactly at_pct and do.")
            continue
        pct = _decimal(step["at_pct"])
        if pct is None or not 0 < pct <= MAX_LADDER_PCT or pct != pct.quantize(LADDER_PCT_STEP):
            errors.append(
                f"{where}: at_pct must be a positive number (percent of the threshold) "
                f"up to {MAX_LADDER_PCT}, with at most 4 decimals."
            )
            pct = None
        elif previous is not None and pct <= previous:
            errors.append(f"{where}: at_pct must be above the previous step's ({previous:f}); steps go up.")
        if step["do"] not in LadderAction.values:
            errors.append(f"{where}: do must be one of {', '.join(LadderAction.values)}.")
        if pct is not None:
            previous = pct if previous is None or pct > previous else previous
            steps.append({"at_pct": format(pct.normalize(), "f"), "do": step["do"]})
    if errors:
        raise ValidationError({field: errors} if field else errors)
    return steps
