"""Pure limit and cap assessment (SPEC §4): each user limit and desk cap applied to the
metrics of `risk.services.assess`, with its risk level, and the user's overall level. No
database, no Redis; the conventions of `risk.services.assess` (a `None` value is
undefined and critical)."""

from dataclasses import dataclass, field
from decimal import Decimal

from risk.constants import LimitType
from risk.services.assess import ZERO, Metrics, drawdown_pct, leverage_of
from risk.services.snapshots import Book, ConfigView, DeskTotals, LimitView

HALF = Decimal("0.5")
DEFAULT_WARNING_RATIO = Decimal("0.8")
RISK_LEVELS = ("low", "moderate", "high", "critical")


@dataclass(slots=True, frozen=True)
class LimitStatus:
    """One limit (or config cap) applied to one value. `value` None: undefined, critical."""

    key: str
    source: str  # limit | config
    limit_id: object
    limit_type: str
    symbol: str | None
    value: Decimal | None
    threshold: Decimal
    warning: Decimal | None = None
    cap: str | None = None  # the config field, for source config
    exchange: str | None = None
    ladder: tuple = ()  # the limit's graded ladder ((at_pct, action), ...), issue 15

    @property
    def exceeded(self) -> bool:
        return self.value is None or self.value >= self.threshold

    @property
    def warned(self) -> bool:
        return self.warning is not None and (self.value is None or self.value >= self.warning)

    @property
    def utilization(self) -> Decimal | None:
        return None if self.value is None else self.value / self.threshold

    @property
    def risk_level(self) -> str:
        u = self.utilization
        if u is None or u >= 1:
            return "critical"
        w = max(HALF, self.warning / self.threshold) if self.warning is not None else DEFAULT_WARNING_RATIO
        if u >= w:
            return "high"
        if u >= HALF:
            return "moderate"
        return "low"


@dataclass(slots=True)
class LimitAssessment:
    statuses: list = field(default_factory=list)
    # Drawdown limits' new peaks: {limit_id: {account_id (str): peak}}; only rises.
    peak_updates: dict = field(default_factory=dict)
    statuses_level: str | None = None  # the statuses' own level, once asked (an assessment may be reused)

    def risk_level(self, *, breaker_exposed: bool) -> str:
        """`risk_level_of` the statuses."""
        if breaker_exposed:
            return risk_level_of((), breaker_exposed=True)
        if self.statuses_level is None:
            self.statuses_level = risk_level_of(self.statuses, breaker_exposed=False)
        return self.statuses_level


def _limit_value(limit: LimitView, metrics: Metrics, book: Book, assessment: LimitAssessment):
    """The metric a portfolio-wide limit compares (position_size is handled by the caller)."""
    kind = limit.limit_type
    if kind == LimitType.TOTAL_EXPOSURE:
        return metrics.total_exposure
    if kind == LimitType.DAILY_LOSS:
        return metrics.daily_loss
    if kind == LimitType.MARGIN_RATIO:
        if metrics.margin_ratio_undefined:
            return None
        return metrics.margin_ratio if metrics.margin_ratio is not None else ZERO
    if kind == LimitType.LEVERAGE:
        return metrics.leverage
    if kind == LimitType.DRAWDOWN:
        # Peaks are kept net of transfers (equity - net deposits), so a deposit raises the
        # peak and a withdrawal lowers it by the amount moved: transfers are never
        # drawdown (SPEC §4). The peak compared is the stored one plus today's transfers.
        worst = ZERO
        updates = {}
        for account_id, equity in metrics.account_equity.items():
            transfers = metrics.account_transfers.get(account_id, ZERO)
            net_equity = equity - transfers
            stored = limit.equity_peaks.get(str(account_id))
            stored = Decimal(stored) if stored is not None else None
            peak = net_equity if stored is None or net_equity > stored else stored
            if stored is None or peak > stored:
                updates[str(account_id)] = peak
            worst = max(worst, drawdown_pct(peak + transfers, equity))
        if updates:
            assessment.peak_updates[limit.id] = updates
        return worst
    raise ValueError(f"unknown limit type {kind!r}")


def limits_assess(
    *, book: Book, metrics: Metrics, limits: list[LimitView], config: ConfigView, desk: DeskTotals | None
) -> LimitAssessment:
    """Statuses of the user's enabled limits and of the desk caps that apply to them."""
    assessment = LimitAssessment()
    statuses = assessment.statuses
    for limit in limits:
        if limit.limit_type == LimitType.POSITION_SIZE:
            symbols = [limit.symbol] if limit.symbol is not None else sorted(metrics.symbol_net)
            for symbol in symbols:
                statuses.append(
                    LimitStatus(
                        key=f"limit:{limit.id}:{symbol}",
                        source="limit",
                        limit_id=limit.id,
                        limit_type=limit.limit_type,
                        symbol=symbol,
                        value=metrics.symbol_net.get(symbol, ZERO),
                        threshold=limit.threshold,
                        warning=limit.warning,
                        ladder=limit.ladder,
                    )
                )
        else:
            statuses.append(
                LimitStatus(
                    key=f"limit:{limit.id}:*",
                    source="limit",
                    limit_id=limit.id,
                    limit_type=limit.limit_type,
                    symbol=None,
                    value=_limit_value(limit, metrics, book, assessment),
                    threshold=limit.threshold,
                    warning=limit.warning,
                    ladder=limit.ladder,
                )
            )
    statuses.extend(_caps_assess(book=book, metrics=metrics, config=config, desk=desk))
    return assessment


def _cap(cap: str, scope: str, limit_type: str, value, threshold, *, symbol=None, exchange=None) -> LimitStatus:
    return LimitStatus(
        key=f"config:{scope}:{cap}",
        source="config",
        limit_id=None,
        limit_type=limit_type,
        symbol=symbol,
        value=value,
        threshold=threshold,
        cap=cap,
        exchange=exchange,
    )


def _caps_assess(*, book: Book, metrics: Metrics, config: ConfigView, desk: DeskTotals | None) -> list[LimitStatus]:
    """Desk caps (SPEC §5) that apply to this user: sums are the desk's (all users
    together); account and position properties are the user's own."""
    caps: list[LimitStatus] = []
    has_positions = bool(book.positions)
    if desk is not None and has_positions:
        if config.max_total_exposure is not None:
            caps.append(
                _cap("max_total_exposure", "global", "total_exposure", desk.total_exposure, config.max_total_exposure)
            )
        if config.max_leverage is not None:
            desk_leverage = leverage_of(desk.total_exposure, desk.equity, has_balance=desk.balances > 0)
            caps.append(_cap("max_leverage", "global", "leverage", desk_leverage, config.max_leverage))
    if desk is not None and metrics.has_balance and config.daily_loss_limit is not None:
        caps.append(_cap("daily_loss_limit", "global", "daily_loss", desk.daily_loss, config.daily_loss_limit))
    if metrics.has_balance and config.max_drawdown_pct is not None:
        caps.append(_cap("max_drawdown_pct", "global", "drawdown", metrics.drawdown, config.max_drawdown_pct))
    if config.max_margin_ratio is not None and (metrics.margin_ratio is not None or metrics.margin_ratio_undefined):
        value = None if metrics.margin_ratio_undefined else metrics.margin_ratio
        caps.append(_cap("max_margin_ratio", "global", "margin_ratio", value, config.max_margin_ratio))
    symbols = sorted({position.symbol for position in book.positions})
    for symbol in symbols:
        size_cap, leverage_cap = config.symbol_caps.get(symbol, (None, None))
        if size_cap is not None and desk is not None:
            caps.append(
                _cap(
                    "max_position_size",
                    f"symbol:{symbol}",
                    "position_size",
                    abs(desk.symbol_net.get(symbol, ZERO)),
                    size_cap,
                    symbol=symbol,
                )
            )
        if leverage_cap is not None:
            leverages = [p.leverage for p in book.positions if p.symbol == symbol and p.leverage is not None]
            if leverages:
                caps.append(
                    _cap("max_leverage", f"symbol:{symbol}", "leverage", max(leverages), leverage_cap, symbol=symbol)
                )
    if desk is not None:
        for exchange in sorted({position.exchange for position in book.positions}):
            cap = config.exchange_caps.get(exchange)
            if cap is not None:
                caps.append(
                    _cap(
                        "max_exposure",
                        f"exchange:{exchange}",
                        "total_exposure",
                        desk.exchange_exposure.get(exchange, ZERO),
                        cap,
                        exchange=exchange,
                    )
                )
    return caps


def risk_level_of(statuses: list[LimitStatus], *, breaker_exposed: bool) -> str:
    """The highest level over the statuses; critical while a latched trip leaves one of
    the user's positions exposed (SPEC §4); low with nothing applicable."""
    if breaker_exposed:
        return "critical"
    best = 0
    for status in statuses:
        best = max(best, RISK_LEVELS.index(status.risk_level))
        if best == 3:
            break
    return RISK_LEVELS[best]
