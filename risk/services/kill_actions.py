"""What one kill-switch action does on the venue (issue 15 item 3): cancel an account's
open orders on a symbol, or close one position with reduce-only market orders, through
the exchange interface; on a dry run only the words of what it would do.

The breaker-trip pattern (risk.services.trip_actions): one process at a time runs an
action (a lease on its row); success means filled, as the venue reports it; an action
whose order may or may not have reached the venue (a timeout, a dead process) is
retried with the same client order id, so the venue can never fill it twice; an order
the venue finished without filling it all is followed by the remainder under the next
id (`-1`, `-2`, ...). A failed or partial action is retried on the critical queue
(`kill_switch_retry`) and escalated in the owner's critical `kill_switch` alert.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from etrms.formatting import decimal_plain
from risk.constants import ActionStatus, AlertStatus
from risk.models import KillAction, KillActionKind, KillSwitch, KillSwitchStatus, RiskAlert
from risk.services.alerts import alert_escalate
from risk.services.order_outcome import order_outcome_record

logger = logging.getLogger(__name__)

RETRY_JOB = "kill_switch_retry"
LEASE_SECONDS = 120  # longer than any exchange call with its retries
RUNNABLE = (ActionStatus.PENDING, ActionStatus.FAILED, ActionStatus.PARTIAL)
NOT_DONE = (ActionStatus.PENDING, ActionStatus.FAILED, ActionStatus.PARTIAL)


def kill_client_order_id(action_id, seq: int = 0) -> str:
    """The idempotency key of the action's `seq`-th order (at most 36 characters)."""
    base = f"etrms-ks-{action_id.hex[:24]}"
    return base if seq == 0 else f"{base}-{seq}"


def kill_alert_key(kill_id) -> str:
    return f"kill_switch:{kill_id}"


def _lease(action: KillAction, now) -> bool:
    """Take the action's lease: False when another process runs it or it is done."""
    return bool(
        KillAction.objects.filter(pk=action.pk, status__in=RUNNABLE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )


def _open_orders_and_cancel(account, symbol: str, *, cancel: bool) -> list:
    """The account's open orders on `symbol`, read before (and, with `cancel`, then
    cancelled) in one exchange session."""
    from accounts.services.exchange_accounts import account_exchange

    async def run() -> list:
        async with account_exchange(account) as exchange:
            orders = await exchange.fetch_open_orders(symbol)
            if cancel:
                await exchange.cancel_all_orders(symbol)
            return orders

    return async_to_sync(run)()


def _order_out(order, status: str) -> dict:
    return {
        "order_id": order.id,
        "client_order_id": order.client_order_id or None,
        "side": order.side,
        "amount": decimal_plain(order.amount),
        "filled": decimal_plain(order.filled),
        "price": decimal_plain(order.price) if order.price is not None else None,
        "reduce_only": order.reduce_only,
        "status": status,
    }


def _cancel(action: KillAction) -> tuple[str, str, dict]:
    if action.account is None:
        return ActionStatus.SUCCEEDED, "No order to cancel: the account is gone", {"orders": []}
    if action.dry_run:
        orders = _open_orders_and_cancel(action.account, action.symbol, cancel=False)
        words = f"Dry run: would cancel {len(orders)} open {action.symbol} order(s) on {action.exchange}"
        return ActionStatus.DRY_RUN, words, {"orders": [_order_out(o, "would_cancel") for o in orders]}
    orders = _open_orders_and_cancel(action.account, action.symbol, cancel=True)
    words = f"Cancelled {len(orders)} open {action.symbol} order(s) on {action.exchange}"
    return ActionStatus.SUCCEEDED, words, {"orders": [_order_out(o, "cancelled") for o in orders]}


def _close(action: KillAction) -> tuple[str, str, dict]:
    from accounts.selectors import position_get
    from accounts.services.trading import orders_cancel_all, position_close

    details = dict(action.details or {})
    position = position_get(position_id=action.position_ref)
    held = f"the {action.side} {decimal_plain(action.size)} {action.symbol} position on {action.exchange}"
    order_side = "sell" if action.side == "long" else "buy"
    if action.dry_run:
        words = f"Dry run: would close {held} with a reduce-only market {order_side} of {decimal_plain(action.size)}"
        return (
            ActionStatus.DRY_RUN,
            words,
            {"would": "close_position", "side": order_side, "amount": decimal_plain(action.size)},
        )
    if position is None or position.closed_at is not None:
        return ActionStatus.SUCCEEDED, f"Position closed: {held} is no longer open", details
    if details.get("working"):  # the venue left our last order working: never let two fill
        orders_cancel_all(account=position.account, symbol=position.symbol)
    order = position_close(position=position, client_order_id=kill_client_order_id(action.id, action.order_seq))
    record = order_outcome_record(progress=details, order=order)
    details.setdefault("orders", []).append(record)
    sent_amount, sent_filled = decimal_plain(order.amount), decimal_plain(order.filled)
    sent = f"reduce-only market {order.side} of {sent_amount}, filled {sent_filled} ({order.status})"
    if order.fully_filled:
        return ActionStatus.SUCCEEDED, f"Position closed: {sent}", details
    action.order_seq += 1  # the venue is done with (or was told to drop) that order: the rest goes under a new id
    some_filled = Decimal(details["filled"]) > 0  # over every attempt
    status = ActionStatus.PARTIAL if some_filled else ActionStatus.FAILED
    return status, f"{'PARTIAL: not fully filled' if some_filled else 'FAILED: not filled'}: {sent}", details


def kill_action_run(*, action: KillAction, enqueue_retry: bool = True) -> KillAction:
    """Run `action` (or describe it on a dry run) and record the outcome; a failed or
    partial action is escalated in its owner's alert and, with `enqueue_retry`, queued
    on the critical queue. Does nothing while another process runs it or once done."""
    if not _lease(action, timezone.now()):
        action.refresh_from_db()
        return action
    action.attempts += 1
    try:
        run = _cancel if action.kind == KillActionKind.CANCEL_ORDERS else _close
        action.status, action.result, action.details = run(action)
        action.error = "" if action.status in (ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN) else action.result
    except Exception as exc:  # an action that fails must be loud, whatever failed
        detail = str(getattr(exc, "detail", None) or exc or type(exc).__name__)
        logger.warning("Kill switch %s: %s on %s %s failed: %s", action.kill_id, action.kind, action.exchange,
                       action.symbol, detail)  # fmt: skip
        action.status, action.error = ActionStatus.FAILED, detail
        action.result = f"FAILED: {action.get_kind_display().lower()} {action.symbol} on {action.exchange}: {detail}"
    action.lease_until = None
    failed = action.status in (ActionStatus.FAILED, ActionStatus.PARTIAL)
    with transaction.atomic():
        action.save(
            update_fields=["attempts", "status", "result", "error", "details", "order_seq", "lease_until", "updated_at"]
        )
        if failed and enqueue_retry:
            _retry_enqueue(action)
    return action


def _retry_enqueue(action: KillAction) -> None:
    from jobs.services.lifecycle import job_enqueue

    job_enqueue(user=None, name=RETRY_JOB, args={"action_id": str(action.id)}, priority="critical")


def kill_alerts_follow(*, kill: KillSwitch, user_ids) -> None:
    """Bring each user's critical `kill_switch` alert of `kill` up to date with what its
    actions did: escalated while any failed or is partial, never reported as success."""
    for user_id in user_ids:
        alert = (
            RiskAlert.objects.filter(user_id=user_id, dedup_key=kill_alert_key(kill.id))
            .exclude(status=AlertStatus.RESOLVED)
            .first()
        )
        if alert is None:
            continue
        actions = list(KillAction.objects.filter(kill=kill, user_id=user_id))
        failing = [a for a in actions if a.status in (ActionStatus.FAILED, ActionStatus.PARTIAL)]
        head = alert.message.split(" Outcome: ")[0]
        metadata = {**alert.metadata, "actions": len(actions), "failed": len(failing)}
        if failing:
            metadata["escalated"] = True
            words = "; ".join(f"{a.result} (attempt {a.attempts})" for a in failing)
            message = f"{head} Outcome: {len(failing)} action(s) FAILED, retrying: {words}."
            metadata["action_result"] = message.split(" Outcome: ")[1]
        elif actions and all(a.status == ActionStatus.DRY_RUN for a in actions):
            message = f"{head} Outcome: dry run, nothing was sent."
            metadata["action_result"] = "dry run"
        elif any(a.status == ActionStatus.PENDING for a in actions):
            continue
        else:
            retried = max((a.attempts for a in actions), default=1)
            message = f"{head} Outcome: every order cancelled and position closed"
            message += f" (after {retried} attempts)." if retried > 1 else "."
            metadata["action_result"] = "succeeded"
        alert_escalate(alert=alert, message=message, metadata=metadata)


def kill_status_refresh(*, kill: KillSwitch) -> KillSwitch:
    """The kill switch's status from the actions it answered for."""
    statuses = set(kill.covered.values_list("status", flat=True))
    if kill.dry_run:
        status = KillSwitchStatus.DRY_RUN
    elif statuses & set(NOT_DONE):
        status = KillSwitchStatus.PARTIAL
    else:
        status = KillSwitchStatus.SUCCEEDED
    kill.status = status
    kill.finished_at = kill.finished_at or timezone.now()
    KillSwitch.objects.filter(pk=kill.pk).update(status=status, finished_at=kill.finished_at)
    return kill


def kill_action_retry(*, action_id) -> dict:
    """`kill_switch_retry`: run a failed or partial action again with its client order
    id; raises while it has not succeeded, so the job machinery retries it and finally
    dead-letters it (the action stays failed, the alert escalated)."""
    action = KillAction.objects.select_related("kill", "account").get(pk=action_id)
    if action.status in RUNNABLE:
        action = kill_action_run(action=action, enqueue_retry=False)
        kill_alerts_follow(kill=action.kill, user_ids=[action.user_id])
        for kill in action.covered_by.all():
            kill_status_refresh(kill=kill)
    if action.status not in (ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN):
        raise RuntimeError(action.result)
    return {"action_id": str(action.id), "status": action.status, "result": action.result}
