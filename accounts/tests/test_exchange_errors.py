"""Exchange failures become the project's errors: clear API answers and job failures,
never a 500, never a secret in the message."""

import types
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from accounts.exchanges import (
    Credentials,
    ExchangeAuthError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    UnknownSymbol,
)
from accounts.services.exchange_accounts import account_exchange, exchange_account_create
from accounts.services.sync import account_sync
from jobs.registry import handler_get

pytestmark = pytest.mark.django_db


def balance_of(account):
    async def fetch():
        async with account_exchange(account) as exchange:
            return await exchange.fetch_balance()

    return async_to_sync(fetch)()


def test_rate_limit_carries_retry_after(binance_account, binance_server):
    binance_server.fail_next(status=429, retry_after=7, path="/fapi/v3/account")
    with pytest.raises(ExchangeRateLimited) as caught:
        balance_of(binance_account)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7


def test_server_errors_are_unavailable_and_scrubbed(binance_account, binance_server):
    binance_server.fail_next(status=503, path="/fapi/v3/account")
    with pytest.raises(ExchangeUnavailable) as caught:
        balance_of(binance_account)
    assert caught.value.status_code == 503
    message = str(caught.value.detail)
    assert "binanceusdm" in message
    assert "signature=[redacted]" in message  # ccxt quotes the signed URL; the signature is gone
    assert binance_server.secret not in message and binance_server.api_key not in message


def test_timeouts_are_unavailable(binance_account, binance_server, settings):
    settings.EXCHANGE_TIMEOUT_SECONDS = 0.5
    binance_server.fail_next(kind="timeout", delay=1.5, path="/fapi/v3/account")
    with pytest.raises(ExchangeUnavailable):
        balance_of(binance_account)


def test_bad_signature_and_bad_key_are_auth_errors(binance_account, binance_server, trader):
    binance_server.fail_next(kind="bad_signature")
    with pytest.raises(ExchangeAuthError) as caught:
        balance_of(binance_account)
    assert caught.value.status_code == 502
    assert "Signature" in str(caught.value.detail)

    binance_account.delete()
    wrong = exchange_account_create(
        user_id=trader.pk, exchange="binanceusdm", credentials=Credentials(api_key="wrong", secret="wrong")
    )
    with pytest.raises(ExchangeAuthError):
        balance_of(wrong)


def test_the_server_really_checks_signatures(binance_server, trader):
    """The secret matters: ccxt signing with another secret is refused."""
    account = exchange_account_create(
        user_id=trader.pk,
        exchange="binanceusdm",
        credentials=Credentials(api_key=binance_server.api_key, secret="not-the-secret"),
    )
    with pytest.raises(ExchangeAuthError) as caught:
        balance_of(account)
    assert "-1022" in str(caught.value.detail)


def test_missing_credentials(binance_server, trader):
    account = exchange_account_create(user_id=trader.pk, exchange="binanceusdm")
    with pytest.raises(ExchangeAuthError) as caught:
        balance_of(account)
    assert "apiKey" in str(caught.value.detail)


def test_a_failed_sync_is_recorded_and_fails_the_job(binance_account, binance_server, trader):
    binance_server.fail_next(status=500, times=10)
    handler = handler_get("sync_portfolio")
    with pytest.raises(ExchangeUnavailable):
        handler.func(types.SimpleNamespace(user_id=trader.pk), exchange="binanceusdm")
    binance_account.refresh_from_db()
    assert binance_account.last_sync_failed
    assert "500" in binance_account.last_sync_error
    binance_server.failures.clear()
    account_sync(account=binance_account)
    binance_account.refresh_from_db()
    assert not binance_account.last_sync_failed and binance_account.last_sync_error == ""


@pytest.mark.urls("accounts.tests.urls")
class TestApiMapping:
    URL = "/api/v1/test/ticker/binanceusdm/{}"

    def assert_error(self, response, status):
        assert response.status_code == status, response.content
        body = response.json()
        assert body["status"] == "error" and body["data"] is None
        assert body["message"] == body["detail"]
        assert "Traceback" not in response.content.decode()
        return body

    def test_success(self, trader_client, binance_server):
        binance_server.set_price("BTCUSDT", Decimal(61234))
        response = trader_client.get(self.URL.format("BTCUSDT"))
        assert response.status_code == 200
        assert response.json()["data"] == {"symbol": "BTCUSDT", "last": 61234.0}

    def test_unknown_symbol_is_404(self, trader_client, binance_server):
        body = self.assert_error(trader_client.get(self.URL.format("DOGEUSDT")), 404)
        assert "DOGEUSDT" in body["message"]

    def test_rate_limited_is_429_with_retry_after(self, trader_client, binance_server):
        binance_server.fail_next(status=429, retry_after=5, path="/fapi/v1/ticker")
        response = trader_client.get(self.URL.format("BTCUSDT"))
        self.assert_error(response, 429)
        assert response["Retry-After"] == "5"

    def test_venue_down_is_503(self, trader_client, binance_server):
        binance_server.fail_next(status=502, path="/fapi/v1/exchangeInfo")
        self.assert_error(trader_client.get(self.URL.format("BTCUSDT")), 503)

    def test_unknown_exchange_is_404(self, trader_client):
        response = trader_client.get("/api/v1/test/ticker/nosuchvenue/BTCUSDT")
        self.assert_error(response, 404)


def test_unknown_symbol_error_is_not_found():
    assert UnknownSymbol().status_code == 404
