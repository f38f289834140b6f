"""Value formats of the two API documents: Phase 4's decimal strings, ETRMS's numbers,
ISO 8601 UTC timestamps with `Z`."""

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


def number(value) -> float | None:
    """An ETRMS JSON number."""
    if value is None:
        return None
    return float(value)


def iso_utc(value: datetime | str | None) -> str | None:
    """ISO 8601 in UTC with a `Z` (microseconds kept when present). Also takes the
    database's own text of a timestamp (lists read them as text: cheaper than Django's
    converters), naive meaning UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def epoch_seconds(value: datetime | None) -> int | None:
    """ETRMS alert `triggered_at`: a unix epoch integer."""
    if value is None:
        return None
    return int(value.timestamp())
