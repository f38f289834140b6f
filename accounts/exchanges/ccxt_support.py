"""Helpers of the ccxt implementation: the per-process markets cache, the client
class for a venue, URL rewriting for local servers, and value parsing."""

import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit, urlunsplit

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from accounts.exchanges import config
from accounts.exchanges.errors import UnknownExchange
from accounts.exchanges.symbols import SymbolMap


class _MarketsCache:
    """Loaded markets per process and venue (and host), so a new client costs no call."""

    def __init__(self):
        self._entries: dict[tuple, tuple[float, dict, dict | None, SymbolMap]] = {}

    def get(self, key: tuple):
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > config.markets_ttl_seconds():
            return None
        return entry

    def put(self, key: tuple, markets: dict, currencies: dict | None, symbol_map: SymbolMap) -> None:
        self._entries[key] = (time.monotonic(), markets, currencies, symbol_map)

    def clear(self) -> None:
        self._entries.clear()


markets_cache = _MarketsCache()


def client_class(exchange_id: str):
    """ccxt.pro's class where the venue streams, else ccxt's async REST class."""
    cls = getattr(ccxt_pro, exchange_id, None) if exchange_id in ccxt_pro.exchanges else None
    if cls is None and exchange_id in ccxt.exchanges:
        cls = getattr(ccxt_async, exchange_id, None)
    if cls is None:
        raise UnknownExchange(f"Unknown exchange {exchange_id!r}.")
    return cls


def rewrite_urls(value, base):
    """Point every URL of a ccxt `urls['api']` tree at `base` (keeping the paths)."""
    if isinstance(value, dict):
        return {key: rewrite_urls(item, base) for key, item in value.items()}
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        scheme = base.scheme
        if parts.scheme in ("ws", "wss"):
            scheme = "wss" if base.scheme == "https" else "ws"
        return urlunsplit((scheme, base.netloc, parts.path, parts.query, parts.fragment))
    return value


def dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def dt(ms) -> datetime:
    if ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def fees(raw: dict) -> list[dict]:
    return [item for item in (raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])) if item]


def fee_currency(item: dict) -> str:
    return str(item.get("currency") or "USDT").upper()


def assets(raw: dict) -> dict:
    return {
        asset: str(total)
        for asset, total in (raw.get("total") or {}).items()
        if total not in (None, 0, "0") and isinstance(asset, str)
    }
