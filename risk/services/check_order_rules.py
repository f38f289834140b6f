"""The pre-trade check's rules (SPEC §12, issue 15), pure: no database, Redis or venue.

`order_assess(order, inputs)` answers whether one order may be sent, with reasons in
words and the limits it would breach. Values are quote currency (USDT, USDC and USD
1:1); the order's notional is its quantity at its price (the mark when it has none).

After the order means: the user's book now, plus this order, plus the user's orders
resting on the same symbol and exchange on the same side (worst case: they all fill).
A limit is breached when the value after the order reaches its threshold (the engine
calls a limit exceeded at `value >= threshold`) and the order increases it: an order
that does not increase a metric is never refused for it, so a trader above a limit
can always reduce.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from etrms.formatting import decimal_str
from risk.constants import LimitType
from risk.services.assess import leverage_of
from risk.services.trading_state import Effective

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    exchange: str
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    price: Decimal | None = None
    reduce_only: bool = False

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


@dataclass(frozen=True, slots=True)
class OrderRules:
    """The configuration the check reads beside the desk caps."""

    symbol_trading_enabled: bool = True
    exchange_trading_enabled: bool = True
    max_order_notional: Decimal | None = None
    max_orders_per_minute: int | None = None


@dataclass(slots=True)
class CheckInputs:
    book: object  # snapshots.Book
    metrics: object  # assess.Metrics
    limits: list  # [LimitView] of the user, enabled
    config: object  # snapshots.ConfigView
    desk: object | None  # snapshots.DeskTotals, when caps need it
    rules: OrderRules
    state: Effective
    resting: list  # [OpenOrder] of the user on that exchange and symbol
    mark: Decimal | None


@dataclass(slots=True)
class Breach:
    limit_id: object
    source: str  # limit | config
    limit_type: str
    current_value: Decimal | None
    after_value: Decimal | None
    threshold: Decimal

    def as_dict(self) -> dict:
        return {
            "limit_id": str(self.limit_id) if self.limit_id is not None else None,
            "source": self.source,
            "limit_type": self.limit_type,
            "current_value": decimal_str(self.current_value),
            "after_value": decimal_str(self.after_value),
            "threshold": decimal_str(self.threshold),
        }


@dataclass(slots=True)
class CheckResult:
    allowed: bool
    reasons: list = field(default_factory=list)
    breaches: list = field(default_factory=list)
    notional: Decimal | None = None

    def as_dict(self) -> dict:
        return {"allowed": self.allowed, "reasons": self.reasons, "breaches": [b.as_dict() for b in self.breaches]}


def money(value: Decimal | None) -> str:
    return "undefined (equity <= 0)" if value is None else f"{value.quantize(Decimal('0.01')):,}"


def _net_size(book, exchange: str, symbol: str) -> tuple[Decimal, Decimal | None]:
    """(signed net size on that exchange and symbol, the mark of its positions)."""
    net, mark = ZERO, None
    for position in book.positions:
        if position.exchange == exchange and position.symbol == symbol:
            net += position.size if position.side == "long" else -position.size
            mark = position.mark_price
    return net, mark


def shrinks(order: OrderRequest, net: Decimal, resting: list) -> bool:
    """The order only shrinks the position: it is on the other side of it and, with the
    orders already resting on its side, no larger than the position."""
    if net == 0 or order.sign * net > 0:
        return False
    pending = sum((o.remaining for o in resting if o.side == order.side), ZERO)
    return order.quantity + pending <= abs(net)


def _breach(out: CheckResult, breach: Breach, words: str, *, grows: bool | None = None) -> None:
    after, current = breach.after_value, breach.current_value
    if grows is None:
        grows = after is None or current is None or after > current
    if not grows or (after is not None and after < breach.threshold):
        return  # the order does not increase it, or stays below the threshold
    out.breaches.append(breach)
    whose = "your limit" if breach.source == "limit" else "the desk cap"
    out.reasons.append(
        f"{words} would be {money(after)} after this order (now {money(current)}), "
        f"at or above {whose} of {money(breach.threshold)}."
    )


def _limits(out: CheckResult, order: OrderRequest, inputs: CheckInputs, delta: Decimal) -> None:
    """Position size, total exposure and leverage, the user's limits then the desk caps."""
    book, metrics, config, desk = inputs.book, inputs.metrics, inputs.config, inputs.desk
    symbol, exchange = order.symbol, order.exchange
    symbol_now = sum((p.signed_notional for p in book.positions if p.symbol == symbol), ZERO)
    here_now = sum((p.signed_notional for p in book.positions if p.symbol == symbol and p.exchange == exchange), ZERO)
    exposure_delta = abs(here_now + delta) - abs(here_now)
    size_now, size_after = abs(symbol_now), abs(symbol_now + delta)
    exposure_now, exposure_after = metrics.total_exposure, metrics.total_exposure + exposure_delta
    has_balance = metrics.has_balance
    leverage_now = metrics.leverage
    leverage_after = leverage_of(exposure_after, metrics.equity, has_balance=has_balance or exposure_after > 0)
    size_words = f"Your {symbol} position size"
    for limit in inputs.limits:
        kind = limit.limit_type
        if kind == LimitType.POSITION_SIZE and limit.symbol in (None, symbol):
            _breach(out, Breach(limit.id, "limit", kind, size_now, size_after, limit.threshold), size_words)
        elif kind == LimitType.TOTAL_EXPOSURE:
            breach = Breach(limit.id, "limit", kind, exposure_now, exposure_after, limit.threshold)
            _breach(out, breach, "Your total exposure")
        elif kind == LimitType.LEVERAGE:
            breach = Breach(limit.id, "limit", kind, leverage_now, leverage_after, limit.threshold)
            _breach(out, breach, "Your leverage", grows=exposure_delta > 0)
    if desk is None:
        return
    if config.max_total_exposure is not None:
        now, cap = desk.total_exposure, config.max_total_exposure
        _breach(out, Breach(None, "config", "total_exposure", now, now + exposure_delta, cap), "The desk's exposure")
    if config.max_leverage is not None:
        has = desk.balances > 0
        now = leverage_of(desk.total_exposure, desk.equity, has_balance=has)
        after = leverage_of(desk.total_exposure + exposure_delta, desk.equity, has_balance=has)
        breach = Breach(None, "config", "leverage", now, after, config.max_leverage)
        _breach(out, breach, "The desk's leverage", grows=exposure_delta > 0)
    size_cap = config.symbol_caps.get(symbol, (None, None))[0]
    if size_cap is not None:
        net = desk.symbol_net.get(symbol, ZERO)
        breach = Breach(None, "config", "position_size", abs(net), abs(net + delta), size_cap)
        _breach(out, breach, f"The desk's {symbol} position size")
    exchange_cap = config.exchange_caps.get(exchange)
    if exchange_cap is not None:
        now = desk.exchange_exposure.get(exchange, ZERO)
        breach = Breach(None, "config", "total_exposure", now, now + exposure_delta, exchange_cap)
        _breach(out, breach, f"The desk's exposure on {exchange}")


def order_assess(order: OrderRequest, inputs: CheckInputs) -> CheckResult:
    """Every rule but the order rate (which counts only orders otherwise allowed)."""
    out = CheckResult(allowed=True)
    net, position_mark = _net_size(inputs.book, order.exchange, order.symbol)
    mark = position_mark if position_mark is not None else inputs.mark
    price = order.price if order.price is not None else mark
    reducing_only = shrinks(order, net, inputs.resting)
    state = inputs.state
    if state.state == "halted":
        out.reasons.append(f"Trading is halted at the {state.level} level ({state.reason}): only cancels are allowed.")
    elif state.state == "reducing" and not reducing_only:
        out.reasons.append(
            f"Trading is reducing at the {state.level} level ({state.reason}): only orders that shrink a position "
            "are allowed, and this order (with your resting orders on its side) would open or grow one."
        )
    if order.reduce_only and not reducing_only:
        out.reasons.append(
            "This reduce-only order would not reduce a position: there is none on the other side large enough "
            "for it and your resting orders on its side."
        )
    if not reducing_only:
        if not inputs.rules.symbol_trading_enabled:
            out.reasons.append(
                f"Trading in {order.symbol} is disabled by the desk: only orders that shrink a position."
            )
        if not inputs.rules.exchange_trading_enabled:
            out.reasons.append(
                f"Trading on {order.exchange} is disabled by the desk: only orders that shrink a position."
            )
    if price is None:
        out.reasons.append(f"No price for {order.symbol} on {order.exchange}: give one, or wait for a mark.")
        out.allowed = False
        return out
    out.notional = order.quantity * price
    cap = inputs.rules.max_order_notional
    if cap is not None and out.notional > cap:
        out.breaches.append(Breach(None, "config", "max_order_notional", None, out.notional, cap))
        out.reasons.append(
            f"This order's notional {money(out.notional)} is above the desk's per-order cap of {money(cap)} "
            f"for {order.symbol}."
        )
    same_side = [o for o in inputs.resting if o.side == order.side and not o.reduce_only]
    resting_notional = sum((o.remaining * (o.price if o.price is not None else price) for o in same_side), ZERO)
    _limits(out, order, inputs, order.sign * (out.notional + resting_notional))
    out.allowed = not out.reasons
    return out
