"""Positions' lifecycle (issue 9 B3 and B10, the accounts side): the peak entry notional
the max_drawdown breaker divides by, each hedge-mode leg on its own, the venue's
opening time, and a close and reopen between two syncs starting a new position."""

from decimal import Decimal

import pytest

from accounts.models import ClosedTrade, PaperPosition, PaperWallet, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from accounts.services.trading import position_close, position_reduce

pytestmark = pytest.mark.django_db


def open_positions(account):
    return {(p.symbol, p.side): p for p in Position.objects.filter(account=account, closed_at__isnull=True)}


def trade(account, side, amount, *, price=None, reduce_only=False, position_side=None):
    if price is not None:
        paper_price_set(symbol="BTCUSDT", price=Decimal(price))
    return paper_order_execute(
        account_id=account.pk,
        symbol="BTCUSDT",
        side=side,
        amount=Decimal(amount),
        reduce_only=reduce_only,
        position_side=position_side,
    )


# --- B3: the max_drawdown denominator ---------------------------------------------------
def test_long_10_at_50000_sell_8_at_52000_keeps_the_peak_entry_notional_of_500000(paper_account):
    account_sync(account=paper_account)
    trade(paper_account, "buy", 10, price=50000)
    account_sync(account=paper_account)
    btc = open_positions(paper_account)[("BTCUSDT", "long")]
    assert btc.peak_entry_notional == Decimal(500000)  # set on open

    trade(paper_account, "sell", 8, price=52000, reduce_only=True)
    account_sync(account=paper_account)
    btc.refresh_from_db()
    assert btc.size == Decimal(2) and btc.entry_notional == Decimal(100000)
    assert btc.peak_entry_notional == Decimal(500000)  # below the peak: unchanged

    trade(paper_account, "buy", 8, price=50000)  # back exactly at the peak
    account_sync(account=paper_account)
    btc.refresh_from_db()
    assert btc.peak_entry_notional == Decimal(500000)

    trade(paper_account, "buy", 2, price=50000)  # above it
    account_sync(account=paper_account)
    btc.refresh_from_db()
    assert btc.peak_entry_notional == Decimal(600000)


def test_the_peak_entry_notional_counts_a_size_reached_between_two_syncs(binance_account, binance_server):
    account_sync(account=binance_account)
    binance_server.set_price("BTCUSDT", 50000)
    binance_server.fill("BTCUSDT", "BUY", 10)
    binance_server.set_price("BTCUSDT", 52000)
    binance_server.fill("BTCUSDT", "SELL", 8)
    account_sync(account=binance_account)
    btc = open_positions(binance_account)[("BTCUSDT", "long")]
    assert btc.size == Decimal(2) and btc.peak_entry_notional == Decimal(500000)


# --- B10: hedge mode, each leg on its own ---------------------------------------------
@pytest.fixture
def hedged_paper(paper_account):
    PaperWallet.objects.filter(account=paper_account).update(hedge_mode=True)
    trade(paper_account, "buy", 2, price=60000, position_side="long")
    trade(paper_account, "sell", 1, position_side="short")
    account_sync(account=paper_account)
    return paper_account


def test_reducing_one_leg_of_a_hedged_symbol_leaves_the_other_alone(hedged_paper):
    legs = open_positions(hedged_paper)
    assert all(leg.hedged for leg in legs.values())
    order = position_reduce(position=legs[("BTCUSDT", "long")], reduce_pct=Decimal(50), client_order_id="cb-leg-1")
    assert order.fully_filled and order.filled == Decimal(1)
    legs = open_positions(hedged_paper)
    assert (legs[("BTCUSDT", "long")].size, legs[("BTCUSDT", "short")].size) == (Decimal(1), Decimal(1))

    paper_price_set(symbol="BTCUSDT", price=Decimal(59000))
    position_close(position=legs[("BTCUSDT", "short")], client_order_id="cb-leg-2")
    legs = open_positions(hedged_paper)
    assert set(legs) == {("BTCUSDT", "long")} and legs[("BTCUSDT", "long")].size == Decimal(1)
    closed = ClosedTrade.objects.get(account=hedged_paper)
    assert closed.side == "short" and closed.realized_pnl > 0  # the short won 1,000 less fees


def test_closing_both_legs_records_one_closed_trade_per_leg(hedged_paper):
    legs = open_positions(hedged_paper)
    paper_price_set(symbol="BTCUSDT", price=Decimal(61000))
    position_close(position=legs[("BTCUSDT", "long")], client_order_id="cb-a")
    position_close(position=legs[("BTCUSDT", "short")], client_order_id="cb-b")
    trades = {trade.side: trade for trade in ClosedTrade.objects.filter(account=hedged_paper)}
    assert trades["long"].realized_pnl > 0 > trades["short"].realized_pnl
    assert not open_positions(hedged_paper)


def test_a_hedged_binance_leg_is_closed_alone(binance_account, binance_server):
    binance_server.set_hedge_mode(True)
    binance_server.fill("ETHUSDT", "BUY", "1", position_side="LONG")
    binance_server.fill("ETHUSDT", "SELL", "2", position_side="SHORT")
    account_sync(account=binance_account)
    short = open_positions(binance_account)[("ETHUSDT", "short")]
    order = position_close(position=short, client_order_id="cb-eth-short")
    assert order.fully_filled and order.filled == Decimal(2)
    assert set(open_positions(binance_account)) == {("ETHUSDT", "long")}
    assert ClosedTrade.objects.get(account=binance_account).side == "short"


# --- B10: opened_at --------------------------------------------------------------------
def test_a_position_found_on_the_first_sync_keeps_the_venues_opening_time(paper_account):
    trade(paper_account, "buy", 1, price=60000)
    opened = PaperPosition.objects.get(account=paper_account).opened_at
    PaperPosition.objects.filter(account=paper_account).update(opened_at=opened.replace(year=opened.year - 1))
    account_sync(account=paper_account)
    btc = open_positions(paper_account)[("BTCUSDT", "long")]
    assert btc.opened_at == opened.replace(year=opened.year - 1)


def test_binance_gives_no_opening_time_so_the_first_sync_is_used(binance_account, binance_server):
    binance_server.fill("BTCUSDT", "BUY", "0.1")
    account_sync(account=binance_account)
    btc = open_positions(binance_account)[("BTCUSDT", "long")]
    binance_account.refresh_from_db()
    assert btc.opened_at == binance_account.last_synced_at  # updateTime is not an opening time


# --- B10: close and reopen between two syncs ----------------------------------------------
def test_a_close_and_reopen_between_two_syncs_starts_a_new_position_on_paper(paper_account, settings):
    settings.PAPER_TAKER_FEE = 0
    account_sync(account=paper_account)
    trade(paper_account, "buy", 1, price=60000)
    account_sync(account=paper_account)
    paper_price_set(symbol="BTCUSDT", price=Decimal(66000))
    account_sync(account=paper_account)
    old = open_positions(paper_account)[("BTCUSDT", "long")]
    assert old.best_price == Decimal(66000) and old.peak_pnl == Decimal(6000)

    trade(paper_account, "sell", 1, price=58000, reduce_only=True)  # a 2,000 loss
    trade(paper_account, "buy", 2, price=57000)
    result = account_sync(account=paper_account)

    assert result.closed == ["BTCUSDT long"] and result.opened == ["BTCUSDT long"]
    old.refresh_from_db()
    assert old.closed_at is not None and old.exit_price == Decimal(58000)
    assert ClosedTrade.objects.get(position=old).realized_pnl == Decimal(-2000)
    new = open_positions(paper_account)[("BTCUSDT", "long")]
    assert new.pk != old.pk and new.opened_at > old.opened_at
    assert (new.size, new.entry_price) == (Decimal(2), Decimal(57000))
    assert new.best_price == Decimal(57000) and new.peak_pnl == 0 and new.realized_pnl == 0
    assert new.peak_entry_notional == Decimal(114000)


def test_a_close_and_reopen_between_two_syncs_starts_a_new_position_on_binance(binance_account, binance_server):
    binance_server.set_price("SOLUSDT", 150)
    binance_server.fill("SOLUSDT", "SELL", "10")
    account_sync(account=binance_account)
    old = open_positions(binance_account)[("SOLUSDT", "short")]
    binance_server.set_price("SOLUSDT", 160)
    binance_server.fill("SOLUSDT", "BUY", "10")  # closed at a 100 loss
    binance_server.fill("SOLUSDT", "SELL", "4")  # reopened on the same side
    account_sync(account=binance_account)
    old.refresh_from_db()
    assert old.closed_at is not None
    assert ClosedTrade.objects.get(position=old).realized_pnl < 0
    new = open_positions(binance_account)[("SOLUSDT", "short")]
    assert new.pk != old.pk and new.size == Decimal(4) and new.best_price == Decimal(160)
