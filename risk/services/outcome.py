"""The one write decision of risk evaluation (SPEC §4, §5): given what an evaluation
computed and what is open and latched now, what must be written. Pure: no database,
no Redis. `evaluation_run` (request, job, admin, event hook) and the feed's in-memory
`RiskIndex` both call `outcome_decide`, then `outcome_apply` (risk.services.evaluation)
writes the decision; neither derives any part of it on its own.

The rules:
- alerts: a wanted alert that is not open is raised, unless the same alert resolved
  itself less than `alert_cooldown_seconds` ago; an open alert of a kind this
  evaluation manages that is no longer wanted resolves;
- trips: a breaker hit whose (breaker, latch key) is not latched is latched and acted
  on, unless the cooldown, counted from the pair's last *live* action, has not passed
  (a dry-run trip is not an action: it never delays a live one); a latched pair whose
  condition was evaluated on fresh data and found clear, or whose position is gone, is
  released (the release records `condition_cleared_at`);
- drawdown peaks of limits: every rise is kept (the caller may throttle persisting a
  peak, never the value);
- ladder steps of limits (issue 15): a step whose level (`at_pct` % of the threshold)
  the metric reached (an undefined metric reaches every step) and that is not latched
  is latched and acted on, unless the desk's `alert_cooldown_seconds`, counted from
  the step's last *live* action, has not passed; a latched step whose metric is back
  under its level is released (`condition cleared`), and so is one whose limit, step
  or symbol no longer applies.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from risk.constants import ActionStatus

LIMIT_PREFIXES = ("limit:", "config:")
STALE_PREFIX = "stale:"
HUNDRED = Decimal(100)
STEP_CLEARED, STEP_GONE = "condition cleared", "step no longer applies"  # why a ladder step is released


@dataclass(slots=True, frozen=True)
class LatchState:
    """A latched trip, as far as the decision and the risk level need it."""

    trip_id: object
    breaker_id: int | None
    latch_key: str
    triggered_at: datetime
    dry_run: bool
    action_status: str

    @property
    def exposed(self) -> bool:
        """The position is still exposed: the action has not succeeded, or it ran under
        dry run (nothing was sent). Such a latch keeps its owner critical (SPEC §4)."""
        return self.dry_run or self.action_status != ActionStatus.SUCCEEDED


@dataclass(slots=True, frozen=True)
class StepLatch:
    """A latched ladder step (a `LadderTrip`)."""

    trip_id: object
    latch_key: str


@dataclass(slots=True)
class OpenState:
    """What is open and latched for one user now."""

    alert_keys: set = field(default_factory=set)  # dedup keys of the user's open alerts
    cooling: dict = field(default_factory=dict)  # {dedup key: resolved_at} within the alert cooldown
    latched: dict = field(default_factory=dict)  # {(breaker_id, latch_key): LatchState}
    last_action: dict = field(default_factory=dict)  # {(breaker_id, latch_key): when the last live action ran}
    steps: dict = field(default_factory=dict)  # {ladder latch key: StepLatch}
    step_last_action: dict = field(default_factory=dict)  # {ladder latch key: when its last live action ran}


@dataclass(slots=True, frozen=True)
class StepHit:
    """A ladder step whose level the limit's metric reached."""

    key: str
    status: object  # the assess_limits.LimitStatus of the limit (and symbol)
    at_pct: Decimal
    action: str

    @property
    def level(self) -> Decimal:
        return self.status.threshold * self.at_pct / HUNDRED


def ladder_key(status, at_pct: Decimal) -> str:
    """The latch key of one step of a limit's ladder, for one symbol (position_size)
    or the whole book (`*`)."""
    return f"ladder:{status.limit_id}:{status.symbol or '*'}:{at_pct:f}"


@dataclass(slots=True)
class HeldHit:
    """A hit that is not acted on yet: its cooldown runs until `until`."""

    hit: object
    until: datetime


@dataclass(slots=True)
class Decision:
    raise_alerts: dict = field(default_factory=dict)  # {key: AlertSpec}
    resolve_keys: list = field(default_factory=list)
    latch: list = field(default_factory=list)  # [BreakerHit] to latch and act on
    held: list = field(default_factory=list)  # [HeldHit] waiting for their cooldown
    release: list = field(default_factory=list)  # [(LatchState, reason)]
    peaks: dict = field(default_factory=dict)  # {limit_id: {account_id: peak}}
    step_latch: list = field(default_factory=list)  # [StepHit] to latch and act on
    step_held: list = field(default_factory=list)  # [HeldHit] of StepHits waiting for their cooldown
    step_release: list = field(default_factory=list)  # [(StepLatch, reason)]

    @property
    def writes_state(self) -> bool:
        """Something beyond drawdown peaks must be written."""
        return bool(
            self.raise_alerts or self.resolve_keys or self.latch or self.release or self.step_latch or self.step_release
        )


def managed_prefixes(*, breakers_evaluated: bool) -> tuple[str, ...]:
    """The kinds of open alerts an evaluation resolves when it no longer wants them
    (stale-data alerts only when breakers were evaluated)."""
    return LIMIT_PREFIXES + ((STALE_PREFIX,) if breakers_evaluated else ())


def outcome_decide(*, computed, state: OpenState, config, now: datetime) -> Decision:
    """What must be written for `computed` (an `evaluation.Computed`) given `state`."""
    decision = Decision(peaks=computed.limits.peak_updates)
    wanted = computed.wanted
    managed = managed_prefixes(breakers_evaluated=computed.breakers is not None)
    decision.resolve_keys = sorted(key for key in state.alert_keys if key.startswith(managed) and key not in wanted)
    cooldown = timedelta(seconds=config.alert_cooldown_seconds)
    for key, spec in wanted.items():
        if key in state.alert_keys:
            continue
        resolved_at = state.cooling.get(key)
        if resolved_at is not None and now - resolved_at < cooldown:
            continue
        decision.raise_alerts[key] = spec
    if computed.breakers is not None:
        _trips_decide(decision, computed=computed, state=state, config=config, now=now)
    _steps_decide(decision, statuses=computed.limits.statuses, state=state, cooldown=cooldown, now=now)
    return decision


def _steps_decide(decision: Decision, *, statuses: list, state: OpenState, cooldown: timedelta, now: datetime) -> None:
    """Which ladder steps to latch (or hold for their cooldown) and release."""
    reached, applies = set(), set()
    for status in statuses:
        for at_pct, action in status.ladder:
            step = StepHit(key=ladder_key(status, at_pct), status=status, at_pct=at_pct, action=action)
            applies.add(step.key)
            if status.value is not None and status.value < step.level:
                continue
            reached.add(step.key)
            if step.key in state.steps:
                continue
            last = state.step_last_action.get(step.key)
            if last is not None and now < last + cooldown:
                decision.step_held.append(HeldHit(hit=step, until=last + cooldown))
            else:
                decision.step_latch.append(step)
    for key, latch in state.steps.items():
        if key not in reached:
            decision.step_release.append((latch, STEP_CLEARED if key in applies else STEP_GONE))


def _trips_decide(decision: Decision, *, computed, state: OpenState, config, now: datetime) -> None:
    assessment = computed.breakers
    breakers = {breaker.id: breaker for breaker in config.breakers}
    hit_pairs = set()
    for hit in assessment.hits:
        pair = (hit.breaker.id, hit.latch_key)
        if pair in hit_pairs:
            continue  # both legs of a hedged symbol hit the same streak: one trip acts on both
        hit_pairs.add(pair)
        if pair in state.latched:
            continue
        last = state.last_action.get(pair)
        until = last + timedelta(seconds=hit.breaker.cooldown_seconds) if last is not None else None
        if until is not None and now < until:
            decision.held.append(HeldHit(hit=hit, until=until))
        else:
            decision.latch.append(hit)
    open_positions = None  # the latch keys of the open positions, when a latch needs them
    for pair, latch in state.latched.items():
        if pair in hit_pairs or pair[0] not in breakers:
            continue  # still holds, or its breaker is disabled (re-enabling decides, SPEC §5)
        if latch.latch_key.startswith("position:"):
            if open_positions is None:
                open_positions = {f"position:{position.id}" for position in computed.book.positions}
            if latch.latch_key not in open_positions:
                decision.release.append((latch, "position closed"))
                continue
        if assessment.cleared(pair):
            decision.release.append((latch, "condition cleared"))


def exposed_after(state: OpenState, decision: Decision, latched_now: list) -> bool:
    """Is any of the user's positions exposed by a latched trip once `decision` is
    written? `latched_now` are the LatchStates of the trips this decision latched (with
    their action's outcome)."""
    released = {latch.trip_id for latch, _ in decision.release}
    return any(latch.exposed for latch in state.latched.values() if latch.trip_id not in released) or any(
        latch.exposed for latch in latched_now
    )
