"""The one evaluation of SPEC §4 and §5, used by `POST /risk/evaluate`, the
`evaluate_risk` sweep, the position/price event listeners, the admin's evaluate-now
actions and the feed's in-memory index (risk.services.index).

Every path runs the same three steps:
1. `compute`: metrics, limit and cap statuses, breaker hits and the alerts wanted, from
   in-memory views (risk.services.assess, pure);
2. `outcome_decide` (risk.services.outcome, pure): what must be written, given what is
   open and latched now;
3. `outcome_apply`: write it (alerts, drawdown peaks, trips and ladder steps latched
   and acted on, latches released) and report.

`evaluation_run(user_id=...)` loads one user's book and state in two queries and one
Redis round trip whatever its size (risk.services.request_loads), reusing what the same
rows gave the call before (risk.services.request_memo), and runs them; the index keeps books and states
in memory and runs the same steps on every tick. Calling it twice acts once.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from risk.models import RiskLimit
from risk.services import assess, assess_limits
from risk.services.alert_specs import wanted_alerts
from risk.services.alerts import alerts_apply
from risk.services.breaker_inputs import marks_record
from risk.services.common import collector_held
from risk.services.ladder import ladder_sync
from risk.services.outcome import Decision, LatchState, OpenState, exposed_after, outcome_decide
from risk.services.request_loads import book_and_desk_load, state_load, streak_inputs, version_and_ranges
from risk.services.request_memo import ASSESSED
from risk.services.snapshots import Book, ConfigView, DeskTotals, config_view_cached, config_view_get
from risk.services.trips import trips_sync

logger = logging.getLogger(__name__)


# --- the result ---------------------------------------------------------------------------
@dataclass
class BreakerReport:
    """One breaker on one position it hit (or, `triggered` False, a breaker in scope
    that hit nothing)."""

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


@dataclass
class EvaluationResult:
    user_id: object
    risk_level: str
    metrics: assess.Metrics
    statuses: list
    config: ConfigView
    symbol: str | None = None
    exchange: str | None = None
    breakers: list = field(default_factory=list)  # [BreakerReport] of the hits
    breakers_evaluated: bool = True
    alerts_raised: list = field(default_factory=list)
    alerts_resolved: list = field(default_factory=list)
    stale_positions: int = 0
    ladder_trips: list = field(default_factory=list)  # [LadderTrip] latched (and acted on) by this evaluation

    @property
    def new_trips(self) -> int:
        return sum(1 for report in self.breakers if report.new_trip)


# --- step 1: compute ----------------------------------------------------------------------
@dataclass
class Computed:
    """The pure part of one user's evaluation, before any write."""

    book: Book
    metrics: assess.Metrics
    limits: assess_limits.LimitAssessment
    breakers: assess.BreakerAssessment | None
    wanted: dict


def compute(
    *,
    book: Book,
    limits: list,
    config: ConfigView,
    desk: DeskTotals | None,
    now: datetime,
    inputs: assess.BreakerInputs | None,
    assessed: tuple | None = None,
) -> Computed:
    """Evaluate `book` against `limits`, the desk caps and (with `inputs`) the breakers.
    `assessed`: (metrics, limit assessment) of these very views when the caller kept
    them (`limits_evaluate`'s answer; nothing in it depends on `now`)."""
    metrics, limit_assessment = assessed or limits_evaluate(book=book, limits=limits, config=config, desk=desk)
    breaker_assessment = None
    if inputs is not None:
        breaker_assessment = assess.breakers_assess(book=book, config=config, now=now, inputs=inputs)
    wanted = wanted_alerts(limit_assessment.statuses, breaker_assessment.stale if breaker_assessment else None)
    return Computed(book=book, metrics=metrics, limits=limit_assessment, breakers=breaker_assessment, wanted=wanted)


def limits_evaluate(
    *, book: Book, limits: list, config: ConfigView, desk: DeskTotals | None
) -> tuple[assess.Metrics, assess_limits.LimitAssessment]:
    """The metrics and the limit and cap statuses: a function of the views alone."""
    metrics = assess.metrics_compute(book)
    return metrics, assess_limits.limits_assess(book=book, metrics=metrics, limits=limits, config=config, desk=desk)


def _limits_evaluated(*, user_id, book: Book, limits: list, config: ConfigView, desk: DeskTotals | None) -> tuple:
    """`limits_evaluate`, kept while the views are the very objects it was computed from
    (request_memo: the same rows give the same views)."""
    views = (book, limits, config, desk)
    assessed = ASSESSED.get(user_id, views)
    if assessed is None:
        assessed = limits_evaluate(book=book, limits=limits, config=config, desk=desk)
        ASSESSED.put(user_id, views, assessed, weight=len(book.positions) + len(book.accounts) + len(limits))
    return assessed


# --- step 3: apply ------------------------------------------------------------------------
def peaks_persist(peak_updates: dict) -> None:
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


def _reports(decision: Decision, state: OpenState, outcomes: list) -> list[BreakerReport]:
    """A report per (breaker, latch key) the evaluation found hit: newly latched, held
    by its cooldown, or latched before."""
    reports = []
    for outcome in outcomes:
        hit, trip = outcome.hit, outcome.trip
        reports.append(
            BreakerReport(
                name=hit.breaker.name,
                triggered=True,
                action=hit.breaker.action,
                action_result=trip.action_result if trip is not None else None,
                exchange=hit.position.exchange,
                symbol=hit.position.symbol,
                action_status=trip.action_status if trip is not None else None,
                dry_run=trip.dry_run if trip is not None else None,
                new_trip=outcome.new,
                trip_id=str(trip.id) if trip is not None else None,
            )
        )
    for held in decision.held:
        hit = held.hit
        reports.append(
            BreakerReport(
                name=hit.breaker.name,
                triggered=True,
                action=hit.breaker.action,
                action_result=f"Held: the breaker's cooldown runs until {held.until.isoformat()}",
                exchange=hit.position.exchange,
                symbol=hit.position.symbol,
                action_status="cooldown",
            )
        )
    return reports


def _latched_reports(computed: Computed, state: OpenState, results: dict) -> list[BreakerReport]:
    reports, seen = [], set()
    for hit in computed.breakers.hits:
        pair = (hit.breaker.id, hit.latch_key)
        latch = state.latched.get(pair)
        if latch is None or pair in seen:
            continue
        seen.add(pair)
        reports.append(
            BreakerReport(
                name=hit.breaker.name,
                triggered=True,
                action=hit.breaker.action,
                action_result=results.get(latch.trip_id),
                exchange=hit.position.exchange,
                symbol=hit.position.symbol,
                action_status=latch.action_status,
                dry_run=latch.dry_run,
                trip_id=str(latch.trip_id),
            )
        )
    return reports


def outcome_apply(
    computed: Computed,
    decision: Decision,
    state: OpenState,
    *,
    config: ConfigView,
    now: datetime,
    persist_peaks: bool = True,
    report_latched: bool = True,
    latched_results: dict | None = None,
) -> EvaluationResult:
    """Write `decision` for `computed` and report. `persist_peaks` False leaves the peaks
    to the caller (the index keeps them in memory and persists them at its pace);
    `report_latched` reports the action results of pairs latched before: from
    `latched_results` ({trip id: action_result}) when the caller loaded them, else one
    query."""
    user_id = computed.book.user_id
    changes = alerts_apply(
        user_id=user_id, raise_specs=decision.raise_alerts, resolve_keys=decision.resolve_keys, now=now
    )
    if decision.peaks and persist_peaks:
        peaks_persist(decision.peaks)
    ladder_trips = ladder_sync(decision=decision, user_id=user_id, dry_run=config.dry_run, now=now)
    reports: list[BreakerReport] = []
    exposed = exposed_after(state, decision, [])
    if computed.breakers is not None:
        outcomes = trips_sync(decision=decision, dry_run=config.dry_run, now=now)
        reports = _reports(decision, state, outcomes)
        if report_latched:
            if latched_results is None:
                from risk.models import BreakerTrip

                latched_ids = [latch.trip_id for latch in state.latched.values()]
                trips = BreakerTrip.objects.only("id", "action_result").in_bulk(latched_ids) if latched_ids else {}
                latched_results = {trip_id: trip.action_result for trip_id, trip in trips.items()}
            reports += _latched_reports(computed, state, latched_results)
        latched_now = [
            LatchState(
                trip_id=o.trip.id,
                breaker_id=o.hit.breaker.id,
                latch_key=o.hit.latch_key,
                triggered_at=o.trip.triggered_at,
                dry_run=o.trip.dry_run,
                action_status=o.trip.action_status,
            )
            for o in outcomes
            if o.trip is not None
        ]
        exposed = exposed_after(state, decision, latched_now)
    return EvaluationResult(
        user_id=user_id,
        risk_level=computed.limits.risk_level(breaker_exposed=exposed),
        metrics=computed.metrics,
        statuses=computed.limits.statuses,
        config=config,
        breakers=reports,
        breakers_evaluated=computed.breakers is not None,
        alerts_raised=changes.raised,
        alerts_resolved=changes.resolved,
        stale_positions=len(computed.breakers.stale) if computed.breakers else 0,
        ladder_trips=ladder_trips,
    )


# --- the service --------------------------------------------------------------------------
def evaluation_run(
    *, user_id, symbol: str | None = None, exchange: str | None = None, breakers: bool = True, now=None
) -> EvaluationResult:
    """Evaluate one user's limits, desk caps and (with `breakers`) circuit breakers, and
    write the outcome. `symbol` / `exchange` narrow the report (position_size metric,
    violations, breaker entries), never what is evaluated. Call it outside a transaction."""
    with collector_held():  # the book's views are freed when _evaluated returns, before the collector is back
        return _evaluated(user_id=user_id, symbol=symbol, exchange=exchange, breakers=breakers, now=now)


def _evaluated(*, user_id, symbol, exchange, breakers: bool, now) -> EvaluationResult:
    now = now or timezone.now()
    # The configuration cached in this process, checked against the index version in the
    # Redis round trip that reads the price ranges; read again (and the rows with it) when it moved.
    config = config_view_cached() or config_view_get()
    for attempt in range(2):
        # Two queries whatever the book's size, one Redis round trip (risk.services.request_loads).
        book, desk = book_and_desk_load(user_id=user_id, config=config, now=now)
        loaded = state_load(user_id=user_id, config=config, now=now)
        floors = config.volatility_floors() if breakers else {}
        if floors:
            marks_record(book, floors=floors)  # the book's marks count in the ranges read next
        version, price_ranges = version_and_ranges(book=book, config=config, now=now, breakers=breakers)
        if version == config.version or attempt or (version is None and config.version < 0):
            break  # current, or Redis is down and the configuration was read from the database already
        config = config_view_get()  # moved since it was cached (or Redis is down: the database's)
    state = loaded.open_state
    inputs = None
    if breakers:
        latched_keys = [key for _, key in state.latched]
        closed_trades, cutoffs = streak_inputs(loaded, book=book, latched_keys=latched_keys)
        inputs = assess.BreakerInputs(closed_trades=closed_trades, streak_cutoffs=cutoffs, price_ranges=price_ranges)
    assessed = _limits_evaluated(user_id=user_id, book=book, limits=loaded.limits, config=config, desk=desk)
    computed = compute(
        book=book, limits=loaded.limits, config=config, desk=desk, now=now, inputs=inputs, assessed=assessed
    )
    decision = outcome_decide(computed=computed, state=state, config=config, now=now)
    result = outcome_apply(computed, decision, state, config=config, now=now, latched_results=loaded.action_results)
    result.symbol, result.exchange = symbol, exchange
    return result
