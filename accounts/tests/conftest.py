"""Fixtures of the accounts tests (the exchange fixtures live in accounts.testing.fixtures,
registered in the root conftest.py)."""

import pytest

from accounts import events


@pytest.fixture
def binance_account(make_exchange_account, trader, binance_server):
    return make_exchange_account(trader, "binanceusdm", label="binance")


@pytest.fixture
def position_events():
    """Every positions_changed call made while the test runs (after commit)."""
    calls: list[dict] = []

    def listener(**kwargs):
        calls.append(kwargs)

    events.on_positions_changed(listener)
    yield calls
    events.positions_changed_listeners.remove(listener)
