"""Which positions' ticks can change their owner's evaluation (the feed's `RiskIndex`,
SPEC §11: a tick evaluates only the users whose exposure moves past a level).

After a user is evaluated, each of their open positions gets a price band: while every
one of the user's marks stays strictly inside its band, no limit, desk cap of their
own or breaker can change level, so the decision `outcome_decide` would take is the
one just taken and the tick needs no evaluation. The band is the intersection of

- the position's own levels, in price: the breakers in its scope (max position size,
  PnL, max drawdown, trailing stop) solved for the mark at which each would hit;
- the user's budget: the smallest relative move of the marks that could carry one of
  the user's limit or cap values (position size, exposure, daily loss, leverage,
  margin ratio, drawdown) to its threshold, its warning or one of its ladder steps
  (issue 15), moving every mark of the
  user at once by that share (a value moves at most `share x exposure` then).

A favourable move past a position's best price or PnL peak moves the level of its
drawdown and trailing-stop breakers (`peak`): the band is derived again from the
position alone, without an evaluation (a position at a new peak is at no drawdown).

Nothing here decides anything: a band only says when to call the one decision path
again. What no band can bound evaluates on every tick of the user's markets: stale
positions, an undefined value (equity <= 0), a value sitting on a level, a drawdown
limit at its peak (every rise is a new peak to keep), a position with a latched
volatility trip, a condition type unknown here. Time moves what marks do not (cooldowns running out,
time-based breakers, marks going stale): `due_of` gives when, and the index evaluates
the user on its first tick after that (the sweep covers users whose markets are quiet).
Volatility ranges are not banded: the index evaluates the holders of every market a
volatility breaker could trip on now.

Edges are floats, narrowed by a relative 1e-9 so that rounding errs towards
evaluating.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from risk.constants import ConditionType, LimitType
from risk.services.outcome import StepHit

EVERY_TICK = (math.inf, -math.inf, None)  # a band no price is inside
NOTHING_QUIET = (math.inf, -math.inf)  # a market's quiet prices no mark is inside
ROUNDING = 1e-9
# Desk caps: their values are the whole desk's, followed by `RiskIndex._desk_levels`.
DESK_CAP_KEYS = (
    "config:global:max_total_exposure",
    "config:global:max_leverage",
    "config:global:daily_loss_limit",
)
DESK_CAP_SCOPES = ("config:symbol:", "config:exchange:")
# Position leverage is not moved by a mark in memory (`PositionView.mark_apply`).
FIXED_CAPS = ("max_leverage",)
UNBANDED_CONDITIONS = (ConditionType.VOLATILITY, ConditionType.CONSECUTIVE_LOSSES, ConditionType.TIME_BASED)


@dataclass(slots=True, frozen=True)
class Band:
    """A position's quiet prices: `low` < mark < `high`; past `peak` (upwards for a long,
    downwards for a short) its best price or PnL peak moves."""

    low: float
    high: float
    peak: float | None
    user_low: float  # the user's budget alone, kept when the band is derived again
    user_high: float

    def contains(self, price: float) -> bool:
        return self.low < price < self.high


def _distance(value: float, levels: list) -> float:
    return min(abs(value - level) for level in levels)


def user_budget(computed, *, limits: list) -> float | None:
    """The share every mark of the user may move with no limit or own cap changing
    level; None when none can be given (evaluate on every tick)."""
    book, metrics = computed.book, computed.metrics
    exposure = sum(float(position.notional) for position in book.positions)
    if exposure <= 0:
        return math.inf
    gross: dict = {}
    for position in book.positions:
        gross[position.symbol] = gross.get(position.symbol, 0.0) + float(position.notional)
    peaks = {limit.id: limit.equity_peaks for limit in limits}
    budget = math.inf
    for status in computed.limits.statuses:
        if status.key in DESK_CAP_KEYS or status.key.startswith(DESK_CAP_SCOPES) or status.cap in FIXED_CAPS:
            continue
        if status.value is None:
            return None
        levels = [float(status.threshold)] + ([float(status.warning)] if status.warning is not None else [])
        levels += [float(StepHit("", status, at_pct, action).level) for at_pct, action in status.ladder]
        value = float(status.value)
        kind = status.limit_type
        if kind == LimitType.POSITION_SIZE:
            share = _linear(value, levels, gross.get(status.symbol, 0.0))
        elif kind in (LimitType.TOTAL_EXPOSURE, LimitType.DAILY_LOSS):
            share = _linear(value, levels, exposure)
        elif kind == LimitType.LEVERAGE:
            share = _leverage(metrics, levels, exposure)
        elif kind == LimitType.MARGIN_RATIO:
            share = _margin(book, metrics, levels, exposure)
        elif kind == LimitType.DRAWDOWN and status.source == "config":
            share = _account_drawdown(book, metrics, levels, exposure)
        elif kind == LimitType.DRAWDOWN:
            share = _limit_drawdown(metrics, peaks.get(status.limit_id, {}), levels, exposure)
        else:
            return None
        if share is None:
            return None
        budget = min(budget, share)
    return budget


def _linear(value: float, levels: list, sensitivity: float) -> float | None:
    """A value that moves at most `share x sensitivity`."""
    if sensitivity <= 0:
        return math.inf
    distance = _distance(value, levels)
    return distance / sensitivity if distance > 0 else None


def _leverage(metrics, levels: list, exposure: float) -> float | None:
    """exposure / equity crosses L where exposure - L x equity changes sign; both move
    at most `share x exposure`."""
    equity = float(metrics.equity)
    if equity <= 0:
        return None
    share = equity / exposure
    for level in levels:
        gap = abs(exposure - level * equity)
        if gap == 0:
            return None
        share = min(share, gap / (exposure * (1 + level)))
    return share


def _margin(book, metrics, levels: list, exposure: float) -> float | None:
    """Each account's maintenance margin / equity crosses L where equity = margin / L."""
    share = math.inf
    for account in book.accounts.values():
        if account.maintenance_margin is None or account.id not in metrics.account_equity:
            continue
        equity, margin = float(metrics.account_equity[account.id]), float(account.maintenance_margin)
        if equity <= 0:
            return None
        share = min(share, equity / exposure)
        for level in levels:
            if level > 0:
                gap = abs(margin - level * equity)
                if gap == 0:
                    return None
                share = min(share, gap / (level * exposure))
    return share


def _drawdown_gaps(equity: float, peak: float, levels: list, exposure: float) -> float | None:
    if peak <= 0:
        return math.inf
    gap = min(abs(equity - peak * (1 - level / 100)) for level in levels)
    return gap / exposure if gap > 0 else None


def _account_drawdown(book, metrics, levels: list, exposure: float) -> float | None:
    """The desk's max_drawdown_pct on each account's peak equity (not moved in memory)."""
    share = math.inf
    for account_id, equity in metrics.account_equity.items():
        found = _drawdown_gaps(float(equity), float(book.accounts[account_id].peak_equity), levels, exposure)
        if found is None:
            return None
        share = min(share, found)
    return share


def _limit_drawdown(metrics, stored_peaks: dict, levels: list, exposure: float) -> float | None:
    """A drawdown limit's peaks (net of transfers) rise with equity: every rise is kept at
    once, so equity reaching the peak is a level too."""
    share = math.inf
    for account_id, equity in metrics.account_equity.items():
        stored = stored_peaks.get(str(account_id))
        transfers = float(metrics.account_transfers.get(account_id, 0))
        if stored is None or float(equity) - transfers >= float(stored):
            return None
        peak = float(stored) + transfers
        found = _drawdown_gaps(float(equity), peak, levels, exposure)
        if found is None:
            return None
        share = min(share, found, (peak - float(equity)) / exposure)
    return share


def position_band(position, *, breakers: list, user_low: float, user_high: float) -> tuple:
    """(low, high, peak) of `position` within the user's (user_low, user_high)."""
    mark, size = float(position.mark_price), float(position.size)
    if size == 0 or mark <= 0:
        return (user_low, user_high, None)
    direction = position.direction
    entry, realized = float(position.entry_price), float(position.realized_pnl)
    levels, peak = [], None

    def price_at(unrealized: float) -> float:
        return entry + unrealized / (size * direction)

    def peak_at(price: float) -> None:
        nonlocal peak
        peak = price if peak is None else (min(peak, price) if direction > 0 else max(peak, price))

    for breaker in breakers:
        if not breaker.applies(position.exchange, position.symbol):
            continue
        kind, threshold = breaker.condition_type, float(breaker.threshold)
        if kind == ConditionType.MAX_POSITION_SIZE:
            levels.append(threshold / abs(size))
        elif kind == ConditionType.PNL:
            profit = breaker.additional_params.get("direction", "loss") == "profit"
            levels.append(price_at(threshold if profit else -threshold))
        elif kind == ConditionType.MAX_DRAWDOWN:
            entry_notional = max(float(position.peak_entry_notional), abs(size * entry))
            if entry_notional > 0:
                top = max(float(position.peak_pnl), realized + float(position.unrealized_pnl))
                levels.append(price_at(top - threshold * entry_notional / 100 - realized))
                peak_at(price_at(top - realized))
        elif kind == ConditionType.TRAILING_STOP:
            best = float(position.best_price or position.entry_price)
            if best > 0:
                levels.append(best * (1 - threshold / 100) if direction > 0 else best * (1 + threshold / 100))
                peak_at(best)
        elif kind not in UNBANDED_CONDITIONS:
            return EVERY_TICK
    low = max([level for level in levels if level <= mark], default=-math.inf)
    high = min([level for level in levels if level >= mark], default=math.inf)
    low, high = max(low, user_low), min(high, user_high)
    if math.isfinite(low):
        low += abs(low) * ROUNDING
    if math.isfinite(high):
        high -= abs(high) * ROUNDING
    return (low, high, peak)


def bands_of(computed, *, limits: list, config, state) -> dict:
    """{position_id: Band} for the user just evaluated (EVERY_TICK bands where none can
    be given)."""
    book = computed.book
    budget = None if computed.breakers is None or computed.breakers.stale else user_budget(computed, limits=limits)
    volatility = {breaker.id for breaker in config.breakers if breaker.condition_type == ConditionType.VOLATILITY}
    # A latched volatility trip is released on a tick once its range narrowed: no price says when.
    volatile = {key for breaker_id, key in state.latched if breaker_id in volatility}
    bands = {}
    for position in book.positions:
        if budget is None or f"position:{position.id}" in volatile:
            bands[position.id] = Band(*EVERY_TICK, user_low=math.inf, user_high=-math.inf)
            continue
        mark = float(position.mark_price)
        share = budget * (1 - ROUNDING) if math.isfinite(budget) else math.inf
        user_low = mark * (1 - share) if math.isfinite(share) else -math.inf
        user_high = mark * (1 + share) if math.isfinite(share) else math.inf
        low, high, peak = position_band(position, breakers=config.breakers, user_low=user_low, user_high=user_high)
        bands[position.id] = Band(low, high, peak, user_low, user_high)
    return bands


def band_after_peak(band: Band, position, *, breakers: list) -> Band:
    """The band of `position` once a favourable tick moved its peak (no evaluation)."""
    low, high, peak = position_band(position, breakers=breakers, user_low=band.user_low, user_high=band.user_high)
    return Band(low, high, peak, band.user_low, band.user_high)


def past_peak(band: Band, position, price: float) -> bool:
    return band.peak is not None and (price > band.peak if position.direction > 0 else price < band.peak)


def market_quiet(positions: list, bands: dict) -> tuple[float, float]:
    """(low, high): a mark of the market strictly between them is inside the band of
    each of its `positions` and past none of their peaks, so it cannot change an
    evaluation. A position with no band yet (its next tick evaluates it, whatever it
    is) leaves nothing quiet; one evaluated on every tick bounds nothing: its ticks are
    evaluated in their turn (it would make every tick of the market go first)."""
    low, high = -math.inf, math.inf
    for position in positions:
        band = bands.get(position.id)
        if band is None:
            return NOTHING_QUIET
        if band.low >= band.high:
            continue
        low, high = max(low, band.low), min(high, band.high)
        if band.peak is not None:  # a mark at the peak is not past it (`past_peak`): quiet too
            if position.direction > 0:
                high = min(high, math.nextafter(band.peak, math.inf))
            else:
                low = max(low, math.nextafter(band.peak, -math.inf))
    return low, high


def due_of(computed, decision, *, state, config, now: datetime) -> datetime | None:
    """When time alone may change this user's decision: a held hit's or ladder step's
    cooldown ends, an
    alert's cooldown ends, a time-based breaker comes due (or a flat window may open),
    a mark goes stale. Moments already past changed nothing (a time-based breaker past
    its threshold stays hit)."""
    moments = [held.until for held in (*decision.held, *decision.step_held)]
    cooldown = timedelta(seconds=config.alert_cooldown_seconds)
    moments += [resolved_at + cooldown for resolved_at in state.cooling.values()]
    book = computed.book
    if book.positions:
        oldest = min(position.mark_updated_at for position in book.positions)
        moments.append(oldest + timedelta(seconds=config.max_price_age_seconds))
    for breaker in config.breakers:
        if breaker.condition_type != ConditionType.TIME_BASED:
            continue
        for position in book.positions:
            if not breaker.applies(position.exchange, position.symbol):
                continue
            if breaker.additional_params.get("flat_windows"):
                moments.append(now.replace(second=0, microsecond=0) + timedelta(minutes=1))
            moments.append(position.opened_at + timedelta(seconds=float(breaker.threshold)))
    return min((moment for moment in moments if moment > now), default=None)


class QuietPrices(dict):
    """{(exchange, symbol): (low, high)}: each market's `market_quiet` prices, kept by the
    risk index's thread and read, without a lock, by the feed's event loop to take a tick
    outside them first (a market without an entry, none evaluated yet, in its turn).
    Markets whose bands change are `stale` until `refresh` (at the end of an evaluation);
    meanwhile their earlier prices stand (`follow`) or none do (`drop`)."""

    def __init__(self):
        super().__init__()
        self.stale: set = set()

    def follow(self, positions) -> None:
        """New bands for `positions`: their markets' prices are recomputed at `refresh`."""
        self.stale.update((position.exchange, position.symbol) for position in positions)

    def drop(self, positions) -> None:
        """The bands of `positions` are gone: until `refresh`, every tick of their markets
        goes first."""
        for position in positions:
            self[(position.exchange, position.symbol)] = NOTHING_QUIET
        self.follow(positions)

    def reset(self, markets) -> None:
        """Every band is gone: every tick goes first until `refresh`."""
        self.clear()
        self.update(dict.fromkeys(markets, NOTHING_QUIET))
        self.stale.update(markets)

    def refresh(self, by_market: dict, bands: dict) -> None:
        stale, self.stale = self.stale, set()
        for market in stale:
            positions = by_market.get(market)
            if positions:
                self[market] = market_quiet(positions, bands)
            else:
                self.pop(market, None)
