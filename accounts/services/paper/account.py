"""A paper account as a venue reports it (resting orders matched first, on the current
marks) and its transfers. Conventions in `accounts.services.paper`."""

import time
from decimal import Decimal

from django.db import transaction

from accounts.exchanges.base import BalanceInfo, PositionInfo
from accounts.exchanges.errors import OrderRejected
from accounts.models import ExchangeAccount, PaperOrder, PaperPosition, PaperWallet
from accounts.services.paper.books import paper_state_compute, paper_wallet_ensure, paper_wallet_locked
from accounts.services.paper.markets import paper_markets
from accounts.services.paper.orders import paper_orders_match


def paper_account_state(*, account_id: int) -> tuple[BalanceInfo, list[PositionInfo]]:
    """The paper account as a venue reports it, on the current marks. Resting limit
    orders the price has crossed are filled first."""
    paper_orders_match(account_id=account_id)
    wallet = PaperWallet.objects.filter(account_id=account_id).first()
    if wallet is None:
        wallet = paper_wallet_ensure(account=ExchangeAccount.objects.get(pk=account_id))
    positions = list(PaperPosition.objects.filter(account_id=account_id))
    open_orders = list(PaperOrder.objects.filter(account_id=account_id, status=PaperOrder.Status.OPEN))
    return paper_state_compute(wallet, positions, open_orders, paper_markets(), time.time())


@transaction.atomic
def paper_transfer(*, account: ExchangeAccount, amount: Decimal) -> PaperWallet:
    """A deposit (amount > 0) into or a withdrawal (amount < 0) from the account's paper
    wallet, as a venue's transfer: the wallet moves, no fill is recorded. A withdrawal
    larger than the free margin is refused."""
    amount = Decimal(amount)
    if not amount:
        raise OrderRejected("A transfer needs a non-zero amount.", exchange="paper")
    wallet = paper_wallet_locked(account.pk)
    if amount < 0:
        balance, _ = paper_account_state(account_id=account.pk)
        if -amount > balance.available:
            raise OrderRejected(
                f"Withdrawal of {-amount:.2f} exceeds the {balance.available:.2f} available.", exchange="paper"
            )
    wallet.balance += amount
    wallet.save(update_fields=["balance", "updated_at"])
    return wallet
