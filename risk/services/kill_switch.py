"""The kill switch (SPEC §12, issue 15 item 3): one officer's call that halts a scope
(a user, an exchange, the desk), cancels every open order and closes every position in
it through the exchange interface, and answers per order and per position what
happened.

In order: the scope's trading state goes to `halted` (only stricter, source
`kill_switch`), a critical `kill_switch` alert is raised for each user in scope, open
orders are cancelled (so nothing new fills), live accounts are re-synced (a position
opened since the last sync is found), then each open position is closed with a
reduce-only market order. Dry run (global config) sends nothing and says what would
have been done; the halt applies all the same, since it sends no order.

Idempotent: a live close is one row per position (`KillAction`, a partial unique
index), so a second kill switch while the first runs, or after it, answers with the
first one's row and re-runs it only if it failed and nobody holds its lease; it never
sends a second close under a new id.
"""

import logging

from django.db import IntegrityError, transaction

from etrms.errors import InvalidInput, PermissionDenied
from etrms.roles import is_risk_officer
from risk.constants import AlertSeverity, AlertType
from risk.models import (
    KillAction,
    KillActionKind,
    KillScope,
    KillSwitch,
    TradingStateValue,
)
from risk.services.alerts import AlertSpec, alert_raise
from risk.services.common import actor_id
from risk.services.config import global_config_get
from risk.services.kill_actions import (
    RUNNABLE,
    kill_action_run,
    kill_alert_key,
    kill_alerts_follow,
    kill_client_order_id,
    kill_status_refresh,
)
from risk.services.trading_state import trading_state_tighten
from risk.validators import exchange_normalize

logger = logging.getLogger(__name__)


def _accounts_in_scope(kill: KillSwitch) -> list:
    from accounts.selectors import account_list

    user_id = kill.user_id if kill.scope == KillScope.USER else None
    exchange = kill.exchange if kill.scope == KillScope.EXCHANGE else None
    return list(account_list(user_id=user_id, exchange=exchange, enabled=True).select_related("user"))


def _order_symbols(account) -> list[str]:
    """The symbols whose open orders are cancelled on `account`: those it holds a
    position in, those monitoring streams on its exchange and, on paper, every symbol
    with an order resting in its book (the interface cancels per symbol)."""
    from accounts.selectors import account_open_symbols, monitored_markets

    symbols = account_open_symbols(account=account) | set(monitored_markets().get(account.exchange, []))
    return sorted(symbols)


def _describe(kill: KillSwitch) -> str:
    if kill.scope == KillScope.DESK:
        return "the desk"
    if kill.scope == KillScope.EXCHANGE:
        return f"exchange {kill.exchange}"
    return "your account"


def _validate(*, actor, scope: str, reason, confirm, user_id, exchange) -> tuple[str, object, str]:
    if not is_risk_officer(actor):
        raise PermissionDenied("Only a risk officer may use the kill switch.")
    if confirm is not True:
        raise InvalidInput({"confirm": ["The kill switch needs confirm: true."]})
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput({"reason": ["A reason is required."]})
    if scope not in KillScope.values:
        raise InvalidInput({"scope": [f"Must be one of {', '.join(KillScope.values)}."]})
    exchange = exchange_normalize(exchange) if scope == KillScope.EXCHANGE and exchange else (exchange or "")
    return scope, user_id, exchange


@transaction.atomic
def _start(*, actor, scope: str, reason: str, user_id, exchange: str) -> tuple[KillSwitch, list]:
    """Halt the scope, record the kill switch and its cancels, raise the alerts."""
    # trading_state_tighten validates the scope (level, exchange, user) and 404s an unknown user.
    trading_state_tighten(
        level=scope,
        state=TradingStateValue.HALTED,
        reason=f"Kill switch: {reason}",
        source="kill_switch",
        exchange=exchange or None,
        user_id=user_id,
        actor=actor,
    )
    kill = KillSwitch.objects.create(
        scope=scope,
        exchange=exchange,
        user_id=user_id if scope == KillScope.USER else None,
        reason=reason,
        requested_by_id=actor_id(actor),
        dry_run=global_config_get().dry_run,
    )
    accounts = _accounts_in_scope(kill)
    cancels = [
        KillAction(
            kill=kill,
            kind=KillActionKind.CANCEL_ORDERS,
            user_id=account.user_id,
            account=account,
            exchange=account.exchange,
            symbol=symbol,
            dry_run=kill.dry_run,
        )
        for account in accounts
        for symbol in _order_symbols(account)
    ]
    KillAction.objects.bulk_create(cancels)
    kill.covered.add(*cancels)
    who = getattr(actor, "username", "") or "a risk officer"
    for user_id in sorted({account.user_id for account in accounts}, key=str):
        alert_raise(
            user_id=user_id,
            spec=AlertSpec(
                key=kill_alert_key(kill.id),
                alert_type=AlertType.KILL_SWITCH,
                severity=AlertSeverity.CRITICAL,
                message=(
                    f"Kill switch engaged on {_describe(kill)} by {who}: {reason}. Trading halted; open orders "
                    f"cancelled and positions closed{' (dry run: nothing sent)' if kill.dry_run else ''}."
                ),
                metadata={
                    "kill_switch_id": str(kill.id),
                    "scope": scope,
                    "exchange": exchange or None,
                    "symbol": None,
                    "dry_run": kill.dry_run,
                    "context": {"scope": scope, "reason": reason, "set_by": who, "dry_run": kill.dry_run},
                },
            ),
        )
    return kill, accounts


def _resync(accounts) -> None:
    from accounts.exchanges import ExchangeError
    from accounts.services.sync import account_sync

    for account in accounts:
        try:
            account_sync(account=account)
        except ExchangeError as error:  # recorded on the account; its last synced positions are closed
            logger.warning("Kill switch: re-sync of %s failed: %s", account, error.detail)


def _close_claim(kill: KillSwitch, position) -> KillAction:
    """This kill switch's close of `position`, or the live one an earlier kill switch
    already holds (the partial unique index decides a race)."""
    action = KillAction(
        kill=kill,
        kind=KillActionKind.CLOSE_POSITION,
        user_id=position.account.user_id,
        account=position.account,
        exchange=position.account.exchange,
        symbol=position.symbol,
        position_ref=str(position.pk),
        side=position.side,
        size=position.size,
        dry_run=kill.dry_run,
    )
    action.client_order_id = kill_client_order_id(action.id)
    if kill.dry_run:
        action.save(force_insert=True)
        return action
    try:
        with transaction.atomic():
            action.save(force_insert=True)
    except IntegrityError:
        return KillAction.objects.select_related("account").get(
            kind=KillActionKind.CLOSE_POSITION, dry_run=False, position_ref=str(position.pk)
        )
    return action


def kill_switch_engage(*, actor, scope: str, reason, confirm, user_id=None, exchange: str | None = None) -> KillSwitch:
    """Engage the kill switch on `scope` (risk officers; `confirm` must be True).
    Runs outside any transaction: each order and close is committed as it happens, so a
    crash midway leaves rows that a retry or a second call picks up."""
    scope, user_id, exchange = _validate(
        actor=actor, scope=scope, reason=reason, confirm=confirm, user_id=user_id, exchange=exchange
    )
    kill, accounts = _start(actor=actor, scope=scope, reason=reason.strip(), user_id=user_id, exchange=exchange)
    for action in kill.covered.select_related("account").order_by("exchange", "symbol"):
        kill_action_run(action=action)
    if not kill.dry_run:
        _resync(accounts)
    from accounts.selectors import position_list

    for position in position_list(accounts=accounts):
        action = _close_claim(kill, position)
        kill.covered.add(action)
        if action.status in RUNNABLE:
            kill_action_run(action=action)
    kill_alerts_follow(kill=kill, user_ids={account.user_id for account in accounts})
    return kill_status_refresh(kill=kill)


def kill_switch_actions(kill: KillSwitch) -> list[KillAction]:
    """The actions `kill` answered for, cancels first, in a stable order."""
    actions = kill.covered.all()
    return sorted(actions, key=lambda a: (a.kind != KillActionKind.CANCEL_ORDERS, a.exchange, a.symbol, a.side))
