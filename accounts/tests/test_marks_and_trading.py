"""Feed marks between syncs, and the breaker actions sent through the interface."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.exchanges import OrderRejected
from accounts.models import ClosedTrade, PaperOrder, Position
from accounts.services.marks import positions_marks_update
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from accounts.services.trading import orders_cancel_all, position_close, position_reduce

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper_btc(paper_account):
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1))
    account_sync(account=paper_account)
    return Position.objects.get(account=paper_account, symbol="BTCUSDT", closed_at__isnull=True)


def test_marks_move_pnl_best_price_and_peak(
    paper_btc, make_exchange_account, officer, position_events, django_capture_on_commit_callbacks
):
    other = make_exchange_account(officer, "paper")
    paper_order_execute(account_id=other.pk, symbol="BTCUSDT", side="sell", amount=Decimal(2))
    account_sync(account=other)
    position_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        moved = positions_marks_update(exchange="paper", prices={"BTCUSDT": Decimal(63000)})
    assert len(moved) == 2
    paper_btc.refresh_from_db()
    assert (paper_btc.mark_price, paper_btc.unrealized_pnl, paper_btc.notional) == (63000, 3000, 63000)
    assert paper_btc.best_price == Decimal(63000) and paper_btc.peak_pnl == Decimal(3000)
    short = Position.objects.get(account=other)
    assert short.unrealized_pnl == Decimal(-6000) and short.best_price == Decimal(60000)
    assert position_events == [
        {"user_ids": {paper_btc.account.user_id, officer.pk}, "exchange": "paper", "symbols": {"BTCUSDT"}}
    ]

    positions_marks_update(exchange="paper", prices={"BTCUSDT": Decimal(61000)})
    paper_btc.refresh_from_db()
    assert paper_btc.best_price == Decimal(63000) and paper_btc.peak_pnl == Decimal(3000)
    assert paper_btc.unrealized_pnl == Decimal(1000)

    stale = timezone.now() - timedelta(minutes=1)
    assert positions_marks_update(exchange="paper", prices={"BTCUSDT": Decimal(1)}, at=stale) == []
    assert positions_marks_update(exchange="binanceusdm", prices={"BTCUSDT": Decimal(1)}) == []


def test_close_a_paper_position_for_real(paper_btc):
    stale_copy = Position.objects.get(pk=paper_btc.pk)
    paper_price_set(symbol="BTCUSDT", price=Decimal(59000))
    order = position_close(position=paper_btc, client_order_id="breaker-7-position-1")
    assert (order.filled, order.average_price) == (Decimal(1), Decimal(59000))
    paper_btc.refresh_from_db()
    assert paper_btc.closed_at is not None  # re-synced at once
    trade = ClosedTrade.objects.get(position=paper_btc)
    assert trade.realized_pnl == Decimal(-1000) - Decimal(59000) * Decimal("0.0004")
    # A retry with the same client order id (from a path that still saw it open)
    # answers with the first order and sends nothing.
    retry = position_close(position=stale_copy, client_order_id="breaker-7-position-1")
    assert retry.id == order.id
    assert PaperOrder.objects.filter(account=paper_btc.account).count() == 2  # the opening order and the close
    with pytest.raises(OrderRejected):
        position_close(position=paper_btc, client_order_id="breaker-8")  # closed: nothing to do


def test_reduce_a_binance_position_by_half(binance_account, binance_server):
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5")
    account_sync(account=binance_account)
    position = Position.objects.get(account=binance_account, closed_at__isnull=True)
    order = position_reduce(position=position, reduce_pct=Decimal(50), client_order_id="breaker-2-position-9")
    assert order.filled == Decimal("0.25")
    sent = binance_server.requests_to("/fapi/v1/order")[-1].params
    assert sent["reduceOnly"] == "true" and sent["type"] == "MARKET" and sent["side"] == "SELL"
    position.refresh_from_db()
    assert position.size == Decimal("0.25")
    with pytest.raises(OrderRejected):
        position_reduce(position=position, reduce_pct=Decimal(0), client_order_id="x")


def test_close_in_hedge_mode_names_the_side(binance_account, binance_server):
    binance_server.set_hedge_mode(True)
    binance_server.fill("ETHUSDT", "SELL", "3", position_side="SHORT")
    binance_server.fill("ETHUSDT", "BUY", "1", position_side="LONG")
    account_sync(account=binance_account)
    short = Position.objects.get(account=binance_account, side="short")
    position_close(position=short, client_order_id="close-short")
    sent = binance_server.requests_to("/fapi/v1/order")[-1].params
    assert sent["positionSide"] == "SHORT" and sent["side"] == "BUY" and "reduceOnly" not in sent
    assert list(
        Position.objects.filter(account=binance_account, closed_at__isnull=True).values_list("side", flat=True)
    ) == ["long"]


def test_cancel_all_orders_of_a_symbol(binance_account, binance_server, paper_account):
    binance_server.add_open_order("SOLUSDT", "BUY", "1", price=100)
    result = orders_cancel_all(account=binance_account, symbol="SOLUSDT")
    assert (result.exchange, result.symbol, result.cancelled) == ("binanceusdm", "SOLUSDT", 1)
    assert binance_server.requests_to("/fapi/v1/allOpenOrders")[-1].params["symbol"] == "SOLUSDT"
    paper_order_execute(
        account_id=paper_account.pk, symbol="ETHUSDT", side="buy", amount=Decimal(1), type="limit", price=Decimal(1)
    )
    assert orders_cancel_all(account=paper_account, symbol="ETHUSDT").cancelled == 1
