"""Job handlers of the realtime app (registered with the jobs registry at startup)."""

from rest_framework import serializers

from accounts.exchanges import UnknownSymbol, is_known_exchange, normalize_symbol
from accounts.fields import ExchangeIdField
from etrms.api.inputs import SymbolField
from jobs.registry import job_handler
from realtime.services.market_data import market_data_refresh


class RefreshMarketDataArgs(serializers.Serializer):
    symbols = serializers.ListField(
        child=SymbolField(max_length=40),
        min_length=1,
        max_length=200,
        help_text="The symbols to fetch and cache, e.g. ['BTCUSDT'].",
    )
    exchange = ExchangeIdField(
        max_length=32, required=False, allow_null=True, help_text="Default: the first monitored exchange, else paper."
    )

    def validate_symbols(self, values):
        try:
            return [normalize_symbol(value) for value in values]
        except UnknownSymbol as exc:
            raise serializers.ValidationError(str(exc.detail)) from None

    def validate_exchange(self, value):
        if value in (None, ""):
            return None
        value = value.strip().lower()
        if not is_known_exchange(value):
            raise serializers.ValidationError(f"Unknown exchange {value!r}.")
        return value


@job_handler(
    name="refresh_market_data",
    description="Fetch ticker, order book and recent trades of symbols and warm the market_data and price caches.",
    args=RefreshMarketDataArgs,
    default_priority="normal",
    officer_only=True,
)
def refresh_market_data(job, *, symbols, exchange=None) -> dict:
    return market_data_refresh(exchange=exchange, symbols=symbols)
