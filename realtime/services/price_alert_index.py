"""The in-process index of active price alerts, and the check the feed runs on every tick.

Per (exchange, symbol) two sorted threshold lists: `above` targets ascending (a price p
crosses every target <= p: the prefix up to `bisect_right(p)`), `below` targets
ascending (p crosses every target >= p: the suffix from `bisect_left(p)`). A tick that
crosses nothing costs two bisects and no I/O. The index reloads the active alerts from
the database when the Redis counter `realtime:price_alerts:version` has moved, checked
at most every `PRICE_ALERT_INDEX_CHECK_SECONDS`.

The feed's entry point, called in its database thread with each conflated batch's
lowest and highest price per market (so no crossing is skipped):

    price_alerts_check_range(exchange=..., symbol=..., low=..., high=..., at=...)

It returns the RiskAlerts raised (usually none). Crossed alerts leave the index at
once, so a burst of crossing ticks fires each alert once per process, and the
conditional UPDATE in `price_alert_fire` makes it once across processes.
"""

import bisect
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from realtime.models import PriceAlert, PriceAlertCondition, PriceAlertStatus
from realtime.services.price_alerts import price_alert_fire, price_alerts_version


@dataclass(frozen=True)
class IndexedAlert:
    id: object
    user_id: object
    exchange: str
    symbol: str
    condition: str
    target: Decimal


@dataclass
class _Thresholds:
    above: list[tuple[Decimal, str]] = field(default_factory=list)  # (target, id), ascending
    below: list[tuple[Decimal, str]] = field(default_factory=list)


class PriceAlertIndex:
    def __init__(self):
        self._markets: dict[tuple[str, str], _Thresholds] = {}
        self._alerts: dict[str, IndexedAlert] = {}
        self._version: int | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    # --- loading ------------------------------------------------------------------------
    def needs_reload(self, *, force: bool = False) -> bool:
        """Whether the alert set changed (one Redis GET, at most every check interval)."""
        now = time.monotonic()
        if self._version is None:
            return True
        if not force and now - self._checked_at < float(settings.PRICE_ALERT_INDEX_CHECK_SECONDS):
            return False
        self._checked_at = now
        return price_alerts_version() != self._version

    def reload(self) -> None:
        """Read the active alerts (one query) and rebuild the thresholds."""
        version = price_alerts_version()  # read before the rows: a later bump reloads again
        rows = PriceAlert.objects.filter(status=PriceAlertStatus.ACTIVE).values_list(
            "id", "user_id", "exchange", "symbol", "condition", "target_price"
        )
        markets: dict[tuple[str, str], _Thresholds] = {}
        alerts: dict[str, IndexedAlert] = {}
        for alert_id, user_id, exchange, symbol, condition, target in rows:
            alert = IndexedAlert(alert_id, user_id, exchange, symbol, condition, target)
            alerts[str(alert_id)] = alert
            side = markets.setdefault((exchange, symbol), _Thresholds())
            (side.above if condition == PriceAlertCondition.ABOVE else side.below).append((target, str(alert_id)))
        for side in markets.values():
            side.above.sort()
            side.below.sort()
        with self._lock:
            self._markets, self._alerts, self._version = markets, alerts, version
            self._checked_at = time.monotonic()

    def refresh(self, *, force: bool = False) -> None:
        if self.needs_reload(force=force):
            self.reload()

    # --- the check ------------------------------------------------------------------------
    def crossed(self, *, exchange: str, symbol: str, low: Decimal, high: Decimal) -> list[tuple[IndexedAlert, Decimal]]:
        """The alerts prices between `low` and `high` cross (above ones by `high`, below ones
        by `low`), each with the price that crossed it, taken out of the index (no I/O)."""
        side = self._markets.get((exchange, symbol))
        if side is None:
            return []
        with self._lock:
            above_end = bisect.bisect_right(side.above, (high, "\uffff"))
            below_start = bisect.bisect_left(side.below, (low, ""))
            if not above_end and below_start >= len(side.below):
                return []
            hits = [(alert_id, high) for _, alert_id in side.above[:above_end]]
            hits += [(alert_id, low) for _, alert_id in side.below[below_start:]]
            del side.above[:above_end]
            del side.below[below_start:]
            return [(alert, price) for alert_id, price in hits if (alert := self._alerts.pop(alert_id, None))]

    def reached(self, market, price: Decimal) -> bool:
        """Whether `price` reaches a target of `market` (exchange, symbol): the feed's event
        loop asks it on every tick to take such a tick first. No lock and no I/O: a hint,
        `crossed` decides."""
        side = self._markets.get(market)
        if side is None:
            return False
        try:
            return bool(side.above and side.above[0][0] <= price) or bool(side.below and side.below[-1][0] >= price)
        except IndexError:  # `crossed` emptied a list meanwhile
            return False

    def __len__(self) -> int:
        return len(self._alerts)


_index: PriceAlertIndex | None = None


def price_alert_index() -> PriceAlertIndex:
    """This process's index."""
    global _index
    if _index is None:
        _index = PriceAlertIndex()
    return _index


def _fire(crossed: list[tuple[IndexedAlert, Decimal]], at: datetime) -> list:
    raised = []
    for alert, price in crossed:
        risk_alert = price_alert_fire(
            alert_id=alert.id,
            user_id=alert.user_id,
            symbol=alert.symbol,
            exchange=alert.exchange,
            condition=alert.condition,
            target=alert.target,
            price=price,
            at=at,
        )
        if risk_alert is not None:
            raised.append(risk_alert)
    return raised


def price_alerts_check_range(
    *,
    exchange: str,
    symbol: str,
    low: Decimal,
    high: Decimal,
    at: datetime,
    index: PriceAlertIndex | None = None,
) -> list:
    """Fire every active alert of (exchange, symbol) crossed by a price between `low` and
    `high` (a conflated batch's range, so no crossing is skipped); the RiskAlerts raised.
    Sync: the feed's database thread calls it."""
    index = price_alert_index() if index is None else index
    index.refresh()
    crossed = index.crossed(exchange=exchange, symbol=symbol, low=low, high=high)
    return _fire(crossed, at) if crossed else []
