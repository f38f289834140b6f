"""Knobs of the exchange layer (environment variables, read in etrms/settings.py).

EXCHANGE_TIMEOUT_SECONDS  per-request timeout of ccxt clients (default 10)
EXCHANGE_MARKETS_TTL_SECONDS  how long a process keeps an exchange's loaded markets (3600)
EXCHANGE_POLL_SECONDS  REST polling period of `watch_*` where a venue has no stream (2)
EXCHANGE_API_URLS  {exchange_id: "http://host:port"}: send that venue's REST and
    WebSocket traffic to another host (a proxy, or the local test server). ccxt's
    URLs keep their paths; only scheme and host change.
PAPER_PRICE_SEED  seed of the paper exchange's random walks (default 1)
PAPER_TICK_SECONDS  how often paper prices move and `watch_*` yields (default 1)
"""

from django.conf import settings


def timeout_seconds() -> float:
    return float(settings.EXCHANGE_TIMEOUT_SECONDS)


def markets_ttl_seconds() -> float:
    return float(settings.EXCHANGE_MARKETS_TTL_SECONDS)


def poll_seconds() -> float:
    return float(settings.EXCHANGE_POLL_SECONDS)


def api_url_override(exchange_id: str) -> str | None:
    return settings.EXCHANGE_API_URLS.get(exchange_id)


def paper_seed() -> int:
    return int(settings.PAPER_PRICE_SEED)


def paper_tick_seconds() -> float:
    return float(settings.PAPER_TICK_SECONDS)
