"""BTCUSDT <-> ccxt unified symbols, from the venue's markets."""

import pytest

from accounts.exchanges import SymbolMap, UnknownSymbol, normalize_symbol


def market(base, quote, *, kind="swap", settle=None, active=True):
    settle = settle or quote
    swap = kind == "swap"
    symbol = (
        f"{base}/{quote}:{settle}"
        if swap
        else f"{base}/{quote}"
        if kind == "spot"
        else f"{base}/{quote}:{settle}-261225"
    )
    return symbol, {
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle if kind != "spot" else None,
        "spot": kind == "spot",
        "swap": swap,
        "future": kind == "future",
        "linear": kind != "spot" and settle == quote,
        "active": active,
    }


def markets(*entries):
    return dict(entries)


def test_derivatives_venue_maps_to_the_linear_perpetual():
    symbol_map = SymbolMap(
        "binanceusdm",
        markets(
            market("BTC", "USDT", kind="future"),
            market("BTC", "USDT"),
            market("BTC", "USDT", kind="spot"),
            market("ETH", "USDT"),
            market("BTC", "USDC"),
        ),
    )
    assert symbol_map.unified("BTCUSDT") == "BTC/USDT:USDT"
    assert symbol_map.unified("btc/usdt") == "BTC/USDT:USDT"
    assert symbol_map.unified("BTCUSDC") == "BTC/USDC:USDC"
    assert symbol_map.etrms("BTC/USDC:USDC") == "BTCUSDC"
    assert symbol_map.etrms("BTC/USDT:USDT") == "BTCUSDT"
    assert symbol_map.symbols() == ["BTCUSDC", "BTCUSDT", "ETHUSDT"]


def test_spot_venue_maps_to_spot():
    symbol_map = SymbolMap("binance", markets(market("BTC", "USDT", kind="spot"), market("BTC", "USDT")))
    assert symbol_map.unified("BTCUSDT") == "BTC/USDT"


def test_hyperliquid_usdc_perpetual_answers_to_usdt_and_reads_back_as_usdt():
    symbol_map = SymbolMap("hyperliquid", markets(market("BTC", "USDC"), market("ETH", "USDC")))
    assert symbol_map.unified("BTCUSDT") == "BTC/USDC:USDC"
    assert symbol_map.unified("BTCUSDC") == "BTC/USDC:USDC"
    assert symbol_map.etrms("BTC/USDC:USDC") == "BTCUSDT"


def test_unknown_and_inactive_symbols_are_404():
    symbol_map = SymbolMap("bybit", markets(market("BTC", "USDT"), market("LUNA", "USDT", active=False)))
    for symbol in ("DOGEUSDT", "LUNAUSDT", "BTCEUR"):
        with pytest.raises(UnknownSymbol) as caught:
            symbol_map.unified(symbol)
        assert caught.value.status_code == 404
        assert "bybit" in str(caught.value.detail)
    assert not symbol_map.has("DOGEUSDT")


@pytest.mark.parametrize("bad", ["", "B", "BTC USDT!", None, "x" * 60])
def test_malformed_symbols_are_rejected(bad):
    with pytest.raises(UnknownSymbol):
        normalize_symbol(bad)


def test_normalize():
    assert normalize_symbol("eth-usdt") == "ETHUSDT"
    assert normalize_symbol("1000PEPE/USDT") == "1000PEPEUSDT"
