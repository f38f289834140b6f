"""Entry points of sync: one account, a user's accounts (the `sync_portfolio` job), and
every enabled account (`sync_all_portfolios`, what monitoring runs)."""

import logging

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from accounts.events import positions_changed_on_commit
from accounts.exchanges import ExchangeError
from accounts.models import ExchangeAccount, MonitoringState, Position
from accounts.services.sync.reading import read_venue
from accounts.services.sync.reconcile import SyncResult, reconcile
from etrms.errors import Conflict, NotFound
from etrms.formatting import iso_utc

logger = logging.getLogger("accounts.sync")


@transaction.atomic
def _record_failure(account: ExchangeAccount, message: str) -> None:
    ExchangeAccount.objects.filter(pk=account.pk).update(
        last_sync_attempt_at=timezone.now(), last_sync_failed=True, last_sync_error=message[:1000]
    )
    symbols = set(Position.objects.filter(account=account, closed_at__isnull=True).values_list("symbol", flat=True))
    # Its positions are stale now: let the risk engine know (it raises `data_stale`).
    positions_changed_on_commit(user_ids={account.user_id}, exchange=account.exchange, symbols=symbols)


def account_sync(*, account: ExchangeAccount) -> SyncResult:
    """Sync one account. Best called outside a transaction (one open around it stays
    open for the whole venue read). Raises the exchange layer's errors after recording
    the failure on the account."""
    # The caller's instance may be older than the row (cursors, last sync): re-read it.
    account.refresh_from_db()
    fetched_at = timezone.now()
    open_symbols = set(
        Position.objects.filter(account=account, closed_at__isnull=True).values_list("symbol", flat=True)
    )
    try:
        snapshot = async_to_sync(read_venue)(account, open_symbols, fetched_at)
    except ExchangeError as error:
        _record_failure(account, str(error.detail))
        raise
    except Exception:
        _record_failure(account, "Internal error while reading the exchange.")
        raise
    result = reconcile(account.pk, snapshot)
    account.refresh_from_db()
    return result


def portfolio_sync(*, user_id, exchange: str | None = None) -> dict:
    """`sync_portfolio`: the user's account on `exchange` (404 without one, 409 when it
    is disabled), or with no `exchange` every enabled account of the user. The result
    has Phase 4's fields (`synced`, `positions_updated`, `balances_updated`,
    `synced_at`, `user_id`) plus each account's detail under `accounts`."""
    if exchange is not None:
        account = ExchangeAccount.objects.filter(user_id=user_id, exchange=exchange).first()
        if account is None:
            raise NotFound(f"No {exchange} account for this user.")
        if not account.enabled:
            raise Conflict(f"The {exchange} account is disabled.")
        return account_sync(account=account).as_dict()
    results = [
        account_sync(account=account)
        for account in ExchangeAccount.objects.filter(user_id=user_id, enabled=True).order_by("exchange", "id")
    ]
    stamps = [result.synced_at for result in results if result.synced_at]
    synced_at = max(stamps) if stamps else timezone.now()
    return {
        "synced": bool(results) and all(not result.skipped for result in results),
        "positions_updated": sum(result.positions_updated for result in results),
        "balances_updated": sum(0 if result.skipped else 1 for result in results),
        "synced_at": iso_utc(synced_at),
        "user_id": str(user_id),
        "accounts": [result.as_dict() for result in results],
    }


def portfolios_sync_all(*, exchanges: list[str] | None = None) -> dict:
    """`sync_all_portfolios`: every enabled account (of `exchanges`, if given). One
    account's failure does not stop the others; when every account failed the error
    is raised, so the job retries. Records the outcome on the monitoring state."""
    accounts = ExchangeAccount.objects.filter(enabled=True).order_by("id")
    if exchanges:
        accounts = accounts.filter(exchange__in=exchanges)
    synced, failed = [], []
    last_error: ExchangeError | None = None
    for account in accounts:
        try:
            synced.append(account_sync(account=account).as_dict())
        except ExchangeError as error:
            last_error = error
            failed.append(
                {
                    "account_id": account.pk,
                    "exchange": account.exchange,
                    "user_id": str(account.user_id),
                    "error": str(error.detail),
                }
            )
            logger.warning("sync of %s failed: %s", account, error.detail)
    now = timezone.now()
    error_text = "; ".join(f"{item['exchange']} account {item['account_id']}: {item['error']}" for item in failed)
    MonitoringState.objects.get_or_create(pk=1)
    update = {"last_sync_at": now, "last_error": error_text[:2000]}
    if failed:
        update["last_error_at"] = now
    MonitoringState.objects.filter(pk=1).update(**update)
    if failed and not synced:
        raise last_error
    return {"accounts": len(synced) + len(failed), "synced": synced, "failed": failed}
