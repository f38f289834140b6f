"""Pure risk evaluation (SPEC §4, §5): metrics and breaker conditions (limit and cap
statuses: `risk.services.assess_limits`; each condition's checker and screen:
`risk.services.breaker_checks`). No database, no Redis: inputs are the views of
`risk.services.snapshots` plus what the caller fetched for breakers (closed-trade
streaks, price ranges).

Conventions: money in quote currency, Decimal; percentages in percent; a loss is
positive in `daily_loss`; `None` as a metric value means *undefined and critical*
(leverage or margin ratio with equity <= 0).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from accounts.selectors.books import PositionView
from risk.constants import ConditionType
from risk.services.breaker_checks import CHECKS, streak_length
from risk.services.snapshots import Book, BreakerView, ConfigView

ZERO = Decimal(0)
HUNDRED = Decimal(100)


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


@dataclass(slots=True, frozen=True)
class StreakJudge:
    """Whether a loss streak read from closed trades is not (or no longer) met: a
    winning close re-arms consecutive_losses (SPEC §5), with or without an open
    position. Judged for the streaks asked about (the latched ones), not for every pair
    of the book."""

    breakers: dict  # {breaker_id: BreakerView} of the consecutive_losses breakers
    accounts: dict  # {account_id: AccountView}
    failed_accounts: set
    inputs: BreakerInputs

    def clear(self, breaker_id, latch_key: str) -> bool:
        breaker = self.breakers.get(breaker_id)
        kind, _, rest = latch_key.partition(":")
        account_text, _, symbol = rest.partition(":")
        if breaker is None or kind != "streak" or not account_text.isdigit():
            return False
        account_id = int(account_text)
        trades = self.inputs.closed_trades.get((account_id, symbol))
        account = self.accounts.get(account_id)
        if trades is None or account is None or account_id in self.failed_accounts:
            return False
        if latch_key != f"streak:{account_id}:{symbol}" or not breaker.applies(account.exchange, symbol):
            return False
        cutoff = self.inputs.streak_cutoffs.get((breaker.id, account_id, symbol))
        return streak_length(trades, cutoff) < breaker.threshold


@dataclass(slots=True)
class BreakerAssessment:
    hits: list = field(default_factory=list)
    fresh_positions: set = field(default_factory=set)  # ids of open positions on fresh data
    streaks: StreakJudge | None = None
    stale: dict = field(default_factory=dict)  # {position_id: (position, reason)} in some breaker's scope

    def cleared(self, pair: tuple) -> bool:
        """Was the condition of (breaker_id, latch_key) evaluated and found clear? (The
        caller has already excluded the pairs that hit.) A position's conditions are
        clear when its data was fresh; a streak's when its closed trades were read."""
        kind, _, rest = pair[1].partition(":")
        if kind == "position":
            return rest.isdigit() and int(rest) in self.fresh_positions
        return self.streaks is not None and self.streaks.clear(*pair)


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


def breakers_assess(*, book: Book, config: ConfigView, now: datetime, inputs: BreakerInputs) -> BreakerAssessment:
    """Every enabled breaker on every open position in its scope. Stale positions are
    skipped and reported; streaks are judged from the closed trades the caller read.
    Hits come in the book's order of positions and, for one position, the breakers
    that apply everywhere first, then the scoped ones, each in the configuration's
    order."""
    result = BreakerAssessment()
    if not config.breakers:
        return result
    everywhere = [b for b in config.breakers if b.symbols is None and b.exchanges is None]
    scoped = [b for b in config.breakers if b.symbols is not None or b.exchanges is not None]
    ordered = [(breaker, *CHECKS[breaker.condition_type]) for breaker in everywhere + scoped]
    fresh_after = now - timedelta(seconds=config.max_price_age_seconds)
    failed_accounts = {account.id for account in book.accounts.values() if account.last_sync_failed}
    fresh = []
    for position in book.positions:
        if position.account_id in failed_accounts or position.mark_updated_at < fresh_after:
            if everywhere or any(b.applies(position.exchange, position.symbol) for b in scoped):
                reason = stale_reason(
                    position,
                    account_failed=position.account_id in failed_accounts,
                    now=now,
                    max_age_seconds=config.max_price_age_seconds,
                )
                result.stale[position.id] = (position, reason)
            continue
        fresh.append(position)
    result.fresh_positions = {position.id for position in fresh}
    found = []  # (rank, position, hit)
    for rank, (breaker, check, screen) in enumerate(ordered):
        in_scope = fresh if rank < len(everywhere) else [p for p in fresh if breaker.applies(p.exchange, p.symbol)]
        if not in_scope:
            continue
        for position in screen(breaker, in_scope, now, inputs):
            met = check(breaker, position, now, inputs)
            if met is not None:
                context, summary = met
                hit = BreakerHit(
                    breaker=breaker,
                    position=position,
                    latch_key=latch_key_of(breaker, position),
                    context=context,
                    summary=summary,
                )
                found.append((rank, position, hit))
    if len(found) > 1:
        place = {id(position): index for index, position in enumerate(book.positions)}
        found.sort(key=lambda entry: (place[id(entry[1])], entry[0]))
    result.hits = [hit for _, _, hit in found]
    result.streaks = StreakJudge(
        breakers={b.id: b for b in config.breakers if b.condition_type == ConditionType.CONSECUTIVE_LOSSES},
        accounts=book.accounts,
        failed_accounts=failed_accounts,
        inputs=inputs,
    )
    return result
