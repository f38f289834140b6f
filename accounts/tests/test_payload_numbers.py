"""ETRMS numbers (issue 10 C5): summed in Decimal, converted to JSON numbers once."""

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Position

pytestmark = pytest.mark.django_db


def test_totals_are_summed_in_decimal_and_converted_once(paper_account, trader_client):
    """Issue 10 C5: 30500.17 + 44446.32 read 74946.48999999999 when summed as floats."""
    now = timezone.now()
    for symbol, notional in (("BTCUSDT", "30500.17"), ("ETHUSDT", "44446.32")):
        Position.objects.create(
            account=paper_account,
            symbol=symbol,
            side="long",
            size=Decimal(1),
            entry_price=Decimal(notional),
            mark_price=Decimal(notional),
            mark_updated_at=now,
            notional=Decimal(notional),
            opened_at=now,
        )
    data = trader_client.get("/api/v1/positions/").json()["data"]
    assert data["total_position_value"] == 74946.49
    assert data["exchanges"]["paper"]["total_position_value"] == 74946.49
