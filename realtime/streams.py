"""The market-data streams on Redis (SPEC §7, §11): the feed PUBLISHes each tick once,
serialised once; every web process holds one SUBSCRIBE per stream and fans the frame
out to its own sockets.

Frames are Phase 4's formats plus `exchange`:
    ticker: {"channel": "ticker", "symbol", "exchange", "price", "change_24h",
             "volume_24h", "timestamp"}
    trades: {"channel": "trades", "symbol", "exchange", "price", "quantity", "side",
             "trade_id", "timestamp"}
Prices and quantities are decimal strings; `change_24h` is percent.
"""

import json
from datetime import datetime

from django.conf import settings

from etrms.formatting import decimal_str

TICKER_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "market:ticker"
TRADES_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "market:trades"


def iso_z(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ticker_frame(*, exchange: str, ticker) -> str:
    """A Phase 4 ticker frame for an `accounts.exchanges.Ticker`, as JSON text."""
    return json.dumps(
        {
            "channel": "ticker",
            "symbol": ticker.symbol,
            "exchange": exchange,
            "price": decimal_str(ticker.last),
            "change_24h": decimal_str(ticker.change_pct) if ticker.change_pct is not None else None,
            "volume_24h": decimal_str(ticker.volume) if ticker.volume is not None else None,
            "timestamp": iso_z(ticker.timestamp),
        },
        separators=(",", ":"),
    )


def trade_frame(*, exchange: str, trade) -> str:
    """A trades frame for an `accounts.exchanges.Trade`, as JSON text."""
    return json.dumps(
        {
            "channel": "trades",
            "symbol": trade.symbol,
            "exchange": exchange,
            "price": decimal_str(trade.price),
            "quantity": decimal_str(trade.amount),
            "side": trade.side,
            "trade_id": str(trade.id),
            "timestamp": iso_z(trade.timestamp),
        },
        separators=(",", ":"),
    )
