"""What a circuit breaker trip does (SPEC §5): its action through the exchange layer,
or on a dry run the words of what it would have done; the outcome recorded on the trip
and in its critical alert. A ladder step's trip (`LadderTrip`, issue 15) runs through
the same machinery; what it acts on is risk.services.ladder_actions'.

Success means filled, as the venue reports it: an order acknowledged but not (fully)
filled is recorded as partial or failed, escalated in the alert and retried on the
critical queue (`breaker_action_retry`). A retry of an action whose order may or may not
have reached the venue (a timeout, a dead process) sends the same client order id, so
it can never send a second order; a retry after a partial or unfilled order, which the
venue has finished with, sends the remainder under the next id of the same trip.

One process at a time runs a trip's action: it takes a lease on the row first
(`action_lease_until`). A process that dies mid-action leaves the lease to lapse, and
the periodic sweep (`trips_recover`) runs the action again.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from etrms.formatting import decimal_plain
from etrms.metrics import BREAKER_ACTIONS
from risk.constants import DEFAULT_REDUCE_PCT, ActionStatus, BreakerAction, ConditionType
from risk.models import BreakerTrip, LadderTrip
from risk.services.alerts import alert_escalate
from risk.services.order_outcome import order_outcome_record

logger = logging.getLogger(__name__)

RETRY_JOB = "breaker_action_retry"
LADDER_RETRY_JOB = "ladder_action_retry"
ACTION_LEASE_SECONDS = 120  # longer than any exchange call with its retries
HUNDRED = Decimal(100)
RUNNABLE = (ActionStatus.PENDING, ActionStatus.FAILED, ActionStatus.PARTIAL)
# Issue 15: actions on the position owner's user-level trading state, and the state each sets.
STATE_ACTIONS = {BreakerAction.SET_REDUCING: "reducing", BreakerAction.HALT_TRADING: "halted"}


def client_order_id_for(trip_id, seq: int = 0) -> str:
    """The idempotency key of the trip's `seq`-th order: the same for every retry of
    that order (at most 36 characters, Binance's limit)."""
    base = f"etrms-cb-{trip_id.hex[:24]}"
    return base if seq == 0 else f"{base}-{seq}"


def trip_params(trip) -> dict:
    """The additional_params of a breaker trip's breaker ({} for a ladder step, or a
    breaker deleted since)."""
    breaker = getattr(trip, "breaker", None)
    return breaker.additional_params if breaker is not None else {}


def _reduce_pct(additional_params: dict) -> Decimal:
    return Decimal(str(additional_params.get("reduce_pct", DEFAULT_REDUCE_PCT)))


def _targets(trip: BreakerTrip) -> list:
    """The open positions the action acts on: the trip's position, or for a streak
    every leg the account holds in that symbol (both sides in hedge mode)."""
    from accounts.selectors import position_get, position_list

    if trip.condition_type == ConditionType.CONSECUTIVE_LOSSES and trip.latch_key.startswith("streak:"):
        _, account_id, symbol = trip.latch_key.split(":", 2)
        return list(position_list(account_id=int(account_id), symbol=symbol))
    position = position_get(position_id=trip.position_ref)
    if position is None:
        raise LookupError(f"position {trip.position_ref} no longer exists")
    return [position] if position.closed_at is None else []


def _describe(trip: BreakerTrip, position, params: dict) -> tuple[str, str, Decimal | None]:
    """(what the action does in words, order side, amount) for `position`."""
    side = position.side if position is not None else trip.context.get("side", "long")
    size = position.size if position is not None else Decimal(str(trip.context.get("size", 0)))
    order_side = "sell" if side == "long" else "buy"
    if trip.action == BreakerAction.CANCEL_ALL_ORDERS:
        return f"cancel all open {trip.symbol} orders on {trip.exchange}", "", None
    if trip.action in STATE_ACTIONS:
        return f"set the position owner's trading state to {STATE_ACTIONS[trip.action]}", "", None
    held = f"the {side} {decimal_plain(size)} {trip.symbol} position on {trip.exchange}"
    if trip.action == BreakerAction.CLOSE_POSITION:
        return f"close {held} with a reduce-only market {order_side} of {decimal_plain(size)}", order_side, size
    pct = _reduce_pct(params)
    amount = size * pct / HUNDRED
    return (
        f"reduce {held} by {decimal_plain(pct)}% with a reduce-only market {order_side} of {decimal_plain(amount)}",
        order_side,
        amount,
    )


def order_send(position, *, close: bool, params: dict, client_order_id: str, leg: dict) -> dict:
    """Send the reduce-only order for one position (`close`: all of it, else by
    `reduce_pct`); `leg` holds what earlier attempts filled of it."""
    from accounts.services.trading import position_close, position_reduce

    if close:
        order = position_close(position=position, client_order_id=client_order_id)
        wanted = order.amount
    else:
        # The first attempt reduces by reduce_pct of the size then; a retry sends what is
        # still missing of that amount, as a share of the size now.
        target = Decimal(leg.get("target") or position.size * _reduce_pct(params) / HUNDRED)
        missing = target - Decimal(leg.get("filled") or 0)
        pct = min(HUNDRED, missing / position.size * HUNDRED)
        order = position_reduce(position=position, reduce_pct=pct, client_order_id=client_order_id)
        leg["target"] = decimal_plain(target)
        wanted = missing
    return {
        "exchange": position.account.exchange,
        "symbol": position.symbol,
        **order_outcome_record(progress=leg, order=order),
        "complete": order.fully_filled and order.filled >= wanted,
    }


def _execute(trip: BreakerTrip, params: dict, seq: int) -> tuple[str, str, dict]:
    """Send the trip's action. Returns (status, result words, details); raises the
    exchange layer's errors."""
    from accounts.services.trading import orders_cancel_all

    if trip.action in STATE_ACTIONS:
        return _state_execute(trip)
    positions = _targets(trip)
    if trip.action == BreakerAction.CANCEL_ALL_ORDERS:
        account = positions[0].account if positions else None
        if account is None:
            return ActionStatus.SUCCEEDED, f"No order to cancel: no open {trip.symbol} position on {trip.exchange}", {}
        cancelled = orders_cancel_all(account=account, symbol=trip.symbol)
        count = "all" if cancelled.cancelled is None else str(cancelled.cancelled)
        words = f"Cancelled {count} open {trip.symbol} order(s) on {trip.exchange}"
        return ActionStatus.SUCCEEDED, words, {"cancelled": cancelled.cancelled}
    if not positions:
        return ActionStatus.SUCCEEDED, f"No order needed: the {trip.symbol} position on {trip.exchange} is closed", {}
    legs = dict(trip.action_details.get("legs") or {})
    if any(leg.get("working") for leg in legs.values()):
        orders_cancel_all(account=positions[0].account, symbol=trip.symbol)
    orders = []
    for position in positions:
        suffix = f"-{position.side[0]}" if len(positions) > 1 else ""
        leg = dict(legs.get(position.side) or {})
        close = trip.action == BreakerAction.CLOSE_POSITION
        client_order_id = client_order_id_for(trip.id, seq) + suffix
        orders.append(order_send(position, close=close, params=params, client_order_id=client_order_id, leg=leg))
        legs[position.side] = leg
    verb = (
        "Position closed"
        if trip.action == BreakerAction.CLOSE_POSITION
        else f"Position reduced by {decimal_plain(_reduce_pct(params))}%"
    )
    status, words = orders_outcome(orders, verb=verb)
    return status, words, {"orders": orders, "legs": legs}


def orders_outcome(orders: list, *, verb: str) -> tuple[str, str]:
    """(status, words) of the orders an action sent: succeeded when every one filled
    completely, partial when something filled, else failed."""
    complete = all(order["complete"] for order in orders)
    filled_any = any(Decimal(order["filled"]) > 0 for order in orders)
    if not complete:
        verb = "PARTIAL: not fully filled" if filled_any else "FAILED: not filled"
    words = "; ".join(
        f"reduce-only market {o['side']} of {o['amount']} {o['symbol']} on {o['exchange']}, filled {o['filled']}"
        + (f" at {o['average_price']}" if o["average_price"] else "")
        + f" (order {o['order_id']}, status {o['status']})"
        for o in orders
    )
    status = ActionStatus.SUCCEEDED if complete else (ActionStatus.PARTIAL if filled_any else ActionStatus.FAILED)
    return status, f"{verb}: {words}"


def state_action_run(*, user_id, state: str, reason: str, source: str) -> tuple[str, str, dict]:
    """`set_reducing` / `halt_trading` (issue 15): the owner's user level, only stricter."""
    from risk.services.trading_state import trading_state_tighten

    changed = trading_state_tighten(level="user", user_id=user_id, state=state, reason=reason, source=source)
    words = f"Trading state of the position's owner set to {state}"
    if changed is None:
        words = f"The position owner's trading state was already {state} or stricter"
    return ActionStatus.SUCCEEDED, words, {"trading_state": state}


def _state_execute(trip: BreakerTrip) -> tuple[str, str, dict]:
    return state_action_run(
        user_id=trip.user_id,
        state=STATE_ACTIONS[trip.action],
        reason=f"Circuit breaker {trip.breaker_name} tripped on {trip.exchange} {trip.symbol}",
        source=f"circuit_breaker:{trip.breaker_name}",
    )


def _lease(trip: BreakerTrip | LadderTrip, now) -> bool:
    """Take the trip's action lease: False when another process holds it or the action
    is done."""
    return bool(
        type(trip)
        .objects.filter(pk=trip.pk, action_status__in=RUNNABLE)
        .filter(Q(action_lease_until__isnull=True) | Q(action_lease_until__lt=now))
        .update(action_lease_until=now + timedelta(seconds=ACTION_LEASE_SECONDS))
    )


def _dry_run_describe(trip: BreakerTrip, params: dict) -> tuple[str, dict]:
    """(what the breaker's action would do, details) without sending anything."""
    from accounts.selectors import position_get

    position = position_get(position_id=trip.position_ref)
    words, order_side, amount = _describe(trip, position, params)
    return words, {"would": trip.action, "side": order_side, "amount": decimal_plain(amount) if amount else None}


def trip_action_run(*, trip: BreakerTrip | LadderTrip, additional_params: dict) -> BreakerTrip | LadderTrip:
    """Run the trip's action (or describe it on a dry run) and record the outcome. A
    failed, partial or unfilled action is escalated in the alert and queued for retry
    on the critical queue. Does nothing while another process runs it."""
    from risk.services import ladder_actions

    if not _lease(trip, timezone.now()):
        trip.refresh_from_db()
        return trip
    ladder = isinstance(trip, LadderTrip)
    trip.action_attempts += 1
    seq = int(trip.action_details.get("order_seq", 0)) if trip.action_details else 0
    if trip.dry_run:
        words, trip.action_details = (ladder_actions.describe if ladder else _dry_run_describe)(trip, additional_params)
        trip.action_status = ActionStatus.DRY_RUN
        trip.action_result = f"Dry run: would {words}; nothing was sent"
    else:
        try:
            execute = ladder_actions.execute if ladder else _execute
            trip.action_status, trip.action_result, details = execute(trip, additional_params, seq)
            # The venue is done with an order that did not fill: the next attempt is a new order.
            next_seq = seq + 1 if trip.action_status != ActionStatus.SUCCEEDED else seq
            trip.action_details = {**details, "order_seq": next_seq}
            trip.action_error = "" if trip.action_status == ActionStatus.SUCCEEDED else trip.action_result
        except Exception as exc:  # an action that fails must be loud, whatever failed
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            logger.warning("Trip %s (%s): action %s failed: %s", trip.id, trip, trip.action, detail)
            trip.action_status = ActionStatus.FAILED
            trip.action_error = str(detail)
            where = (trip.symbol or "every symbol") if ladder else f"{trip.symbol} ({trip.exchange})"
            trip.action_result = f"FAILED: {trip.action} on {where}: {detail}"
            trip.action_details = {**(trip.action_details or {}), "order_seq": seq}
    trip.action_lease_until = None
    BREAKER_ACTIONS.labels(trip.action, trip.action_status).inc()
    failed = trip.action_status in (ActionStatus.FAILED, ActionStatus.PARTIAL)
    with transaction.atomic():
        trip.save(
            update_fields=[
                "action_attempts",
                "action_status",
                "action_result",
                "action_error",
                "action_details",
                "action_lease_until",
            ]
        )
        _alert_follow(trip, failed=failed)
        if failed and trip.action_attempts == 1:
            _retry_enqueue(trip)
    return trip


def _alert_follow(trip: BreakerTrip, *, failed: bool) -> None:
    if trip.alert_id is None:
        return
    alert = trip.alert
    metadata = {
        **alert.metadata,
        "action_status": trip.action_status,
        "action_result": trip.action_result,
        "action_attempts": trip.action_attempts,
    }
    message = alert.message.split(" Action ")[0]
    if failed:
        metadata["escalated"] = True
        outcome = f"Action {trip.action_status.upper()} (attempt {trip.action_attempts})"
        message = f"{message} {outcome}: {trip.action_error}. Retrying."
    elif trip.action_attempts > 1:
        message = f"{message} Action succeeded on attempt {trip.action_attempts}."
    alert_escalate(alert=alert, message=message, metadata=metadata)


def _retry_enqueue(trip: BreakerTrip | LadderTrip) -> None:
    from jobs.services.lifecycle import job_enqueue

    name = LADDER_RETRY_JOB if isinstance(trip, LadderTrip) else RETRY_JOB
    job_enqueue(user=None, name=name, args={"trip_id": str(trip.id)}, priority="critical")


def trip_action_retry(*, trip_id, model: type = BreakerTrip) -> dict:
    """`breaker_action_retry` / `ladder_action_retry` (`model` LadderTrip): run a failed
    or partial action again; raises if it does not succeed, so the job machinery
    retries it and finally dead-letters it (the trip stays failed, the alert escalated)."""
    trip = model.objects.select_related("alert").get(pk=trip_id)
    if trip.action_status in (ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN):
        return {"trip_id": str(trip.id), "status": trip.action_status, "result": trip.action_result}
    trip = trip_action_run(trip=trip, additional_params=trip_params(trip))
    if trip.action_status != ActionStatus.SUCCEEDED:
        raise RuntimeError(trip.action_result)
    return {"trip_id": str(trip.id), "status": trip.action_status, "result": trip.action_result}
