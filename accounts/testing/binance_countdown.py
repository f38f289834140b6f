"""The local Binance server's dead-man's switch: `POST /fapi/v1/countdownCancelAll`
`{symbol, countdownTime}` (milliseconds; 0 disarms), as Binance USD-M has it. Each call
restarts the symbol's countdown; when one runs out without being re-armed, the server
cancels the symbol's open orders by itself, as the venue does when its client goes
silent.

A mixin of `LocalBinanceServer`: handlers run on its event loop, under its lock.
"""

import asyncio


class CountdownCancelAll:
    def countdown_reset(self) -> None:
        for timer in getattr(self, "countdowns", {}).values():
            timer.cancel()
        self.countdowns: dict[str, asyncio.TimerHandle] = {}  # armed symbols
        self.countdown_cancellations: list[str] = []  # symbols whose countdown ran out

    def countdown_armed(self, symbol: str) -> bool:
        with self._lock:
            return symbol in self.countdowns

    def _countdown_cancel_all(self, params):
        from accounts.testing.binance_server import BinanceError

        market = self._market(params)
        try:
            milliseconds = int(params["countdownTime"])
        except (KeyError, ValueError):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'countdownTime' was not sent or is malformed."
            ) from None
        if milliseconds < 0:
            raise BinanceError(400, -1102, "countdownTime must not be negative.")
        timer = self.countdowns.pop(market.symbol, None)
        if timer is not None:
            timer.cancel()
        if milliseconds:
            loop = asyncio.get_running_loop()
            self.countdowns[market.symbol] = loop.call_later(
                milliseconds / 1000, self._countdown_ran_out, market.symbol
            )
        return {"symbol": market.symbol, "countdownTime": str(milliseconds)}

    def _countdown_ran_out(self, symbol: str) -> None:
        with self._lock:
            self.countdowns.pop(symbol, None)
            self.countdown_cancellations.append(symbol)
            for order in self.orders:
                if order["symbol"] == symbol and order["status"] == "NEW":
                    order["status"] = "CANCELED"
