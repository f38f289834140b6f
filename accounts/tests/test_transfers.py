"""Daily PnL from fills, never from transfers (issue 9 B2), and equity peaks moved by
transfers, with an officer's audited reset (issue 9 B8, the accounts side)."""

import logging
from decimal import Decimal

import pytest

from accounts.models import AccountDay, Balance
from accounts.services.balances import balance_peak_reset
from accounts.services.paper import paper_order_execute, paper_price_set, paper_transfer
from accounts.services.sync import account_sync
from accounts.testing import binance_server as binance_module

pytestmark = pytest.mark.django_db


def today_row(account) -> AccountDay:
    return AccountDay.objects.get(account=account)


@pytest.fixture
def no_fees(settings, monkeypatch):
    settings.PAPER_TAKER_FEE = 0
    monkeypatch.setattr(binance_module, "TAKER_FEE", Decimal(0))


def lose_60000_on_paper(account) -> None:
    account_sync(account=account)
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=Decimal(10))
    account_sync(account=account)
    paper_price_set(symbol="BTCUSDT", price=Decimal(54000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="sell", amount=Decimal(10), reduce_only=True)
    account_sync(account=account)


def test_60000_realised_loss_then_a_100000_deposit_daily_realized_pnl_stays_minus_60000_on_paper(
    paper_account, no_fees
):
    lose_60000_on_paper(paper_account)
    day = today_row(paper_account)
    assert day.realized_pnl == Decimal(-60000) and day.transfers == 0

    paper_transfer(account=paper_account, amount=Decimal(100000))
    result = account_sync(account=paper_account)

    day = today_row(paper_account)
    assert result.transfer == Decimal(100000)
    assert day.realized_pnl == Decimal(-60000)  # the old code read +40,000
    assert day.daily_pnl == Decimal(-60000)
    assert day.transfers == Decimal(100000)
    balance = Balance.objects.get(account=paper_account)
    assert balance.balance == Decimal(140000) and balance.net_transfers == Decimal(100000)


def test_60000_realised_loss_then_a_100000_deposit_daily_realized_pnl_stays_minus_60000_on_binance(
    binance_account, binance_server, no_fees
):
    binance_server.set_wallet(100000)
    account_sync(account=binance_account)  # the account's first sync: the baseline
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", 10)
    account_sync(account=binance_account)
    binance_server.set_price("BTCUSDT", 54000)
    binance_server.fill("BTCUSDT", "SELL", 10)
    account_sync(account=binance_account)
    assert today_row(binance_account).realized_pnl == Decimal(-60000)

    binance_server.deposit(100000)
    account_sync(account=binance_account)

    day = today_row(binance_account)
    assert day.realized_pnl == Decimal(-60000) and day.daily_pnl == Decimal(-60000)
    assert day.transfers == Decimal(100000)
    assert Balance.objects.get(account=binance_account).net_transfers == Decimal(100000)


def test_fees_and_funding_are_pnl_not_transfers(binance_account, binance_server):
    account_sync(account=binance_account)
    binance_server.set_price("ETHUSDT", 3000)
    binance_server.fill("ETHUSDT", "BUY", 2)
    account_sync(account=binance_account)
    binance_server.add_funding("ETHUSDT", "-1.5")
    binance_server.withdraw(500)
    result = account_sync(account=binance_account)
    day = today_row(binance_account)
    fee = Decimal(6000) * binance_module.TAKER_FEE
    assert result.transfer == Decimal(-500)
    assert day.realized_pnl == -fee - Decimal("1.5")
    assert day.transfers == Decimal(-500)
    balance = Balance.objects.get(account=binance_account)
    assert balance.net_transfers == Decimal(-500)
    assert balance.balance == Decimal(10000) - fee - Decimal("1.5") - Decimal(500)


def test_a_deposit_raises_the_equity_peak_and_a_withdrawal_lowers_it(paper_account, no_fees):
    lose_60000_on_paper(paper_account)
    balance = Balance.objects.get(account=paper_account)
    assert (balance.peak_equity, balance.equity) == (Decimal(100000), Decimal(40000))

    paper_transfer(account=paper_account, amount=Decimal(100000))
    account_sync(account=paper_account)
    balance.refresh_from_db()
    # Drawdown stays 60 %... of the 100,000 lost, not of the deposit: 200,000 -> 140,000.
    assert (balance.peak_equity, balance.equity) == (Decimal(200000), Decimal(140000))

    paper_transfer(account=paper_account, amount=Decimal(-40000))
    account_sync(account=paper_account)
    balance.refresh_from_db()
    assert (balance.peak_equity, balance.equity) == (Decimal(160000), Decimal(100000))
    assert balance.net_transfers == Decimal(60000)
    assert today_row(paper_account).transfers == Decimal(60000)


def test_a_withdrawal_at_the_peak_is_not_drawdown(paper_account):
    account_sync(account=paper_account)
    paper_transfer(account=paper_account, amount=Decimal(-30000))
    account_sync(account=paper_account)
    balance = Balance.objects.get(account=paper_account)
    assert balance.equity == Decimal(70000) and balance.peak_equity == Decimal(70000)
    assert today_row(paper_account).daily_pnl == 0


def test_paper_refuses_a_withdrawal_beyond_the_free_margin(paper_account):
    from accounts.exchanges import OrderRejected

    with pytest.raises(OrderRejected):
        paper_transfer(account=paper_account, amount=Decimal(-100001))


def test_an_officer_resets_the_drawdown_peak_audited(paper_account, officer, trader, no_fees, caplog):
    from etrms.errors import PermissionDenied

    lose_60000_on_paper(paper_account)
    with pytest.raises(PermissionDenied):
        balance_peak_reset(actor=trader, account=paper_account)
    with caplog.at_level(logging.INFO, logger="accounts.audit"):
        balance = balance_peak_reset(actor=officer, account=paper_account)
    assert balance.peak_equity == Decimal(40000)
    assert balance.peak_reset_by == officer and balance.peak_reset_at is not None
    assert "100000" in caplog.text and officer.username in caplog.text


def test_the_reset_drawdown_peak_admin_action_works_for_a_risk_officer(client, officer, paper_account, no_fees):
    assert not officer.is_superuser
    lose_60000_on_paper(paper_account)
    balance = Balance.objects.get(account=paper_account)
    client.force_login(officer)
    response = client.post(
        "/admin/accounts/balance/",
        {"action": "reset_drawdown_peak", "_selected_action": [balance.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 drawdown peak(s) reset." in response.content.decode()
    balance.refresh_from_db()
    assert balance.peak_equity == Decimal(40000) and balance.peak_reset_by == officer
