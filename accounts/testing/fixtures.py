"""Reusable pytest fixtures of the exchange layer (registered in the root conftest.py).

- `binance_server`: the local Binance USD-M server (`LocalBinanceServer`), reset for
  the test, with ccxt's `binanceusdm` pointed at it (`EXCHANGE_API_URLS`) and the
  process's market cache cleared. Its credentials: `binance_credentials`.
- `make_exchange_account(user, exchange="paper", **fields)`: an account through the
  service (a paper account gets its 100,000 USDT wallet; a `binanceusdm` one the local
  server's credentials).
- `paper_account`: the `trader` fixture's paper account.
"""

import pytest

from accounts.testing.binance_server import API_KEY, API_SECRET, LocalBinanceServer


@pytest.fixture(scope="session")
def binance_server_session():
    server = LocalBinanceServer().start()
    yield server
    server.stop()


@pytest.fixture
def binance_server(binance_server_session, settings):
    from accounts.exchanges import markets_cache_clear

    binance_server_session.reset()
    settings.EXCHANGE_API_URLS = {"binanceusdm": binance_server_session.url}
    settings.EXCHANGE_TIMEOUT_SECONDS = 3
    markets_cache_clear()
    yield binance_server_session
    markets_cache_clear()


@pytest.fixture
def binance_credentials():
    from accounts.exchanges import Credentials

    return Credentials(api_key=API_KEY, secret=API_SECRET)


@pytest.fixture
def make_exchange_account(db, binance_credentials):
    from accounts.services.exchange_accounts import exchange_account_create

    def make(user, exchange: str = "paper", **fields):
        if exchange == "binanceusdm":
            fields.setdefault("credentials", binance_credentials)
        return exchange_account_create(user_id=user.pk, exchange=exchange, **fields)

    return make


@pytest.fixture
def paper_account(make_exchange_account, trader):
    return make_exchange_account(trader, "paper", label="paper")
