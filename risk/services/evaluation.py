"""The one evaluation service (SPEC §4, §5), used by `POST /risk/evaluate`, the
`evaluate_risk` job (the periodic safety net), the position/price event hook and the
admin's evaluate-now actions.

`evaluation_run(user_id=...)` reads the user's book (a handful of queries whatever its
size), evaluates it in memory (`risk.services.assess`), then writes only what changed:
alerts raised and resolved, drawdown peaks, trips latched and acted on, latches
released. Calling it twice acts once.

It is re-entrant per user: a breaker action re-syncs the account, which announces a
position change, which would evaluate the same user again in the middle of the first
evaluation; that nested request is deferred and run once the first one finishes.
"""

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from risk.formatting import decimal_str
from risk.models import AlertSeverity, AlertStatus, AlertType, BreakerTrip, ConditionType, RiskAlert, RiskLimit
from risk.services import assess, prices
from risk.services.alerts import AlertSpec, alerts_sync
from risk.services.snapshots import (
    Book,
    ConfigView,
    DeskTotals,
    book_load,
    config_view_get,
    desk_totals_load,
    limits_load,
)
from risk.services.trips import release_due, trip_action_run, trip_latch, trips_release

logger = logging.getLogger(__name__)

LIMIT_PREFIXES = ("limit:", "config:")
STALE_PREFIX = "stale:"
LEVEL_WORDS = {"warning": "above its warning level", "exceeded": "exceeded"}


# --- the result ---------------------------------------------------------------------------
@dataclass
class BreakerReport:
    name: str
    triggered: bool
    action: str
    action_result: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    action_status: str | None = None
    dry_run: bool | None = None
    new_trip: bool = False
    trip_id: str | None = None

    def as_dict(self) -> dict:
        data = {"name": self.name, "triggered": self.triggered, "action": self.action}
        data["action_result"] = self.action_result
        if self.triggered:
            data.update(
                exchange=self.exchange,
                symbol=self.symbol,
                action_status=self.action_status,
                dry_run=self.dry_run,
                new_trip=self.new_trip,
                trip_id=self.trip_id,
            )
        return data


@dataclass
class EvaluationResult:
    user_id: object
    risk_level: str
    metrics: assess.Metrics
    statuses: list
    symbol: str | None = None
    breakers: list = field(default_factory=list)
    alerts_raised: list = field(default_factory=list)
    alerts_resolved: list = field(default_factory=list)
    stale_positions: int = 0

    def _status_item(self, status: assess.LimitStatus, *, warning: bool) -> dict:
        item = {
            "limit_id": str(status.limit_id) if status.limit_id is not None else None,
            "limit_type": status.limit_type,
            "symbol": status.symbol,
            "current_value": decimal_str(status.value),
            "threshold": decimal_str(status.threshold),
            "source": status.source,
        }
        if warning:
            item["warning_value"] = decimal_str(status.warning)
        if status.cap is not None:
            item["cap"] = status.cap
        if status.exchange is not None:
            item["exchange"] = status.exchange
        if status.value is None:
            item["reason"] = "equity <= 0: undefined, critical whatever the threshold"
        return item

    def _relevant(self, status: assess.LimitStatus) -> bool:
        return self.symbol is None or status.symbol in (None, self.symbol)

    @property
    def violations(self) -> list[dict]:
        return [
            self._status_item(status, warning=False)
            for status in self.statuses
            if status.exceeded and self._relevant(status)
        ]

    @property
    def warnings(self) -> list[dict]:
        return [
            self._status_item(status, warning=True)
            for status in self.statuses
            if status.warned and not status.exceeded and self._relevant(status)
        ]

    def metrics_out(self) -> dict:
        m = self.metrics
        return {
            "position_size": decimal_str(m.position_size(self.symbol)),
            "daily_pnl": decimal_str(m.daily_pnl),
            "total_exposure": decimal_str(m.total_exposure),
            "margin_ratio": decimal_str(m.margin_ratio),
            "leverage": decimal_str(m.leverage),
            "drawdown": decimal_str(m.drawdown),
            "daily_loss": decimal_str(m.daily_loss),
        }

    def as_dict(self) -> dict:
        """Phase 4's evaluate shape plus `circuit_breakers` and ETRMS's status/message."""
        violations, warnings = self.violations, self.warnings
        tripped = sum(1 for report in self.breakers if report["triggered"])
        return {
            "status": "success",
            "message": (
                f"Risk evaluated: {self.risk_level}; {len(violations)} violation(s), {len(warnings)} warning(s), "
                f"{tripped} circuit breaker trip(s)"
            ),
            "risk_level": self.risk_level,
            "metrics": self.metrics_out(),
            "violations": violations,
            "warnings": warnings,
            "circuit_breakers": self.breakers,
        }


# --- re-entrancy --------------------------------------------------------------------------
_local = threading.local()


def _active() -> dict:
    if not hasattr(_local, "active"):
        _local.active = {}
    return _local.active


# --- alerts from statuses -------------------------------------------------------------------
def _label(status: assess.LimitStatus) -> str:
    kind = status.limit_type.replace("_", " ")
    where = f" on {status.symbol}" if status.symbol else ""
    if status.exchange:
        where = f" on {status.exchange}"
    origin = f"desk cap {status.cap}" if status.source == "config" else f"{kind} limit"
    return f"{origin}{where}"


def _spec(status: assess.LimitStatus, level: str) -> AlertSpec:
    bound = status.threshold if level == "exceeded" else status.warning
    value = "undefined (equity <= 0)" if status.value is None else decimal_str(status.value)
    message = f"{_label(status).capitalize()} {LEVEL_WORDS[level]}: {value} >= {decimal_str(bound)}"
    if level == "warning":
        message += f" (threshold {decimal_str(status.threshold)})"
    metadata = {
        "symbol": status.symbol,
        "current_value": decimal_str(status.value),
        "threshold": decimal_str(status.threshold),
        "limit_id": str(status.limit_id) if status.limit_id is not None else None,
        "limit_type": status.limit_type,
        "source": status.source,
        "level": level,
    }
    if status.warning is not None:
        metadata["warning_value"] = decimal_str(status.warning)
    if status.cap is not None:
        metadata["cap"] = status.cap
    if status.exchange is not None:
        metadata["exchange"] = status.exchange
    return AlertSpec(
        key=f"{status.key}:{level}",
        alert_type=f"{status.limit_type}_{level}",
        severity=AlertSeverity.HIGH if level == "exceeded" else AlertSeverity.MEDIUM,
        message=message,
        metadata=metadata,
        limit_id=status.limit_id,
    )


def wanted_alerts(statuses: list, stale: dict | None) -> dict[str, AlertSpec]:
    wanted: dict[str, AlertSpec] = {}
    for status in statuses:
        if status.exceeded:
            spec = _spec(status, "exceeded")
            wanted[spec.key] = spec
        if status.warned:
            spec = _spec(status, "warning")
            wanted[spec.key] = spec
    for position, reason in (stale or {}).values():
        key = f"{STALE_PREFIX}{position.id}"
        wanted[key] = AlertSpec(
            key=key,
            alert_type=AlertType.DATA_STALE,
            severity=AlertSeverity.CRITICAL,
            message=(
                f"Stale data on {position.exchange} {position.symbol} ({position.side}): {reason}; "
                "circuit breakers skip this position until fresh data arrives."
            ),
            metadata={"exchange": position.exchange, "symbol": position.symbol, "position_id": str(position.id)},
        )
    return wanted


# --- inputs of breakers -------------------------------------------------------------------------
def streak_inputs_load(*, book: Book, config: ConfigView) -> tuple[dict, dict]:
    """(closed trades, officer re-arm cutoffs) for consecutive_losses breakers: the
    last `threshold` closed positions per (account, symbol) the user holds (one
    windowed query) and when an officer last re-armed each streak."""
    from accounts.models import ClosedTrade

    streak_breakers = [b for b in config.breakers if b.condition_type == ConditionType.CONSECUTIVE_LOSSES]
    if not streak_breakers or not book.positions:
        return {}, {}
    depth = int(max(breaker.threshold for breaker in streak_breakers))
    pairs = {(position.account_id, position.symbol) for position in book.positions}
    rows = (
        ClosedTrade.objects.filter(account_id__in={account for account, _ in pairs})
        .annotate(rank=Window(RowNumber(), partition_by=[F("account_id"), F("symbol")], order_by=F("closed_at").desc()))
        .filter(rank__lte=depth)
        .order_by("account_id", "symbol", "-closed_at")
        .values_list("account_id", "symbol", "closed_at", "realized_pnl")
    )
    closed_trades: dict = {}
    for account_id, symbol, closed_at, pnl in rows:
        if (account_id, symbol) in pairs:
            closed_trades.setdefault((account_id, symbol), []).append((closed_at, pnl))
    cutoffs: dict = {}
    for breaker_id, latch_key, released_at in BreakerTrip.objects.filter(
        breaker_id__in=[b.id for b in streak_breakers], user_id=book.user_id, release_reason="rearmed"
    ).values_list("breaker_id", "latch_key", "released_at"):
        _, account_id, symbol = latch_key.split(":", 2)
        key = (breaker_id, int(account_id), symbol)
        cutoffs[key] = max(cutoffs.get(key, released_at), released_at)
    return closed_trades, cutoffs


def price_ranges_load(*, book: Book, config: ConfigView, now: datetime) -> dict:
    """Price ranges of the markets volatility breakers watch on the user's positions."""
    breakers = [b for b in config.breakers if b.condition_type == ConditionType.VOLATILITY]
    if not breakers or not book.positions:
        return {}
    markets = {(position.exchange, position.symbol) for position in book.positions}
    requests = set()
    for breaker in breakers:
        window = int(breaker.additional_params.get("window_seconds", 300))
        requests |= {(exchange, symbol, window) for exchange, symbol in markets if breaker.applies(exchange, symbol)}
    return prices.price_ranges_get(requests, floors=volatility_floors(config), now=now.timestamp())


def breaker_inputs_load(*, book: Book, config: ConfigView, now: datetime) -> assess.BreakerInputs:
    """Closed-trade streaks and price ranges, only for breakers that need them."""
    closed_trades, cutoffs = streak_inputs_load(book=book, config=config)
    return assess.BreakerInputs(
        closed_trades=closed_trades,
        streak_cutoffs=cutoffs,
        price_ranges=price_ranges_load(book=book, config=config, now=now),
    )


_recorded_marks: dict = {}
_recorded_lock = threading.Lock()


def volatility_floors(config: ConfigView) -> dict:
    """{window seconds: the lowest threshold % among the enabled volatility breakers}."""
    floors: dict = {}
    for breaker in config.breakers:
        if breaker.condition_type == ConditionType.VOLATILITY:
            window = int(breaker.additional_params.get("window_seconds", 300))
            floors[window] = min(floors.get(window, breaker.threshold), breaker.threshold)
    return floors


def marks_record(book: Book, *, floors: dict) -> None:
    """Feed the volatility samples with marks newer than this process recorded (one pass
    over the book; one Redis pipeline when something is new)."""
    samples = {}
    with _recorded_lock:
        recorded = _recorded_marks
        for position in book.positions:
            key = (position.exchange, position.symbol)
            at = position.mark_updated_at
            last = recorded.get(key)
            if last is None or at > last:
                recorded[key] = at
                samples[key] = (position.exchange, position.symbol, position.mark_price, at.timestamp())
    if samples:
        try:
            prices.price_samples_record(list(samples.values()), floors=floors)
        except Exception:
            logger.exception("Could not record price samples")


# --- writes ---------------------------------------------------------------------------------------
def _peaks_persist(peak_updates: dict) -> None:
    """Drawdown limits' peaks only ever rise: merge under a row lock."""
    for limit_id, updates in peak_updates.items():
        with transaction.atomic():
            limit = RiskLimit.objects.select_for_update().filter(pk=limit_id).only("equity_peaks").first()
            if limit is None:
                continue
            peaks = dict(limit.equity_peaks or {})
            changed = False
            for account_id, peak in updates.items():
                current = peaks.get(account_id)
                if current is None or peak > Decimal(current):
                    peaks[account_id] = format(peak, "f")
                    changed = True
            if changed:
                RiskLimit.objects.filter(pk=limit_id).update(equity_peaks=peaks)


def _trips_apply(
    *, user_id, book: Book, config: ConfigView, breaker_assessment: assess.BreakerAssessment, now: datetime
) -> tuple[list, bool]:
    """Latch and act on new hits, release cleared latches. Returns (reports per hit, any new trip)."""
    latched = {
        (trip.breaker_id, trip.latch_key): trip
        for trip in BreakerTrip.objects.filter(user_id=user_id, released_at__isnull=True).only(
            "id",
            "breaker_id",
            "latch_key",
            "triggered_at",
            "action_status",
            "action_result",
            "dry_run",
            "exchange",
            "symbol",
        )
    }
    breakers = {breaker.id: breaker for breaker in config.breakers}
    reports: list[BreakerReport] = []
    new_trip = False
    hit_keys = set()
    for hit in breaker_assessment.hits:
        pair = (hit.breaker.id, hit.latch_key)
        if pair in hit_keys:
            continue  # both sides of a hedged symbol hit the same streak latch
        hit_keys.add(pair)
        trip = latched.get(pair)
        is_new = False
        if trip is None:
            trip = trip_latch(hit=hit, dry_run=config.dry_run, now=now)
            if trip is not None:
                trip = trip_action_run(trip=trip, additional_params=hit.breaker.additional_params)
                is_new = new_trip = True
            else:
                trip = BreakerTrip.objects.filter(
                    breaker_id=hit.breaker.id, latch_key=hit.latch_key, released_at__isnull=True
                ).first()
        reports.append(
            BreakerReport(
                name=hit.breaker.name,
                triggered=True,
                action=hit.breaker.action,
                action_result=trip.action_result if trip is not None else None,
                exchange=hit.position.exchange,
                symbol=hit.position.symbol,
                action_status=trip.action_status if trip is not None else None,
                dry_run=trip.dry_run if trip is not None else config.dry_run,
                new_trip=is_new,
                trip_id=str(trip.id) if trip is not None else None,
            )
        )
    open_positions = {f"position:{position.id}" for position in book.positions}
    to_release = []
    for (breaker_id, key), trip in latched.items():
        breaker = breakers.get(breaker_id)
        if breaker is None or (breaker_id, key) in hit_keys:
            continue
        gone = key.startswith("position:") and key not in open_positions
        cleared = breaker_assessment.evaluated(key)
        if (gone or cleared) and release_due(trip, cooldown_seconds=breaker.cooldown_seconds, now=now):
            to_release.append(trip.pk)
    trips_release(trip_ids=to_release, reason="condition cleared", now=now)
    return reports, new_trip


def _reports_for(reports: list[BreakerReport], config: ConfigView, *, symbol=None, exchange=None) -> list[dict]:
    shown = [
        report
        for report in reports
        if (symbol is None or report.symbol == symbol) and (exchange is None or report.exchange == exchange)
    ]
    triggered_names = {report.name for report in shown}
    untriggered = [
        BreakerReport(name=breaker.name, triggered=False, action=breaker.action)
        for breaker in config.breakers
        if breaker.name not in triggered_names
        and (symbol is None or breaker.symbols is None or symbol in breaker.symbols)
        and (exchange is None or breaker.exchanges is None or exchange in breaker.exchanges)
    ]
    return [report.as_dict() for report in sorted(shown + untriggered, key=lambda r: (r.name, r.symbol or ""))]


# --- the service --------------------------------------------------------------------------------
def evaluation_run(
    *, user_id, symbol: str | None = None, exchange: str | None = None, breakers: bool = True, now=None
) -> EvaluationResult:
    """Evaluate one user's limits, desk caps and (with `breakers`) circuit breakers, and
    apply the outcome. `symbol` / `exchange` narrow the report (position_size metric,
    violations, breaker entries), never what is evaluated. Call it outside a transaction."""
    active = _active()
    key = str(user_id)
    if key in active:
        active[key] = True  # run again once the current evaluation finishes
        return None
    active[key] = False
    try:
        result = _evaluate(user_id=user_id, symbol=symbol, exchange=exchange, breakers=breakers, now=now)
        for _ in range(3):
            if not active[key]:
                break
            active[key] = False
            _evaluate(user_id=user_id, symbol=None, exchange=None, breakers=True, now=None)
        return result
    finally:
        active.pop(key, None)


def _evaluate(*, user_id, symbol, exchange, breakers: bool, now) -> EvaluationResult:
    now = now or timezone.now()
    config = config_view_get()
    book = book_load(user_id=user_id)
    desk: DeskTotals | None = None
    if config.needs_desk_totals and (book.positions or book.accounts):
        desk = desk_totals_load(
            config=config,
            symbols={position.symbol for position in book.positions},
            exchanges={position.exchange for position in book.positions},
        )
    limits = limits_load(user_id=user_id)
    computed = compute(book=book, limits=limits, config=config, desk=desk, now=now, breakers=breakers)
    return apply(computed, config=config, now=now, symbol=symbol, exchange=exchange)


@dataclass
class Computed:
    """The pure part of one user's evaluation, before any write."""

    book: Book
    metrics: assess.Metrics
    limits: assess.LimitAssessment
    breakers: assess.BreakerAssessment | None
    wanted: dict


def compute(
    *,
    book: Book,
    limits: list,
    config: ConfigView,
    desk: DeskTotals | None,
    now: datetime,
    breakers: bool,
    inputs: assess.BreakerInputs | None = None,
) -> Computed:
    metrics = assess.metrics_compute(book)
    limit_assessment = assess.limits_assess(book=book, metrics=metrics, limits=limits, config=config, desk=desk)
    breaker_assessment = None
    if breakers:
        if inputs is None:
            floors = volatility_floors(config)
            if floors:
                marks_record(book, floors=floors)
            inputs = breaker_inputs_load(book=book, config=config, now=now)
        breaker_assessment = assess.breakers_assess(book=book, config=config, now=now, inputs=inputs)
    wanted = wanted_alerts(limit_assessment.statuses, breaker_assessment.stale if breaker_assessment else None)
    return Computed(book=book, metrics=metrics, limits=limit_assessment, breakers=breaker_assessment, wanted=wanted)


def apply(computed: Computed, *, config: ConfigView, now: datetime, symbol=None, exchange=None) -> EvaluationResult:
    """Write what the evaluation changed: alerts, drawdown peaks, trips and releases."""
    user_id = computed.book.user_id
    open_alerts = {
        alert.dedup_key: alert
        for alert in RiskAlert.objects.filter(user_id=user_id)
        .exclude(status=AlertStatus.RESOLVED)
        .exclude(dedup_key="")
    }
    managed = LIMIT_PREFIXES + ((STALE_PREFIX,) if computed.breakers is not None else ())
    changes = alerts_sync(
        user_id=user_id,
        wanted=computed.wanted,
        open_alerts=open_alerts,
        managed_prefixes=managed,
        cooldown_seconds=config.alert_cooldown_seconds,
        now=now,
    )
    if computed.limits.peak_updates:
        _peaks_persist(computed.limits.peak_updates)

    reports: list[BreakerReport] = []
    new_trip = False
    if computed.breakers is not None:
        reports, new_trip = _trips_apply(
            user_id=user_id, book=computed.book, config=config, breaker_assessment=computed.breakers, now=now
        )
    breaker_alert_open = new_trip or any(
        alert.alert_type == AlertType.CIRCUIT_BREAKER for alert in open_alerts.values()
    )
    return EvaluationResult(
        user_id=user_id,
        risk_level=assess.risk_level_of(computed.limits.statuses, breaker_tripped=breaker_alert_open),
        metrics=computed.metrics,
        statuses=computed.limits.statuses,
        symbol=symbol,
        breakers=_reports_for(reports, config, symbol=symbol, exchange=exchange) if computed.breakers else [],
        alerts_raised=changes.raised,
        alerts_resolved=changes.resolved,
        stale_positions=len(computed.breakers.stale) if computed.breakers else 0,
    )


# --- event hooks -------------------------------------------------------------------------------
def positions_changed_listener(*, user_ids: set, exchange: str, symbols: set) -> None:
    """accounts.events listener: a position or mark changed (sync, paper fill, feed).
    In a process that runs the in-memory index (the feed), the index handles it;
    elsewhere each affected user is evaluated now."""
    from risk.services.index import active_index

    index = active_index()
    if index is not None:
        index.positions_changed(user_ids=user_ids, exchange=exchange, symbols=symbols)
        return
    for user_id in user_ids:
        try:
            evaluation_run(user_id=user_id)
        except Exception:
            logger.exception("Event-driven evaluation of user %s failed", user_id)


def limits_changed_listener(*, user_ids: set) -> None:
    """A limit changed: the owner's alerts follow the new thresholds at once."""
    for user_id in user_ids:
        try:
            evaluation_run(user_id=user_id, breakers=False)
        except Exception:
            logger.exception("Evaluation after a limit change failed for user %s", user_id)


def users_with_exposure() -> list:
    """Every user with an exchange account (the sweep's population)."""
    from accounts.models import ExchangeAccount

    return list(ExchangeAccount.objects.values_list("user_id", flat=True).distinct())


def evaluation_sweep(*, user_id=None, symbol=None) -> dict:
    """`evaluate_risk`: evaluate one user, or every user with an account (the periodic
    safety net)."""
    user_ids = [user_id] if user_id is not None else users_with_exposure()
    levels: dict[str, int] = {}
    raised = resolved = trips = failures = 0
    for uid in user_ids:
        try:
            result = evaluation_run(user_id=uid, symbol=symbol)
        except Exception:
            logger.exception("Sweep evaluation of user %s failed", uid)
            failures += 1
            continue
        if result is None:
            continue
        levels[result.risk_level] = levels.get(result.risk_level, 0) + 1
        raised += len(result.alerts_raised)
        resolved += len(result.alerts_resolved)
        trips += sum(1 for report in result.breakers if report.get("new_trip"))
    if failures and failures == len(user_ids):
        raise RuntimeError(f"evaluation failed for all {failures} user(s)")
    return {
        "users": len(user_ids),
        "risk_levels": levels,
        "alerts_raised": raised,
        "alerts_resolved": resolved,
        "new_trips": trips,
        "failures": failures,
    }
