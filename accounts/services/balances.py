"""Writes on balance snapshots beyond sync: the officer's reset of the equity peak."""

import logging

from django.db import transaction
from django.utils import timezone

from accounts.events import positions_changed_on_commit
from accounts.models import Balance, ExchangeAccount
from etrms.errors import NotFound, PermissionDenied
from etrms.roles import is_risk_officer

logger = logging.getLogger("accounts.audit")


@transaction.atomic
def balance_peak_reset(*, actor, account: ExchangeAccount) -> Balance:
    """Restart the account's equity peak (the `max_drawdown_pct` desk cap's reference)
    from its equity now. Risk officers only (PermissionDenied otherwise); NotFound
    before the account's first sync. Audited: who and when on the row
    (`peak_reset_by`, `peak_reset_at`) and the old and new peak in the `accounts.audit`
    log. Tells the risk engine (positions_changed), which re-evaluates the owner."""
    if not is_risk_officer(actor):
        raise PermissionDenied("Only a risk officer may reset a drawdown peak.")
    balance = Balance.objects.select_for_update().filter(account=account).first()
    if balance is None:
        raise NotFound(f"{account} has no balance yet (never synced).")
    now = timezone.now()
    old = balance.peak_equity
    balance.peak_equity, balance.peak_equity_at = balance.equity, now
    balance.peak_reset_at, balance.peak_reset_by_id = now, actor.pk
    balance.save(update_fields=["peak_equity", "peak_equity_at", "peak_reset_at", "peak_reset_by"])
    logger.info(
        "drawdown peak of %s (account %s) reset by %s: %s -> %s",
        account,
        account.pk,
        getattr(actor, "username", actor.pk),
        old,
        balance.peak_equity,
    )
    positions_changed_on_commit(user_ids={account.user_id}, exchange=account.exchange, symbols=set())
    return balance
