"""Quote currencies (issue 9 B9): USDT, USDC and USD sum 1:1 (SPEC §3); a position
quoted in anything else is refused with a clear error on the sync, and fees paid in
another currency (BNB) are converted at the venue's price."""

from decimal import Decimal

import pytest

from accounts.models import Balance, Position
from accounts.services.paper import paper_market_upsert, paper_order_execute
from accounts.services.sync import account_sync
from accounts.testing import binance_server as binance_module

pytestmark = pytest.mark.django_db


def test_an_ethbtc_position_on_binance_is_refused_with_a_clear_error(binance_account, binance_server):
    binance_server.add_market("ETHBTC", "ETH", "BTC", "0.05")
    binance_server.set_position("ETHBTC", 10, entry_price="0.05")
    binance_server.fill("BTCUSDT", "BUY", "0.1")
    result = account_sync(account=binance_account)
    assert result.opened == ["BTCUSDT long"]  # the USD-quoted book is synced
    assert not Position.objects.filter(symbol="ETHBTC").exists()
    assert result.errors and "ETHBTC long is quoted in BTC" in result.errors[0]
    binance_account.refresh_from_db()
    assert "ETHBTC long is quoted in BTC: not synced" in binance_account.last_sync_error
    assert not binance_account.last_sync_failed  # the rest of the account is fresh


def test_an_ethbtc_position_on_paper_is_refused_with_a_clear_error(paper_account):
    paper_market_upsert(symbol="ETHBTC", base_price=Decimal("0.05"), quote="BTC")
    paper_order_execute(account_id=paper_account.pk, symbol="ETHBTC", side="buy", amount=Decimal(1))
    result = account_sync(account=paper_account)
    assert not Position.objects.filter(account=paper_account).exists()
    assert "ETHBTC long is quoted in BTC" in " ".join(result.errors)
    assert result.as_dict()["errors"] == result.errors


def test_a_fee_paid_in_bnb_is_converted_at_the_bnbusdt_price(binance_account, binance_server):
    binance_server.add_market("BNBUSDT", "BNB", "USDT", 600)
    binance_server.set_wallet(5, asset="BNB")
    account_sync(account=binance_account)
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5", commission_asset="BNB")  # 12 USDT = 0.02 BNB
    result = account_sync(account=binance_account)
    btc = Position.objects.get(account=binance_account, symbol="BTCUSDT")
    fee = Decimal(30000) * binance_module.TAKER_FEE
    assert btc.realized_pnl == -fee  # not -0.02 (BNB summed 1:1), not 0 (left out)
    assert result.transfer == 0  # the wallet's BNB went down by what the fee explains
    assert Balance.objects.get(account=binance_account).net_transfers == 0
