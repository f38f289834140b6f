"""Bootstrap step of the accounts app: the admin user, the risk officer group, and the
admin's paper account with a few open demo positions (all idempotent)."""

import os
from decimal import Decimal

from accounts.exchanges import BUY, SELL, ExchangeError
from accounts.models import ExchangeAccount
from accounts.services import admin_user_ensure, risk_officer_group_sync

# (symbol, side, amount): a long BTC, a short ETH and a long SOL, opened at the paper marks.
DEMO_POSITIONS = (("BTCUSDT", BUY, Decimal("0.5")), ("ETHUSDT", SELL, Decimal("8")), ("SOLUSDT", BUY, Decimal("150")))


def paper_demo_ensure(*, user) -> tuple[ExchangeAccount, bool]:
    """The user's paper account with the demo positions. Returns (account, created)."""
    from accounts.services.exchange_accounts import exchange_account_create
    from accounts.services.paper import paper_order_execute
    from accounts.services.sync import account_sync

    account = ExchangeAccount.objects.filter(user=user, exchange="paper").first()
    if account is not None:
        return account, False
    account = exchange_account_create(user_id=user.pk, exchange="paper", label="Paper trading (demo)")
    for symbol, side, amount in DEMO_POSITIONS:
        paper_order_execute(
            account_id=account.pk,
            symbol=symbol,
            side=side,
            amount=amount,
            client_order_id=f"bootstrap-{symbol.lower()}",
        )
    account_sync(account=account)
    return account, True


def bootstrap(*, stdout) -> None:
    risk_officer_group_sync()
    username = os.environ.get("ETRMS_ADMIN_USERNAME", "admin")
    user, password = admin_user_ensure(username=username)
    if password:
        stdout.write(f"Created admin user '{username}' with password: {password}  (shown once; keep it)")
    else:
        stdout.write(f"Admin user '{username}' exists (its password was printed when it was created).")
    try:
        _, created = paper_demo_ensure(user=user)
    except ExchangeError as error:
        stdout.write(f"Paper demo account not set up: {error.detail}")
        return
    if created:
        stdout.write(f"Created the paper account of '{username}' with {len(DEMO_POSITIONS)} demo positions.")
    else:
        stdout.write(f"Paper account of '{username}' exists.")
    _demo_monitoring_ensure(stdout)


def _demo_monitoring_ensure(stdout) -> None:
    """On a desk that never started monitoring, monitor paper: the feed streams the demo
    positions' markets, so marks move every second. An officer's later stop stays."""
    from accounts.models import MonitoringState
    from accounts.services.monitoring import monitoring_start

    if MonitoringState.objects.filter(pk=1, started_at__isnull=False).exists():
        stdout.write("Monitoring: left as the risk officers set it.")
        return
    monitoring_start(exchanges=["paper"])
    stdout.write("Monitoring started on paper (the feed streams the demo positions' markets).")
