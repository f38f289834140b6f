"""The paper exchange: deterministic prices, and books that behave like a venue's."""

import itertools
import time
from decimal import Decimal

import pytest

from accounts.exchanges import OrderRejected, UnknownSymbol
from accounts.exchanges.paper_prices import DEFAULT_MARKETS, walk_price
from accounts.models import PaperFill, PaperOrder, PaperPosition, PaperWallet
from accounts.services.paper import (
    paper_account_state,
    paper_market_upsert,
    paper_order_execute,
    paper_orders_cancel_all,
    paper_price,
    paper_price_set,
    paper_wallet_ensure,
)

pytestmark = pytest.mark.django_db
FEE = Decimal("0.0004")


def test_prices_are_a_deterministic_seeded_walk(settings):
    spec = DEFAULT_MARKETS["BTCUSDT"]
    moment = 1_800_000_000.0
    first = walk_price(spec, at=moment, seed=1, tick_seconds=1)
    assert first == walk_price(spec, at=moment, seed=1, tick_seconds=1)
    assert first != walk_price(spec, at=moment, seed=2, tick_seconds=1)
    # It moves tick by tick, within a plausible band of the base price.
    series = [walk_price(spec, at=moment + second, seed=1, tick_seconds=1) for second in range(120)]
    assert len(set(series)) > 60
    assert all(Decimal(30000) < price < Decimal(120000) for price in series)
    assert all(abs(b - a) / a < Decimal("0.01") for a, b in itertools.pairwise(series))
    # Every price sits on the tick size.
    assert all(price % spec.tick_size == 0 for price in series)
    settings.PAPER_PRICE_SEED = 1
    assert paper_price("BTCUSDT", at=moment) == first
    for symbol in ("ETHUSDT", "SOLUSDT"):
        assert paper_price(symbol) > 0


def test_a_pinned_price_wins_until_unpinned():
    paper_price_set(symbol="ETHUSDT", price=Decimal("2500.5"))
    assert paper_price("ETHUSDT") == Decimal("2500.5")
    paper_price_set(symbol="ETHUSDT", price=None)
    assert paper_price("ETHUSDT") != Decimal("2500.5")
    with pytest.raises(UnknownSymbol):
        paper_price_set(symbol="DOGEUSDT", price=Decimal(1))


def test_new_markets_can_be_listed():
    paper_market_upsert(symbol="DOGEUSDT", base_price=Decimal("0.15"), tick_size=Decimal("0.00001"))
    assert Decimal("0.05") < paper_price("DOGEUSDT") < Decimal("0.5")


@pytest.fixture
def wallet(paper_account):
    PaperWallet.objects.filter(account=paper_account).update(balance=Decimal(10000))
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    return paper_account


def test_market_orders_fill_at_the_mark_and_charge_fees(wallet):
    order = paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    assert (order.status, order.filled, order.average_price) == ("closed", Decimal("0.1"), Decimal(60000))
    assert order.fee == Decimal(6000) * FEE
    position = PaperPosition.objects.get(account=wallet, symbol="BTCUSDT")
    assert (position.side, position.size, position.entry_price) == ("long", Decimal("0.1"), Decimal(60000))
    assert PaperWallet.objects.get(account=wallet).balance == Decimal(10000) - order.fee

    paper_price_set(symbol="BTCUSDT", price=Decimal(62000))
    paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    position.refresh_from_db()
    assert position.size == Decimal("0.2") and position.entry_price == Decimal(61000)

    paper_price_set(symbol="BTCUSDT", price=Decimal(63000))
    close = paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="sell", amount=Decimal("0.2"), reduce_only=True
    )
    fill = PaperFill.objects.get(order=close)
    assert fill.realized_pnl == Decimal(400)  # (63000 - 61000) x 0.2
    assert not PaperPosition.objects.filter(account=wallet).exists()
    fees = sum(PaperOrder.objects.filter(account=wallet).values_list("fee", flat=True), Decimal(0))
    assert PaperWallet.objects.get(account=wallet).balance == Decimal(10000) + Decimal(400) - fees


def test_one_way_mode_flips_and_reduce_only_never_does(wallet):
    paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="sell", amount=Decimal("0.3"))
    position = PaperPosition.objects.get(account=wallet, symbol="BTCUSDT")
    assert (position.side, position.size) == ("short", Decimal("0.2"))
    reduce = paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1), reduce_only=True
    )
    assert reduce.filled == Decimal("0.2")  # capped at the position, no flip
    assert not PaperPosition.objects.filter(account=wallet).exists()
    with pytest.raises(OrderRejected):
        paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1), reduce_only=True)


def test_hedge_mode_holds_both_sides(paper_account):
    PaperWallet.objects.filter(account=paper_account).update(hedge_mode=True)
    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="buy", amount=Decimal(1))
    paper_order_execute(account_id=paper_account.pk, symbol="ETHUSDT", side="sell", amount=Decimal(2))
    sides = dict(PaperPosition.objects.filter(account=paper_account).values_list("side", "size"))
    assert sides == {"long": Decimal(1), "short": Decimal(2)}
    paper_order_execute(
        account_id=paper_account.pk,
        symbol="ETHUSDT",
        side="sell",
        amount=Decimal(1),
        reduce_only=True,
        position_side="long",
    )
    _, positions = paper_account_state(account_id=paper_account.pk)
    assert [(position.side, position.size, position.hedged) for position in positions] == [("short", Decimal(2), True)]


def test_margin_is_enforced(wallet):
    with pytest.raises(OrderRejected) as caught:
        paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal(2))  # 12,000 margin
    assert "insufficient" in str(caught.value.detail)
    assert not PaperOrder.objects.filter(account=wallet).exists()


def test_client_order_ids_make_retries_idempotent(wallet):
    first = paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"), client_order_id="retry-me"
    )
    second = paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"), client_order_id="retry-me"
    )
    assert first.pk == second.pk
    assert PaperPosition.objects.get(account=wallet).size == Decimal("0.1")


def test_limit_orders_rest_fill_when_crossed_and_cancel(wallet):
    resting = paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"), type="limit", price=Decimal(59000)
    )
    assert resting.status == "open"
    paper_order_execute(
        account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"), type="limit", price=Decimal(50000)
    )
    balance, _ = paper_account_state(account_id=wallet.pk)
    assert balance.margin_used == (Decimal(5900) + Decimal(5000)) / 10  # open orders hold margin
    paper_price_set(symbol="BTCUSDT", price=Decimal(58900))
    _, positions = paper_account_state(account_id=wallet.pk)
    assert [(position.size, position.entry_price) for position in positions] == [(Decimal("0.1"), Decimal(59000))]
    assert paper_orders_cancel_all(account_id=wallet.pk, symbol="BTCUSDT") == 1
    assert not PaperOrder.objects.filter(account=wallet, status="open").exists()


def test_state_reports_liquidation_and_margin_ratio(wallet):
    paper_order_execute(account_id=wallet.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.5"))
    balance, [position] = paper_account_state(account_id=wallet.pk)
    fee = Decimal(30000) * FEE
    assert balance.balance == Decimal(10000) - fee
    assert balance.maintenance_margin == Decimal(30000) * Decimal("0.005")
    assert balance.margin_ratio == balance.maintenance_margin / balance.equity
    # At the liquidation price equity equals the maintenance margin.
    liquidation = position.liquidation_price
    equity_there = balance.balance + (liquidation - Decimal(60000)) * Decimal("0.5")
    assert abs(equity_there - liquidation * Decimal("0.5") * Decimal("0.005")) < Decimal("0.01")
    assert position.timestamp.timestamp() == pytest.approx(time.time(), abs=5)


def test_wallet_is_created_once(paper_account):
    wallet = paper_wallet_ensure(account=paper_account, balance=Decimal(5))
    assert wallet.balance == Decimal(100000)  # created with the account already
