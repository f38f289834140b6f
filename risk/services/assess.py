"""Pure risk evaluation (SPEC §4, §5): metrics and breaker conditions (limit and cap
statuses: `risk.services.assess_limits`). No database, no Redis: inputs are the views of
`risk.services.snapshots` plus what the caller fetched for breakers (closed-trade
streaks, price ranges).

Conventions: money in quote currency, Decimal; percentages in percent; a loss is
positive in `daily_loss`; `None` as a metric value means *undefined and critical*
(leverage or margin ratio with equity <= 0).
"""

import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from accounts.selectors.books import PositionView
from risk.constants import DEFAULT_VOLATILITY_WINDOW_SECONDS, ConditionType
from risk.services.snapshots import Book, BreakerView, ConfigView

ZERO = Decimal(0)
HUNDRED = Decimal(100)
VOLATILITY_COVERAGE = Decimal("0.8")


# --- metrics ------------------------------------------------------------------------------
@dataclass(slots=True)
class Metrics:
    symbol_net: dict  # {symbol: |net notional| summed over exchanges}
    total_exposure: Decimal
    equity: Decimal
    has_balance: bool
    daily_pnl: Decimal
    margin_ratio: Decimal | None  # worst account; None: unknown or undefined
    margin_ratio_undefined: bool
    leverage: Decimal | None  # None: undefined (equity <= 0)
    drawdown: Decimal  # worst account, from its peak equity (moved by transfers)
    account_equity: dict  # {account_id: equity now}
    account_transfers: dict  # {account_id: net deposits since the first sync}

    @property
    def daily_loss(self) -> Decimal:
        return max(ZERO, -self.daily_pnl)

    def position_size(self, symbol: str | None = None) -> Decimal:
        if symbol is not None:
            return self.symbol_net.get(symbol, ZERO)
        return max(self.symbol_net.values(), default=ZERO)


def drawdown_pct(peak: Decimal, equity: Decimal) -> Decimal:
    if peak <= 0:
        return ZERO
    return (peak - equity) / peak * HUNDRED


def leverage_of(exposure: Decimal, equity: Decimal, *, has_balance: bool) -> Decimal | None:
    """exposure / equity; None (undefined, critical) when equity <= 0 with a balance
    or an exposure; 0 for an empty book with no balance."""
    if equity > 0:
        return exposure / equity
    if exposure > 0 or has_balance:
        return None
    return ZERO


def metrics_compute(book: Book) -> Metrics:
    net: dict[str, Decimal] = {}
    unrealized: dict[int, Decimal] = {}
    exposure = ZERO
    for position in book.positions:
        notional, symbol, account_id = position.notional, position.symbol, position.account_id
        net[symbol] = net.get(symbol, ZERO) + (notional if position.side == "long" else -notional)
        exposure += notional if notional >= 0 else -notional
        unrealized[account_id] = unrealized.get(account_id, ZERO) + position.unrealized_pnl
    equity = ZERO
    daily_pnl = ZERO
    has_balance = False
    account_equity: dict[int, Decimal] = {}
    worst_margin: Decimal | None = None
    margin_undefined = False
    drawdown = ZERO
    for account in book.accounts.values():
        if not account.has_balance:
            continue
        has_balance = True
        upnl = unrealized.get(account.id, ZERO)
        account_now = account.balance + upnl
        account_equity[account.id] = account_now
        equity += account_now
        daily_pnl += account.daily_pnl(upnl)
        if account.maintenance_margin is not None:
            if account_now > 0:
                ratio = account.maintenance_margin / account_now
                worst_margin = ratio if worst_margin is None else max(worst_margin, ratio)
            elif account.maintenance_margin > 0:
                margin_undefined = True
            else:
                worst_margin = ZERO if worst_margin is None else worst_margin
        drawdown = max(drawdown, drawdown_pct(max(account.peak_equity, account_now), account_now))
    return Metrics(
        symbol_net={symbol: abs(value) for symbol, value in net.items()},
        total_exposure=exposure,
        equity=equity,
        has_balance=has_balance,
        daily_pnl=daily_pnl,
        margin_ratio=None if margin_undefined else worst_margin,
        margin_ratio_undefined=margin_undefined,
        leverage=leverage_of(exposure, equity, has_balance=has_balance),
        drawdown=drawdown,
        account_equity=account_equity,
        account_transfers={account.id: account.net_transfers for account in book.accounts.values()},
    )


# --- breakers -----------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class BreakerInputs:
    """What breakers need beyond the book, fetched by the caller."""

    # {(account_id, symbol): [(closed_at, net realized pnl), ...] newest first}
    closed_trades: dict = field(default_factory=dict)
    # {(breaker_id, account_id, symbol): datetime}: an officer re-armed the streak then
    streak_cutoffs: dict = field(default_factory=dict)
    # {(exchange, symbol, window_seconds): (low, high, span_seconds)} or missing
    price_ranges: dict = field(default_factory=dict)


@dataclass(slots=True)
class BreakerHit:
    breaker: BreakerView
    position: PositionView
    latch_key: str
    context: dict  # numbers (Decimal) and labels describing why it tripped
    summary: str


@dataclass(slots=True)
class BreakerAssessment:
    hits: list = field(default_factory=list)
    fresh_positions: set = field(default_factory=set)  # ids of open positions on fresh data
    streaks_clear: set = field(default_factory=set)  # (breaker_id, streak latch key) evaluated and not met
    stale: dict = field(default_factory=dict)  # {position_id: (position, reason)} in some breaker's scope

    def cleared(self, pair: tuple) -> bool:
        """Was the condition of (breaker_id, latch_key) evaluated and found clear? (The
        caller has already excluded the pairs that hit.) A position's conditions are
        clear when its data was fresh; a streak's when its closed trades were read."""
        kind, _, rest = pair[1].partition(":")
        if kind == "position":
            return rest.isdigit() and int(rest) in self.fresh_positions
        return pair in self.streaks_clear


def latch_key_of(breaker: BreakerView, position: PositionView) -> str:
    if breaker.condition_type == ConditionType.CONSECUTIVE_LOSSES:
        return f"streak:{position.account_id}:{position.symbol}"
    return f"position:{position.id}"


def stale_reason(position: PositionView, *, account_failed: bool, now: datetime, max_age_seconds: int) -> str | None:
    if account_failed:
        return "the account's last sync failed"
    age = (now - position.mark_updated_at).total_seconds()
    if age > max_age_seconds:
        return f"the mark is {age:.0f}s old (max {max_age_seconds}s)"
    return None


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


# One checker per condition type: (context, summary) when it holds, else None.
def _max_position_size(breaker, position, now, inputs):
    threshold = breaker.threshold
    if position.notional >= threshold:
        return {
            "notional": position.notional,
            "threshold": threshold,
        }, f"notional {position.notional:f} >= {threshold:f}"
    return None


def _pnl(breaker, position, now, inputs):
    threshold, pnl = breaker.threshold, position.unrealized_pnl
    profit = breaker.additional_params.get("direction", "loss") == "profit"
    if (profit and pnl >= threshold) or (not profit and pnl <= -threshold):
        word = "profit" if profit else "loss"
        return {"unrealized_pnl": pnl, "threshold": threshold, "direction": word}, (
            f"unrealized PnL {pnl:f} reached the {word} threshold {threshold:f}"
        )
    return None


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


def _volatility(breaker, position, now, inputs):
    window = int(breaker.additional_params.get("window_seconds", DEFAULT_VOLATILITY_WINDOW_SECONDS))
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


CHECKS = {
    ConditionType.MAX_POSITION_SIZE: _max_position_size,
    ConditionType.PNL: _pnl,
    ConditionType.MAX_DRAWDOWN: _max_drawdown,
    ConditionType.TRAILING_STOP: _trailing_stop,
    ConditionType.TIME_BASED: _time_based,
    ConditionType.CONSECUTIVE_LOSSES: _consecutive_losses,
    ConditionType.VOLATILITY: _volatility,
}


def breakers_assess(*, book: Book, config: ConfigView, now: datetime, inputs: BreakerInputs) -> BreakerAssessment:
    """Every enabled breaker on every open position in its scope. Stale positions are
    skipped and reported; streaks are judged from the closed trades the caller read."""
    result = BreakerAssessment()
    if not config.breakers:
        return result
    everywhere = [(b, CHECKS[b.condition_type]) for b in config.breakers if b.symbols is None and b.exchanges is None]
    scoped = [
        (b, CHECKS[b.condition_type]) for b in config.breakers if b.symbols is not None or b.exchanges is not None
    ]
    fresh_after = now - timedelta(seconds=config.max_price_age_seconds)
    failed_accounts = {account.id for account in book.accounts.values() if account.last_sync_failed}
    for position in book.positions:
        in_scope = everywhere + [pair for pair in scoped if pair[0].applies(position.exchange, position.symbol)]
        if position.account_id in failed_accounts or position.mark_updated_at < fresh_after:
            if in_scope:
                reason = stale_reason(
                    position,
                    account_failed=position.account_id in failed_accounts,
                    now=now,
                    max_age_seconds=config.max_price_age_seconds,
                )
                result.stale[position.id] = (position, reason)
            continue
        result.fresh_positions.add(position.id)
        for breaker, check in in_scope:
            found = check(breaker, position, now, inputs)
            if found is not None:
                context, summary = found
                result.hits.append(
                    BreakerHit(
                        breaker=breaker,
                        position=position,
                        latch_key=latch_key_of(breaker, position),
                        context=context,
                        summary=summary,
                    )
                )
    _streaks_judge(result, book=book, config=config, inputs=inputs, failed_accounts=failed_accounts)
    return result


def _streaks_judge(result: BreakerAssessment, *, book: Book, config: ConfigView, inputs, failed_accounts) -> None:
    """Which streaks read from closed trades are not (or no longer) met: a winning
    close re-arms consecutive_losses (SPEC §5), with or without an open position."""
    for breaker in config.breakers:
        if breaker.condition_type != ConditionType.CONSECUTIVE_LOSSES:
            continue
        for (account_id, symbol), trades in inputs.closed_trades.items():
            account = book.accounts.get(account_id)
            if account is None or account_id in failed_accounts or not breaker.applies(account.exchange, symbol):
                continue
            cutoff = inputs.streak_cutoffs.get((breaker.id, account_id, symbol))
            if streak_length(trades, cutoff) < breaker.threshold:
                result.streaks_clear.add((breaker.id, f"streak:{account_id}:{symbol}"))
