"""A test-only view that reaches an exchange through the interface, so the mapping of
exchange errors to API responses is exercised end to end (@pytest.mark.urls)."""

from asgiref.sync import async_to_sync
from django.urls import include, path
from rest_framework.views import APIView

from accounts.exchanges import exchange_open
from etrms.api.responses import envelope


class TickerProbeApi(APIView):
    def get(self, request, exchange, symbol):
        async def fetch():
            async with exchange_open(exchange) as client:
                return await client.fetch_ticker(symbol)

        ticker = async_to_sync(fetch)()
        return envelope({"symbol": ticker.symbol, "last": float(ticker.last)}, message="Ticker")


urlpatterns = [
    path("api/v1/test/ticker/<str:exchange>/<str:symbol>", TickerProbeApi.as_view()),
    path("", include("etrms.urls")),
]
