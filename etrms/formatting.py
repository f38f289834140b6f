"""Number and time formats, one home for the API outputs, messages and the admin:
Phase 4's decimal strings, ETRMS's JSON numbers, ISO 8601 UTC timestamps with `Z`, and
decimals as people write them (`15`, `0.5`, `250,000`, never `15.000000000000`)."""

from datetime import UTC, datetime
from decimal import Decimal

TWO_PLACES = Decimal("0.01")


def decimal_str(value) -> str | None:
    """Full precision, at least two decimals, never an exponent: 10000 -> "10000.00",
    0.123456 -> "0.123456", -0 -> "0.00"."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        return str(number)
    number = number.normalize()
    if number == 0:
        return "0.00"
    if number.as_tuple().exponent > -2:
        number = number.quantize(TWO_PLACES)
    return format(number, "f")


def decimal_plain(value: Decimal) -> str:
    """No trailing zeros and no exponent: 50000.000000000000 -> "50000", 0.50 -> "0.5"
    (messages, snapshots, form inputs: text that parses back to the same number)."""
    return format(value.normalize(), "f")


def value_plain(value):
    """A Decimal as `decimal_plain` writes it; any other value as it is (settings, form
    values and snapshots that mix numbers with flags and text)."""
    return decimal_plain(value) if isinstance(value, Decimal) else value


def decimal_human(value: Decimal | None) -> str:
    """`decimal_plain` with thousands grouped, for people: 250000.000 -> "250,000",
    1234.50 -> "1,234.5"; None -> "" (the admin shows its own empty mark)."""
    if value is None:
        return ""
    return format(value.normalize(), ",f")


def number(value) -> float | None:
    """An ETRMS JSON number."""
    if value is None:
        return None
    return float(value)


def json_numbers(value):
    """`value` with every Decimal in it (dicts and lists included) turned into a JSON
    number, once: sums stay Decimal until here (74946.49, never 74946.48999999999)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_numbers(item) for item in value]
    return value


def iso_utc(value: datetime | str | None) -> str | None:
    """ISO 8601 in UTC with a `Z` (microseconds kept when present). Also takes the
    database's own text of a timestamp (lists read them as text: cheaper than Django's
    converters), naive meaning UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # SQLite's text: UTC already, nothing to convert
            return f"{value.isoformat()}Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def epoch_seconds(value: datetime | None) -> int | None:
    """ETRMS alert `triggered_at`: a unix epoch integer."""
    if value is None:
        return None
    return int(value.timestamp())
