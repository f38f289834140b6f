"""Sync: positions opened, updated and closed from the venue, with the tracking the risk
engine needs (realized PnL with fees and funding, peaks, best prices, daily rows)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.exchanges import ExchangeUnavailable
from accounts.models import AccountDay, Balance, ClosedTrade, MonitoringState, PaperWallet, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync, portfolios_sync_all

pytestmark = pytest.mark.django_db
FEE = Decimal("0.0004")


def open_positions(account):
    return {(p.symbol, p.side): p for p in Position.objects.filter(account=account, closed_at__isnull=True)}


def test_first_paper_sync_creates_snapshots(paper_account, position_events, django_capture_on_commit_callbacks):
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.5"))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="sell", amount=Decimal(4))
    paper_price_set(symbol="BTCUSDT", price=Decimal(61000))

    with django_capture_on_commit_callbacks(execute=True):
        result = account_sync(account=paper_account)

    assert sorted(result.opened) == ["BTCUSDT long", "ETHUSDT short"]
    positions = open_positions(paper_account)
    btc = positions[("BTCUSDT", "long")]
    assert (btc.size, btc.entry_price, btc.mark_price) == (Decimal("0.5"), Decimal(60000), Decimal(61000))
    assert (btc.notional, btc.unrealized_pnl, btc.leverage) == (Decimal(30500), Decimal(500), Decimal(10))
    assert btc.best_price == Decimal(61000) and btc.peak_pnl == Decimal(500)
    assert btc.realized_pnl == 0  # nothing before the first sync is attributed
    assert btc.liquidation_price is None  # 100,000 USDT wallet: far away
    assert btc.margin_ratio is not None

    balance = Balance.objects.get(account=paper_account)
    fees = (Decimal(30000) + Decimal(12000)) * FEE
    assert balance.balance == Decimal(100000) - fees
    assert balance.equity == balance.balance + Decimal(500)
    assert balance.peak_equity == balance.equity
    assert balance.margin_used == (Decimal(30500) + Decimal(12000)) / 10
    day = AccountDay.objects.get(account=paper_account)
    assert day.date == timezone.now().date() and day.daily_pnl == 0
    paper_account.refresh_from_db()
    assert paper_account.last_synced_at and not paper_account.last_sync_failed

    assert position_events == [
        {"user_ids": {paper_account.user_id}, "exchange": "paper", "symbols": {"BTCUSDT", "ETHUSDT"}}
    ]


def test_a_sync_that_moves_only_the_balance_is_announced(
    paper_account, position_events, django_capture_on_commit_callbacks
):
    """No position changed, but equity did (a fee, funding, a transfer): risk must hear it."""
    with django_capture_on_commit_callbacks(execute=True):
        account_sync(account=paper_account)
    assert position_events == [{"user_ids": {paper_account.user_id}, "exchange": "paper", "symbols": set()}]


def test_marks_peaks_and_best_prices_follow_the_venue(paper_account):
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1))
    account_sync(account=paper_account)
    for price in (62000, 61000):
        paper_price_set(symbol="BTCUSDT", price=Decimal(price))
        result = account_sync(account=paper_account)
    assert result.updated == ["BTCUSDT long"]
    btc = open_positions(paper_account)[("BTCUSDT", "long")]
    assert (btc.mark_price, btc.unrealized_pnl) == (Decimal(61000), Decimal(1000))
    assert btc.best_price == Decimal(62000)
    assert btc.peak_pnl == Decimal(2000)
    balance = Balance.objects.get(account=paper_account)
    assert balance.peak_equity == balance.equity + Decimal(1000)


def test_paper_round_trip_records_a_closed_trade_net_of_fees(paper_account):
    account_sync(account=paper_account)  # the account is known before the position opens
    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="sell", amount=Decimal(2))
    account_sync(account=paper_account)
    eth = open_positions(paper_account)[("ETHUSDT", "short")]
    assert eth.realized_pnl == -(Decimal(6000) * FEE)  # the opening fee

    paper_price_set(symbol="ETHUSDT", price=Decimal(3100))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="buy", amount=Decimal(2), reduce_only=True)
    result = account_sync(account=paper_account)
    assert result.closed == ["ETHUSDT short"]
    eth.refresh_from_db()
    assert eth.closed_at is not None and eth.exit_price == Decimal(3100)
    trade = ClosedTrade.objects.get(position=eth)
    expected = Decimal(-200) - Decimal(6000) * FEE - Decimal(6200) * FEE
    assert trade.realized_pnl == eth.realized_pnl == expected
    assert trade.realized_pnl < 0 and trade.side == "short" and trade.size == Decimal(2)
    assert not open_positions(paper_account)

    account_sync(account=paper_account)  # fills are counted once
    assert ClosedTrade.objects.get(position=eth).realized_pnl == expected


def test_binance_round_trip_with_funding(binance_account, binance_server):
    account_sync(account=binance_account)
    assert not open_positions(binance_account)

    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5")
    result = account_sync(account=binance_account)
    assert result.opened == ["BTCUSDT long"]
    btc = open_positions(binance_account)[("BTCUSDT", "long")]
    open_fee = Decimal(30000) * FEE
    assert btc.realized_pnl == -open_fee
    assert btc.leverage == Decimal(10) and btc.liquidation_price > 0
    assert btc.margin_ratio is not None and btc.maintenance_margin == Decimal(120)

    binance_server.set_price("BTCUSDT", 62000)
    binance_server.add_funding("BTCUSDT", "-2.5")
    account_sync(account=binance_account)
    btc.refresh_from_db()
    assert btc.realized_pnl == -open_fee - Decimal("2.5")
    assert btc.unrealized_pnl == Decimal(1000) and btc.best_price == Decimal(62000)
    assert btc.peak_pnl == Decimal(1000) - open_fee - Decimal("2.5")

    binance_server.set_price("BTCUSDT", 61000)
    binance_server.fill("BTCUSDT", "SELL", "0.2")
    account_sync(account=binance_account)
    btc.refresh_from_db()
    assert btc.size == Decimal("0.3")
    partial = Decimal(200) - Decimal(12200) * FEE  # (61000 - 60000) x 0.2, minus its fee
    assert btc.realized_pnl == -open_fee - Decimal("2.5") + partial

    binance_server.fill("BTCUSDT", "SELL", "0.3")
    result = account_sync(account=binance_account)
    assert result.closed == ["BTCUSDT long"]
    trade = ClosedTrade.objects.get(position=btc)
    assert trade.realized_pnl == -open_fee - Decimal("2.5") + partial + Decimal(300) - Decimal(18300) * FEE
    assert trade.exit_price == Decimal(61000)
    balance = Balance.objects.get(account=binance_account)
    assert balance.balance == Decimal(10000) + trade.realized_pnl  # the wallet agrees
    day = AccountDay.objects.get(account=binance_account)
    assert day.realized_pnl == trade.realized_pnl
    assert day.daily_pnl == balance.equity - day.start_equity


def test_a_flip_closes_one_side_and_opens_the_other(binance_account, binance_server):
    binance_server.set_price("SOLUSDT", 150)
    binance_server.fill("SOLUSDT", "BUY", "10")
    account_sync(account=binance_account)
    binance_server.set_price("SOLUSDT", 140)
    binance_server.fill("SOLUSDT", "SELL", "30")
    result = account_sync(account=binance_account)
    assert result.closed == ["SOLUSDT long"] and result.opened == ["SOLUSDT short"]
    short = open_positions(binance_account)[("SOLUSDT", "short")]
    assert short.size == Decimal(20) and short.entry_price == Decimal(140)
    assert short.peak_pnl == short.realized_pnl + short.unrealized_pnl  # tracking restarted
    assert ClosedTrade.objects.get(symbol="SOLUSDT").realized_pnl == Decimal(-100) - Decimal(4200) * FEE


def test_hedge_mode_lists_both_sides(binance_account, binance_server):
    binance_server.set_hedge_mode(True)
    binance_server.fill("ETHUSDT", "BUY", "1", position_side="LONG")
    binance_server.fill("ETHUSDT", "SELL", "2", position_side="SHORT")
    account_sync(account=binance_account)
    positions = open_positions(binance_account)
    assert set(positions) == {("ETHUSDT", "long"), ("ETHUSDT", "short")}
    assert all(position.hedged for position in positions.values())
    binance_server.fill("ETHUSDT", "SELL", "1", position_side="LONG")
    result = account_sync(account=binance_account)
    assert result.closed == ["ETHUSDT long"]
    assert set(open_positions(binance_account)) == {("ETHUSDT", "short")}


def test_a_day_starts_from_the_last_values_before_midnight(paper_account):
    yesterday = timezone.now().date() - timedelta(days=1)
    AccountDay.objects.create(
        account=paper_account,
        date=yesterday,
        start_balance=Decimal(90000),
        start_equity=Decimal(90000),
        start_unrealized=0,
        last_balance=Decimal(99000),
        last_equity=Decimal(99500),
        last_unrealized=Decimal(500),
        updated_at=timezone.now() - timedelta(days=1),
    )
    account_sync(account=paper_account)
    today = AccountDay.objects.get(account=paper_account, date=timezone.now().date())
    assert (today.start_balance, today.start_equity, today.start_unrealized) == (
        Decimal(99000),
        Decimal(99500),
        Decimal(500),
    )
    # The wallet's move from 99,000 to 100,000 came with no fill: it is no PnL (an
    # account's first sync counts no history; later, such a move is a transfer).
    assert today.realized_pnl == 0
    assert today.daily_pnl == Decimal(-500)  # unrealized went from 500 to 0


def test_an_older_read_never_overwrites_a_newer_one(paper_account):
    account_sync(account=paper_account)
    paper_account.refresh_from_db()
    future = timezone.now() + timedelta(minutes=5)
    type(paper_account).objects.filter(pk=paper_account.pk).update(last_synced_at=future)
    paper_account.refresh_from_db()
    assert account_sync(account=paper_account).skipped


def test_sync_all_survives_one_failing_account(
    paper_account, binance_server, make_exchange_account, officer, position_events
):
    make_exchange_account(officer, "binanceusdm")
    binance_server.fail_next(status=503, times=20)
    result = portfolios_sync_all()
    assert result["accounts"] == 2
    assert [item["exchange"] for item in result["synced"]] == ["paper"]
    assert [item["exchange"] for item in result["failed"]] == ["binanceusdm"]
    state = MonitoringState.objects.get(pk=1)
    assert state.last_sync_at and "binanceusdm" in state.last_error and state.last_error_at

    with pytest.raises(ExchangeUnavailable):
        portfolios_sync_all(exchanges=["binanceusdm"])
    binance_server.failures.clear()
    result = portfolios_sync_all(exchanges=["binanceusdm"])
    assert result["failed"] == [] and MonitoringState.objects.get(pk=1).last_error == ""


def test_disabled_accounts_are_not_synced(paper_account):
    type(paper_account).objects.filter(pk=paper_account.pk).update(enabled=False)
    assert portfolios_sync_all()["accounts"] == 0
    assert PaperWallet.objects.filter(account=paper_account).exists()
