"""Success without a fill (issue 9 B5, the accounts side): a reduce-only market order
reports what the venue really did, so the risk layer can tell filled from partial,
unfilled, expired and rejected."""

from decimal import Decimal

import pytest

from accounts.exchanges import EXPIRED, FILLED, NOT_FILLED, PARTIALLY_FILLED, OrderRejected
from accounts.models import Position
from accounts.services.sync import account_sync
from accounts.services.trading import position_close

pytestmark = pytest.mark.django_db


@pytest.fixture
def btc_long(binance_account, binance_server):
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5")
    account_sync(account=binance_account)
    return Position.objects.get(account=binance_account, symbol="BTCUSDT", closed_at__isnull=True)


def size_now(account) -> Decimal:
    row = Position.objects.filter(account=account, symbol="BTCUSDT", closed_at__isnull=True).first()
    return row.size if row else Decimal(0)


def test_a_filled_close_reports_filled_asking_binance_for_the_result(btc_long, binance_server):
    order = position_close(position=btc_long, client_order_id="cb-filled")
    assert (order.status, order.filled, order.amount) == (FILLED, Decimal("0.5"), Decimal("0.5"))
    assert order.fully_filled and order.average_price == Decimal(60000)
    sent = binance_server.requests_to("/fapi/v1/order")[0]
    assert sent.method == "POST" and sent.params["newOrderRespType"] == "RESULT"


def test_an_acknowledged_order_with_nothing_filled_is_not_success(btc_long, binance_server):
    binance_server.script_next_order("NEW")
    order = position_close(position=btc_long, client_order_id="cb-new")
    assert (order.status, order.filled, order.amount) == (NOT_FILLED, Decimal(0), Decimal("0.5"))
    assert not order.fully_filled and order.average_price is None
    # The answer said "working": the order was read again before reporting.
    assert [request.method for request in binance_server.requests_to("/fapi/v1/order")] == ["POST", "GET"]
    assert size_now(btc_long.account) == Decimal("0.5")


def test_a_partially_filled_order_reports_the_part_filled(btc_long, binance_server):
    binance_server.script_next_order("PARTIALLY_FILLED", filled="0.2")
    order = position_close(position=btc_long, client_order_id="cb-partial")
    assert (order.status, order.filled, order.remaining) == (PARTIALLY_FILLED, Decimal("0.2"), Decimal("0.3"))
    assert not order.fully_filled
    assert size_now(btc_long.account) == Decimal("0.3")


@pytest.mark.parametrize("filled", [None, "0.1"])
def test_an_expired_order_is_not_success(btc_long, binance_server, filled):
    binance_server.script_next_order("EXPIRED", filled=filled)
    order = position_close(position=btc_long, client_order_id="cb-expired")
    assert order.status == EXPIRED and not order.fully_filled
    assert order.filled == Decimal(filled or 0)
    assert size_now(btc_long.account) == Decimal("0.5") - Decimal(filled or 0)


def test_a_rejected_order_raises(btc_long, binance_server):
    binance_server.set_position("BTCUSDT", 0, entry_price=60000)  # closed by hand meanwhile
    with pytest.raises(OrderRejected):
        position_close(position=btc_long, client_order_id="cb-rejected")


def test_paper_fills_at_the_mark_and_reports_filled(paper_account):
    from accounts.services.paper import paper_order_execute, paper_price_set

    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="buy", amount=Decimal(2))
    account_sync(account=paper_account)
    eth = Position.objects.get(account=paper_account, symbol="ETHUSDT")
    order = position_close(position=eth, client_order_id="cb-paper")
    assert (order.status, order.filled, order.average_price) == (FILLED, Decimal(2), Decimal(3000))
    assert order.fully_filled
