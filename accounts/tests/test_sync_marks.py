"""Marks stamped when their answer arrived (issue 9 B11): one call for every symbol of
the account, and `mark_updated_at` is the moment the venue answered."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Position
from accounts.services.sync import account_sync

pytestmark = pytest.mark.django_db


def test_a_slow_venue_stamps_the_marks_after_the_delay(binance_account, binance_server):
    for symbol, price in (("BTCUSDT", 60000), ("ETHUSDT", 3000), ("SOLUSDT", 150)):
        binance_server.set_price(symbol, price)
        binance_server.fill(symbol, "BUY", "1")
    binance_server.set_price("ETHUSDT", 3100)
    binance_server.fail_next(kind="timeout", delay=1.5, path="/fapi/v1/premiumIndex")
    started = timezone.now()
    account_sync(account=binance_account)
    positions = {p.symbol: p for p in Position.objects.filter(account=binance_account)}
    assert set(positions) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    for position in positions.values():
        assert position.mark_updated_at >= started + timedelta(seconds=1.5)
    assert positions["ETHUSDT"].mark_price == Decimal(3100)
    assert positions["ETHUSDT"].unrealized_pnl == Decimal(100)
    # One mark-price call for the three symbols, no ticker per symbol.
    assert len(binance_server.requests_to("/fapi/v1/premiumIndex")) == 1
    assert not binance_server.requests_to("/fapi/v1/ticker/24hr")


def test_marks_fall_back_to_the_positions_answer_when_mark_prices_fail(binance_account, binance_server):
    binance_server.fill("BTCUSDT", "BUY", "1")
    binance_server.fail_next(status=503, path="/fapi/v1/premiumIndex")
    started = timezone.now()
    account_sync(account=binance_account)
    btc = Position.objects.get(account=binance_account)
    assert btc.mark_price == Decimal(60000) and btc.mark_updated_at >= started
    binance_account.refresh_from_db()
    assert not binance_account.last_sync_failed


def test_paper_marks_are_stamped_when_computed(paper_account):
    from accounts.services.paper import paper_order_execute, paper_price_set

    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1))
    started = timezone.now()
    account_sync(account=paper_account)
    paper_account.refresh_from_db()
    btc = Position.objects.get(account=paper_account)
    assert btc.mark_updated_at >= started and btc.mark_updated_at > paper_account.last_synced_at
