"""The pre-trade check cheap enough for a bot's every order (issue 15 item 2): a 100 x 50
book with desk caps in at most two queries once the per-version caches are warm (the
book and the desk's totals in one compiled query, paper's resting orders in another),
the desk's totals scoped to the order's symbol and exchange, not the book's, and paper's
resting orders read by the compiled query exactly as `paper_open_orders` reads them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import PaperOrder
from accounts.services.paper import paper_open_orders, paper_order_execute, paper_price_set, paper_wallet_ensure
from risk.models import ExchangeConfig, SymbolConfig
from risk.services.check_order import order_check, order_rules_cache_clear
from risk.services.check_order_rules import OrderRequest
from risk.services.config import global_config_get
from risk.services.request_loads import paper_resting_load
from risk.tests import books
from risk.tests.test_evaluate_cost import _book_100_by_50

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/api/v1/risk/check-order"


def test_check_order_100_positions_50_limits_with_desk_caps_in_at_most_two_queries(
    trader, trader_client, django_assert_max_num_queries
):
    _book_100_by_50(trader)
    config = global_config_get()
    config.max_total_exposure, config.max_leverage, config.max_orders_per_minute = D("1e9"), D(100), None
    config.save()
    SymbolConfig.objects.create(symbol="BTCUSDT", max_position_size=D("1e9"))
    ExchangeConfig.objects.create(exchange="paper", max_exposure=D("1e9"))
    paper = trader.exchange_accounts.get(exchange="paper")
    paper_wallet_ensure(account=paper)
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(
        account_id=paper.pk, symbol="BTCUSDT", side="buy", amount=D("0.01"), type="limit", price=D(50000)
    )
    order_rules_cache_clear()
    body = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.01", "price": "60000"}
    assert trader_client.post(URL, body, format="json").status_code == 200  # caches settle
    with django_assert_max_num_queries(2):
        response = trader_client.post(URL, body, format="json")
    assert response.status_code == 200
    assert response.json() == {"allowed": True, "reasons": [], "breaches": []}


def test_desk_cap_on_a_symbol_the_user_does_not_hold_counts_the_other_users(trader, make_user):
    """The desk's ETHUSDT net comes from another user's position although the trader
    holds none: at, just below and just above the cap."""
    config = global_config_get()
    config.max_orders_per_minute = None
    config.save()
    mine = books.account(trader, "paper")
    books.position(mine, "BTCUSDT", "long", size="1", entry="100")
    books.position(books.account(make_user(), "paper"), "ETHUSDT", "long", size="50", entry="100")  # 5,000
    SymbolConfig.objects.create(symbol="ETHUSDT", max_position_size=D(6000))
    order_rules_cache_clear()

    def check(quantity: str):
        order = OrderRequest(exchange="paper", symbol="ETHUSDT", side="buy", quantity=D(quantity), price=D(100))
        return order_check(user_id=trader.pk, order=order)

    assert check("9.99").allowed is True
    for quantity, after in (("10", "6000"), ("10.01", "6001")):
        refused = check(quantity)
        assert refused.allowed is False
        [breach] = refused.breaches
        assert (breach.source, breach.limit_type, breach.current_value, breach.after_value) == (
            "config",
            "position_size",
            D(5000),
            D(after),
        )
        assert "The desk's ETHUSDT position size would be 6,00" in refused.reasons[0]


def test_paper_resting_orders_from_the_compiled_query_equal_paper_open_orders(trader, make_user):
    """Open orders on two accounts, two symbols, closed and canceled ones, a market order
    without a price, reduce-only, a partial fill, three orders created at one instant
    (ties by id), and another user's: each (account, symbol) reads the same list."""
    paper, other_paper = books.account(trader, "paper"), books.account(make_user(), "paper")
    binance = books.account(trader, "binance")
    at = timezone.now()
    specs = [
        (paper, "BTCUSDT", "buy", "0.5", "0", "50000", "open", False),
        (paper, "BTCUSDT", "sell", "0.25", "0.1", "70000.125", "open", True),
        (paper, "BTCUSDT", "buy", "1", "0", None, "open", False),
        (paper, "BTCUSDT", "buy", "2", "2", "60000", "closed", False),
        (paper, "BTCUSDT", "sell", "3", "0", "61000", "canceled", False),
        (paper, "ETHUSDT", "buy", "4", "0", "3000", "open", False),
        (binance, "BTCUSDT", "buy", "5", "0", "59000", "open", False),
        (other_paper, "BTCUSDT", "buy", "6", "0", "58000", "open", False),
    ]
    for index, (account, symbol, side, amount, filled, price, status, reduce_only) in enumerate(specs):
        order = PaperOrder.objects.create(
            account=account,
            client_order_id=f"c{index}",
            symbol=symbol,
            side=side,
            type="limit" if price else "market",
            reduce_only=reduce_only,
            amount=D(amount),
            filled=D(filled),
            price=None if price is None else D(price),
            status=status,
            fee=D(0),
        )
        PaperOrder.objects.filter(pk=order.pk).update(created_at=at if index < 3 else at - timedelta(minutes=index))
    for account, symbol in ((paper, "BTCUSDT"), (paper, "btc/usdt"), (paper, "ETHUSDT"), (binance, "BTCUSDT")):
        expected = paper_open_orders(account_id=account.pk, symbol=symbol)
        assert paper_resting_load(user_id=trader.pk, account_id=account.pk, symbol=symbol) == expected
    assert len(paper_open_orders(account_id=paper.pk, symbol="BTCUSDT")) == 3
