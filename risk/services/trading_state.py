"""Trading states (SPEC §12, issue 15): the desk, an exchange and a user are each
`active`, `reducing` (only orders that shrink a position) or `halted` (nothing but
cancels). The strictest level that applies wins. No row means active.

A risk officer sets any level to any state with a reason; the system (a breaker's
`set_reducing` / `halt_trading`, a ladder step, the kill switch) only ever makes a level
stricter, so nothing but an officer moves a level back to `active`. Every change is
audited (django-simple-history), raises a `trading_state` alert (high) for each user
it applies to, published like every alert, and bumps the risk index version.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from etrms.errors import InvalidInput, NotFound, PermissionDenied
from etrms.roles import is_risk_officer
from risk.constants import AlertSeverity, AlertStatus, AlertType
from risk.history import history_actor_set
from risk.models import STRICTNESS, RiskAlert, TradingLevel, TradingState
from risk.models import TradingStateValue as S
from risk.services import hooks
from risk.services.alerts import AlertSpec, _resolve, alert_raise
from risk.services.common import actor_id
from risk.validators import exchange_normalize

LEVEL_ORDER = {TradingLevel.DESK: 0, TradingLevel.EXCHANGE: 1, TradingLevel.USER: 2}


@dataclass(frozen=True, slots=True)
class Effective:
    """The state that applies and the level that decided it (None: nothing set)."""

    state: str
    level: str | None
    reason: str


def trading_states_load(*, user_id, exchange: str | None = None, all_exchanges: bool = False) -> list[TradingState]:
    """The rows that apply to `user_id` (one query): the desk's, the user's, and the
    exchange's (`exchange`) or every exchange's (`all_exchanges`)."""
    from django.db.models import Q

    where = Q(level=TradingLevel.DESK) | Q(level=TradingLevel.USER, user_id=user_id)
    if all_exchanges:
        where |= Q(level=TradingLevel.EXCHANGE)
    elif exchange:
        where |= Q(level=TradingLevel.EXCHANGE, exchange=exchange)
    return list(TradingState.objects.filter(where))


def effective_of(rows: list[TradingState], *, exchange: str | None = None) -> Effective:
    """The strictest of the desk, the user and (with `exchange`) that exchange. Pure.
    On a tie the broadest level is named (the desk before an exchange before the user)."""
    best = Effective(S.ACTIVE, None, "")
    for row in sorted(rows, key=lambda r: LEVEL_ORDER[r.level]):
        if row.level == TradingLevel.EXCHANGE and row.exchange != exchange:
            continue
        if STRICTNESS[row.state] > STRICTNESS[best.state]:
            best = Effective(row.state, row.level, row.reason)
    return best


def trading_state_effective(*, user_id, exchange: str | None = None) -> Effective:
    return effective_of(trading_states_load(user_id=user_id, exchange=exchange), exchange=exchange)


def trading_states_effective(*, user_ids: list) -> tuple[Effective, dict]:
    """(the desk's state, {user_id: the user's effective state}) in one query: the
    strictest of the desk and the user's own level (no exchange named, as `GET
    /risk/trading-state` answers without `?exchange=`)."""
    rows = list(TradingState.objects.filter(level__in=(TradingLevel.DESK, TradingLevel.USER)))
    desk = [row for row in rows if row.level == TradingLevel.DESK]
    by_user = {
        user_id: effective_of(desk + [row for row in rows if str(row.user_id) == str(user_id)]) for user_id in user_ids
    }
    return effective_of(desk), by_user


def _scope(level: str, exchange: str | None, user_id) -> dict:
    if level == TradingLevel.DESK:
        if exchange or user_id:
            raise InvalidInput({"level": ["The desk level takes neither exchange nor user_id."]})
        return {"level": level, "exchange": "", "user_id": None}
    if level == TradingLevel.EXCHANGE:
        if not exchange:
            raise InvalidInput({"exchange": ["The exchange level needs an exchange."]})
        if user_id:
            raise InvalidInput({"user_id": ["The exchange level takes no user_id."]})
        return {"level": level, "exchange": exchange_normalize(exchange), "user_id": None}
    if level == TradingLevel.USER:
        if not user_id:
            raise InvalidInput({"user_id": ["The user level needs a user_id."]})
        if exchange:
            raise InvalidInput({"exchange": ["The user level takes no exchange."]})
        if not get_user_model().objects.filter(pk=user_id).exists():
            raise NotFound("User not found.")
        return {"level": level, "exchange": "", "user_id": user_id}
    raise InvalidInput({"level": [f"Must be one of {', '.join(TradingLevel.values)}."]})


def _describe_scope(row: TradingState) -> str:
    if row.level == TradingLevel.DESK:
        return "the desk"
    if row.level == TradingLevel.EXCHANGE:
        return f"exchange {row.exchange}"
    return "your account" if row.user_id else "a user"


def _affected_user_ids(row: TradingState) -> list:
    from accounts.selectors import account_user_ids

    if row.level == TradingLevel.USER:
        return [row.user_id]
    exchange = row.exchange if row.level == TradingLevel.EXCHANGE else None
    return sorted(account_user_ids(exchange=exchange), key=str)


def _alert_change(row: TradingState, previous: str, who: str) -> list[RiskAlert]:
    """One `trading_state` alert per user the level applies to; the previous change's
    alert of the same level resolves (one open alert per user and level)."""
    key = f"trading_state:{row.level}:{row.exchange or row.user_id or 'desk'}"
    user_ids = _affected_user_ids(row)
    now = timezone.now()
    stale = RiskAlert.objects.filter(user_id__in=user_ids, dedup_key=key).exclude(status=AlertStatus.RESOLVED)
    _resolve(list(stale), now=now, reason="trading state changed again")
    context = {
        "level": row.level,
        "state": row.state,
        "previous_state": previous,
        "reason": row.reason,
        "source": row.source,
        "set_by": who,
    }
    message = f"Trading state of {_describe_scope(row)} set to {row.state} (was {previous}) by {who}: {row.reason}"
    raised = []
    for user_id in user_ids:
        spec = AlertSpec(
            key=key,
            alert_type=AlertType.TRADING_STATE,
            severity=AlertSeverity.HIGH,
            message=message,
            metadata={"exchange": row.exchange or None, "symbol": None, "context": context, **context},
        )
        alert = alert_raise(user_id=user_id, spec=spec, now=now)
        if alert is not None:
            raised.append(alert)
    return raised


def _write(*, scope: dict, state: str, reason: str, actor, source: str, only_stricter: bool) -> TradingState | None:
    row = TradingState.objects.select_for_update().filter(**scope).first()
    previous = row.state if row is not None else S.ACTIVE
    if only_stricter and STRICTNESS[state] <= STRICTNESS[previous]:
        return None
    if row is None:
        row = TradingState(**scope)
    if row.pk is not None and previous == state and row.reason == reason:
        return row
    row.state, row.reason, row.source = state, reason, source
    row.set_by_id, row.set_at = actor_id(actor), timezone.now()
    history_actor_set(row, actor_id(actor))
    row.save()
    who = source if actor is None else (getattr(actor, "username", "") or f"user {actor.pk}")
    if previous != state:
        _alert_change(row, previous, who)
    hooks.config_changed()
    return row


@transaction.atomic
def trading_state_set(
    *, actor, level: str, state: str, reason: str, exchange: str | None = None, user_id=None
) -> TradingState:
    """A risk officer sets one level (SPEC §12). `reason` is required."""
    if not is_risk_officer(actor):
        raise PermissionDenied("Only a risk officer sets trading states.")
    if state not in S.values:
        raise InvalidInput({"state": [f"Must be one of {', '.join(S.values)}."]})
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput({"reason": ["A reason is required."]})
    scope = _scope(level, exchange, user_id)
    return _write(scope=scope, state=state, reason=reason.strip(), actor=actor, source="officer", only_stricter=False)


@transaction.atomic
def trading_state_tighten(
    *, level: str, state: str, reason: str, source: str, exchange: str | None = None, user_id=None, actor=None
) -> TradingState | None:
    """The system's move (a breaker, a ladder step, the kill switch): only ever
    stricter, never back to active. None when the level already was at least `state`."""
    if state == S.ACTIVE:
        raise ValueError("The system never moves a trading state back to active.")
    scope = _scope(level, exchange, user_id)
    return _write(scope=scope, state=state, reason=reason, actor=actor, source=source, only_stricter=True)
