"""Orders over ccxt: the reduce-only market orders of breaker actions, reported as the
venue really executed them (SPEC §5: success means filled), and cancel-all.

A mixin of `CcxtExchange` (which provides `_client`, `_call`, `_unified`, `_etrms`).
"""

import hashlib
import re
from decimal import Decimal

from accounts.exchanges.base import NOT_FILLED, PARTIALLY_FILLED, OpenOrder, OrderResult, order_status
from accounts.exchanges.errors import ExchangeError

# Venues whose market orders need a reference price (ccxt derives the slippage limit).
_MARKET_ORDERS_NEED_PRICE = frozenset({"hyperliquid"})
# Venues that answer an order with its execution when asked (Binance's
# `newOrderRespType=RESULT`: the final status and filled quantity of a market order,
# where the default ACK says only "accepted").
_RESULT_RESPONSE = frozenset({"binance", "binanceusdm", "binancecoinm"})
# Venues with a dead-man's switch: ccxt's implicit method for it, which takes the venue's
# market id and the countdown in milliseconds (0 disarms).
_COUNTDOWN_CANCEL_ALL = {"binanceusdm": "fapiPrivatePostCountdownCancelAll"}


def venue_client_order_id(exchange_id: str, client_order_id: str) -> str:
    """A client order id every venue accepts: up to 32 alphanumerics as is, otherwise a
    stable hash of it (Hyperliquid wants a 128-bit hex `cloid`)."""
    if exchange_id == "hyperliquid":
        return "0x" + hashlib.md5(client_order_id.encode(), usedforsecurity=False).hexdigest()
    if re.fullmatch(r"[A-Za-z0-9]{1,32}", client_order_id):
        return client_order_id
    return "e" + hashlib.sha256(client_order_id.encode()).hexdigest()[:31]


def _dec(value) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


class CcxtOrders:
    def _order(self, raw: dict, symbol: str, client_order_id: str, requested: Decimal) -> OrderResult:
        amount = _dec(raw.get("amount")) or requested
        filled = _dec(raw.get("filled"))
        average = _dec(raw.get("average")) or _dec(raw.get("price"))
        return OrderResult(
            id=str(raw.get("id")),
            client_order_id=raw.get("clientOrderId") or client_order_id,
            symbol=symbol,
            side=raw.get("side"),
            amount=amount,
            filled=filled,
            average_price=average if filled and average else None,
            status=order_status(status=raw.get("status"), amount=amount, filled=filled),
            reduce_only=bool(raw.get("reduceOnly", True)),
        )

    async def create_reduce_only_market_order(
        self, symbol: str, side: str, amount: Decimal, *, client_order_id: str, hedged: bool = False
    ) -> OrderResult:
        """The order as executed: on Binance the order answer carries its result
        (`newOrderRespType=RESULT`); an answer that still says working (new, partially
        filled) is followed by one read of the order, so `status` and `filled` are what
        the venue did, never what it accepted."""
        unified = await self._unified(symbol)
        venue_id = venue_client_order_id(self.exchange_id, client_order_id)
        params = {"reduceOnly": True, "clientOrderId": venue_id}
        if self.exchange_id in _RESULT_RESPONSE:
            params["newOrderRespType"] = "RESULT"
        if hedged:
            params["hedged"] = True
        price = None
        if self.exchange_id in _MARKET_ORDERS_NEED_PRICE:
            price = float((await self.fetch_ticker(symbol)).last)
        try:
            raw = await self._call(self._client.create_order(unified, "market", side, float(amount), price, params))
        except ExchangeError as error:
            text = str(error.detail).lower()
            if "duplicate" not in text and "-4116" not in text:
                raise
            # A retry of an order the venue already took: answer with that order.
            raw = await self._call(self._client.fetch_order(None, unified, {"clientOrderId": venue_id}))
        result = self._order(raw, self._etrms(unified), venue_id, amount)
        if result.status in (NOT_FILLED, PARTIALLY_FILLED) and self._client.has.get("fetchOrder"):
            order_id = result.id if result.id not in ("", "None") else None
            query = {} if order_id else {"clientOrderId": venue_id}
            raw = await self._call(self._client.fetch_order(order_id, unified, query))
            result = self._order(raw, self._etrms(unified), venue_id, amount)
        return result

    async def fetch_open_orders(self, symbol: str) -> list[OpenOrder]:
        unified = await self._unified(symbol)
        raws = await self._call(self._client.fetch_open_orders(unified))
        return [
            OpenOrder(
                id=str(raw.get("id")),
                client_order_id=raw.get("clientOrderId") or "",
                symbol=self._etrms(unified),
                side=raw.get("side"),
                amount=_dec(raw.get("amount")),
                filled=_dec(raw.get("filled")),
                price=_dec(raw.get("price")) or None,
                reduce_only=bool(raw.get("reduceOnly")),
            )
            for raw in raws
        ]

    @property
    def has_dead_mans_switch(self) -> bool:
        return self.exchange_id in _COUNTDOWN_CANCEL_ALL

    async def dead_mans_switch_arm(self, symbol: str, seconds: int) -> None:
        if not self.has_dead_mans_switch:
            await super().dead_mans_switch_arm(symbol, seconds)
        unified = await self._unified(symbol)
        method = getattr(self._client, _COUNTDOWN_CANCEL_ALL[self.exchange_id])
        await self._call(method({"symbol": self._client.market_id(unified), "countdownTime": int(seconds) * 1000}))

    async def cancel_all_orders(self, symbol: str) -> int | None:
        unified = await self._unified(symbol)
        count = None
        if self._client.has.get("fetchOpenOrders"):
            count = len(await self._call(self._client.fetch_open_orders(unified)))
        await self._call(self._client.cancel_all_orders(unified))
        return count
