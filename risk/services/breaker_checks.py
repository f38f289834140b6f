"""The circuit breaker conditions of SPEC §5, one checker per condition type, each with
its screen (pure; `risk.services.assess.breakers_assess` runs them).

A checker takes (breaker, position, now, inputs) and returns (context, summary) when
the condition holds, else None. A screen takes (breaker, positions, now, inputs) and
returns, in their order, the positions whose checker *could* return something: the
checker's own first test (or a looser one) as one comprehension, so that a book of
10,000 positions costs a comparison per position and breaker, not a call. A screen may
keep a position its checker then rejects; it never drops one the checker would accept
(`risk/tests/test_breaker_screens.py` holds every screen to that).

Conventions of `risk.services.assess`: money in quote currency, Decimal; percentages
in percent.
"""

import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal

from risk.constants import DEFAULT_VOLATILITY_WINDOW_SECONDS, ConditionType

ZERO = Decimal(0)
HUNDRED = Decimal(100)
VOLATILITY_COVERAGE = Decimal("0.8")
# time_based's screen compares opening times with a cut-off that much later than the
# threshold's: more than the float rounding of an age in seconds (< 1 µs below 10^9 s).
AGE_SLACK = timedelta(milliseconds=1)


def _in_flat_window(windows: list, now: datetime) -> dict | None:
    for window in windows:
        local = now.astimezone(zoneinfo.ZoneInfo(window.get("tz", "UTC")))
        minute = local.hour * 60 + local.minute
        start_h, start_m = (int(part) for part in window["start"].split(":"))
        end_h, end_m = (int(part) for part in window["end"].split(":"))
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if inside:
            return window
    return None


def _max_position_size(breaker, position, now, inputs):
    threshold = breaker.threshold
    if position.notional >= threshold:
        return {
            "notional": position.notional,
            "threshold": threshold,
        }, f"notional {position.notional:f} >= {threshold:f}"
    return None


def _max_position_size_screen(breaker, positions, now, inputs):
    threshold = breaker.threshold
    return [p for p in positions if p.notional >= threshold]


def _profit(breaker) -> bool:
    return breaker.additional_params.get("direction", "loss") == "profit"


def _pnl(breaker, position, now, inputs):
    threshold, pnl = breaker.threshold, position.unrealized_pnl
    profit = _profit(breaker)
    if (profit and pnl >= threshold) or (not profit and pnl <= -threshold):
        word = "profit" if profit else "loss"
        return {"unrealized_pnl": pnl, "threshold": threshold, "direction": word}, (
            f"unrealized PnL {pnl:f} reached the {word} threshold {threshold:f}"
        )
    return None


def _pnl_screen(breaker, positions, now, inputs):
    threshold = breaker.threshold
    if _profit(breaker):
        return [p for p in positions if p.unrealized_pnl >= threshold]
    floor = -threshold
    return [p for p in positions if p.unrealized_pnl <= floor]


def _max_drawdown(breaker, position, now, inputs):
    # The peak entry notional since opening: size changes alone never move the drawdown.
    entry_notional = max(position.peak_entry_notional, abs(position.size * position.entry_price))
    if entry_notional <= 0:
        return None
    pnl = position.realized_pnl + position.unrealized_pnl
    peak = position.peak_pnl if position.peak_pnl > pnl else pnl
    if peak == pnl:
        return None  # at its peak: no drawdown (and no division needed)
    drawdown = (peak - pnl) / entry_notional * HUNDRED
    if drawdown >= breaker.threshold:
        return {"current_drawdown": drawdown, "threshold": breaker.threshold, "peak_pnl": peak, "pnl": pnl}, (
            f"PnL fell {drawdown:.4f}% of entry notional from its peak (threshold {breaker.threshold:f}%)"
        )
    return None


def _max_drawdown_screen(breaker, positions, now, inputs):
    """Below its PnL peak (at the peak there is no drawdown)."""
    return [p for p in positions if p.peak_pnl > p.realized_pnl + p.unrealized_pnl]


def _trailing_stop(breaker, position, now, inputs):
    price = position.mark_price
    best = position.best_price or position.entry_price
    if position.side == "long":
        if price >= best:
            return None
        retrace = (best - price) / best * HUNDRED if best > 0 else ZERO
    else:
        if price <= best:
            return None
        retrace = (price - best) / best * HUNDRED if best > 0 else ZERO
    if best > 0 and retrace >= breaker.threshold:
        return {"retrace_pct": retrace, "threshold": breaker.threshold, "best_price": best, "mark_price": price}, (
            f"retraced {retrace:.4f}% from the best mark {best:f} (threshold {breaker.threshold:f}%)"
        )
    return None


def _trailing_stop_screen(breaker, positions, now, inputs):
    """Off its best mark: below it for a long, above it for a short."""
    return [
        p
        for p in positions
        if (
            p.mark_price < (p.best_price or p.entry_price)
            if p.side == "long"
            else p.mark_price > (p.best_price or p.entry_price)
        )
    ]


def _time_based(breaker, position, now, inputs):
    age = now - position.opened_at
    windows = breaker.additional_params.get("flat_windows")
    window = _in_flat_window(windows, now) if windows else None
    if age.total_seconds() < float(breaker.threshold) and window is None:
        return None
    open_seconds = Decimal(str(max(0.0, age.total_seconds())))
    if window is None and open_seconds < breaker.threshold:
        return None  # the float comparison's edge: decide in Decimal
    reason = (
        f"open inside the flat window {window['start']}-{window['end']} {window.get('tz', 'UTC')}"
        if window is not None
        else f"open for {open_seconds:.0f}s (threshold {breaker.threshold:f}s)"
    )
    return {"open_seconds": open_seconds, "threshold": breaker.threshold, "flat_window": window}, reason


def _time_based_screen(breaker, positions, now, inputs):
    """Every position inside a flat window; else those opened at least about the
    threshold ago (`AGE_SLACK` early: the checker decides the edge)."""
    windows = breaker.additional_params.get("flat_windows")
    if windows and _in_flat_window(windows, now) is not None:
        return positions
    try:
        cutoff = now - timedelta(seconds=float(breaker.threshold)) + AGE_SLACK
    except (OverflowError, ValueError):  # beyond datetime's range (or not a number): let the checker say
        return positions
    return [p for p in positions if p.opened_at <= cutoff]


def streak_length(trades: list, cutoff: datetime | None) -> int:
    """Losing closes in a row, newest first, after an officer's re-arm at `cutoff`."""
    streak = 0
    for closed_at, pnl in trades:
        if (cutoff is not None and closed_at <= cutoff) or pnl >= 0:
            break
        streak += 1
    return streak


def _consecutive_losses(breaker, position, now, inputs):
    trades = inputs.closed_trades.get((position.account_id, position.symbol))
    if not trades:
        return None
    streak = streak_length(trades, inputs.streak_cutoffs.get((breaker.id, position.account_id, position.symbol)))
    if streak >= breaker.threshold:
        return {"consecutive_losses": Decimal(streak), "threshold": breaker.threshold}, (
            f"the last {streak} closed positions on {position.exchange} {position.symbol} lost money"
        )
    return None


def _consecutive_losses_screen(breaker, positions, now, inputs):
    """With closed trades on their (account, symbol)."""
    trades = inputs.closed_trades
    if not trades:
        return []
    return [p for p in positions if trades.get((p.account_id, p.symbol))]


def _window(breaker) -> int:
    return int(breaker.additional_params.get("window_seconds", DEFAULT_VOLATILITY_WINDOW_SECONDS))


def _volatility(breaker, position, now, inputs):
    window = _window(breaker)
    found = inputs.price_ranges.get((position.exchange, position.symbol, window))
    if found is None:
        return None
    low, high, span = found
    if low <= 0 or Decimal(str(span)) < VOLATILITY_COVERAGE * window:
        return None  # not evaluated until samples cover 80 % of the window
    range_pct = (high - low) / low * HUNDRED
    if range_pct >= breaker.threshold:
        context = {
            "range_pct": range_pct,
            "threshold": breaker.threshold,
            "high": high,
            "low": low,
            "window_seconds": Decimal(window),
        }
        return context, f"{window}s range {range_pct:.4f}% >= {breaker.threshold:f}%"
    return None


def _volatility_screen(breaker, positions, now, inputs):
    """On a market whose range over the breaker's window was read."""
    ranges = inputs.price_ranges
    if not ranges:
        return []
    window = _window(breaker)
    return [p for p in positions if ranges.get((p.exchange, p.symbol, window)) is not None]


# {condition_type: (checker, screen)}
CHECKS = {
    ConditionType.MAX_POSITION_SIZE: (_max_position_size, _max_position_size_screen),
    ConditionType.PNL: (_pnl, _pnl_screen),
    ConditionType.MAX_DRAWDOWN: (_max_drawdown, _max_drawdown_screen),
    ConditionType.TRAILING_STOP: (_trailing_stop, _trailing_stop_screen),
    ConditionType.TIME_BASED: (_time_based, _time_based_screen),
    ConditionType.CONSECUTIVE_LOSSES: (_consecutive_losses, _consecutive_losses_screen),
    ConditionType.VOLATILITY: (_volatility, _volatility_screen),
}
