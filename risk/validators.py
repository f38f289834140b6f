"""Shared value checks: symbols, exchange ids. Raise Django's ValidationError, which the
admin shows on its form and the API's error handler turns into a 400."""

import re

from django.core.exceptions import ValidationError

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
