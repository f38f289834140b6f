"""Trades over ccxt: public trades, the account's fills (fees in other currencies
converted at the venue's price) and funding payments.

A mixin of `CcxtExchange` (which provides `_client`, `_call`, `_unified`, `_etrms`,
`load_markets` and `_usd_rate`).
"""

from datetime import datetime
from decimal import Decimal

from accounts.exchanges.base import LONG, SHORT, FundingPayment, Trade
from accounts.exchanges.ccxt_support import dec, dt, fee_currency, fees, ms
from accounts.exchanges.symbols import USD_QUOTES


class CcxtFills:
    def _trade(self, raw: dict, symbol: str, rates: dict[str, Decimal | None] | None = None) -> Trade:
        """`rates`: USD price of each non-USD fee currency (None: no price known; such a
        fee is left out of `fee` and named in `fee_unconverted`)."""
        info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
        fee = Decimal(0)
        unconverted = []
        for item in fees(raw):
            currency, cost = fee_currency(item), dec(item.get("cost")) or Decimal(0)
            rate = Decimal(1) if currency in USD_QUOTES else (rates or {}).get(currency)
            if rate is None:
                if cost:
                    unconverted.append(f"{cost} {currency}")
                continue
            fee += cost * rate
        position_side = str(info.get("positionSide") or "").lower()
        return Trade(
            symbol=symbol,
            id=str(raw.get("id")),
            price=dec(raw.get("price")),
            amount=dec(raw.get("amount")),
            side=raw.get("side"),
            timestamp=dt(raw.get("timestamp")),
            order_id=raw.get("order"),
            fee=fee,
            realized_pnl=dec(info.get("realizedPnl")),
            position_side=position_side if position_side in (LONG, SHORT) else None,
            fee_unconverted=", ".join(unconverted),
        )

    async def fetch_trades(self, symbol: str, limit: int = 50) -> list[Trade]:
        unified = await self._unified(symbol)
        raw = await self._call(self._client.fetch_trades(unified, None, limit))
        return [self._trade(item, self._etrms(unified)) for item in raw]

    async def fetch_my_trades(self, symbol: str, since: datetime | None = None, limit: int = 500) -> list[Trade]:
        unified = await self._unified(symbol)
        if not self._client.has.get("fetchMyTrades"):
            return []
        raw = await self._call(self._client.fetch_my_trades(unified, ms(since), limit))
        # Fees paid in another currency (BNB) are converted at the venue's <ASSET>USDT
        # price now (SPEC §3: never summed 1:1).
        symbol_map = await self.load_markets()
        currencies = {fee_currency(item) for trade in raw for item in fees(trade)} - set(USD_QUOTES)
        rates = {currency: await self._usd_rate(currency, symbol_map) for currency in sorted(currencies)}
        trades = [self._trade(item, self._etrms(unified), rates) for item in raw]
        return sorted(trades, key=lambda trade: (trade.timestamp, trade.id))

    async def fetch_funding_payments(self, symbol: str, since: datetime | None = None) -> list[FundingPayment]:
        unified = await self._unified(symbol)
        if not self._client.has.get("fetchFundingHistory"):
            return []
        raw = await self._call(self._client.fetch_funding_history(unified, ms(since)))
        return [
            FundingPayment(
                symbol=self._etrms(unified),
                amount=dec(item.get("amount")) or Decimal(0),
                timestamp=dt(item.get("timestamp")),
                id=str(item.get("id") or ""),
            )
            for item in raw
        ]
