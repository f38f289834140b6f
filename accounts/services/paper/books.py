"""Paper books: wallets and the account state computed from them on given marks (orders
and fills: `accounts.services.paper.orders`; the account as a venue reports it and its
transfers: `accounts.services.paper.account`). Conventions in `accounts.services.paper`."""

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from accounts.exchanges.base import LONG, BalanceInfo, PositionInfo
from accounts.exchanges.errors import OrderRejected
from accounts.models import ExchangeAccount, PaperOrder, PaperPosition, PaperWallet

ZERO = Decimal(0)
DEFAULT_PAPER_BALANCE = Decimal(100000)


def taker_fee_rate() -> Decimal:
    return Decimal(str(settings.PAPER_TAKER_FEE))


# --- wallets --------------------------------------------------------------------------
@transaction.atomic
def paper_wallet_ensure(
    *,
    account: ExchangeAccount,
    balance: Decimal = DEFAULT_PAPER_BALANCE,
    default_leverage: int = 10,
    hedge_mode: bool = False,
) -> PaperWallet:
    """The account's paper wallet, created funded with `balance` USDT if absent."""
    if account.exchange != "paper":
        raise OrderRejected(f"{account} is not a paper account.")
    wallet, _ = PaperWallet.objects.get_or_create(
        account=account,
        defaults={"balance": balance, "default_leverage": default_leverage, "hedge_mode": hedge_mode},
    )
    return wallet


def paper_wallet_locked(account_id: int) -> PaperWallet:
    wallet = PaperWallet.objects.select_for_update().filter(account_id=account_id).first()
    if wallet is None:
        account = ExchangeAccount.objects.get(pk=account_id)
        paper_wallet_ensure(account=account)
        wallet = PaperWallet.objects.select_for_update().get(account_id=account_id)
    return wallet


# --- state ----------------------------------------------------------------------------
def paper_state_compute(
    wallet: PaperWallet, positions: list[PaperPosition], open_orders: list[PaperOrder], quotes, now: float
) -> tuple[BalanceInfo, list[PositionInfo]]:
    rows = []
    for position in positions:
        quote = quotes.get(position.symbol)
        mark = quote.price_at(now) if quote else position.entry_price
        mmr = quote.spec.maintenance_margin_rate if quote else Decimal("0.005")
        direction = 1 if position.side == LONG else -1
        notional = position.size * mark
        rows.append(
            {
                "position": position,
                "mark": mark,
                "mmr": mmr,
                "unrealized": (mark - position.entry_price) * position.size * direction,
                "notional": notional,
                "initial": notional / position.leverage,
                "maintenance": notional * mmr,
            }
        )
    unrealized = sum((row["unrealized"] for row in rows), ZERO)
    maintenance = sum((row["maintenance"] for row in rows), ZERO)
    order_margin = sum(
        ((order.price or ZERO) * (order.amount - order.filled) / wallet.default_leverage for order in open_orders),
        ZERO,
    )
    initial = sum((row["initial"] for row in rows), ZERO) + order_margin
    equity = wallet.balance + unrealized
    balance = BalanceInfo(
        balance=wallet.balance,
        equity=equity,
        available=max(ZERO, equity - initial),
        margin_used=initial,
        unrealized_pnl=unrealized,
        maintenance_margin=maintenance,
        currency="USD",
        assets={wallet.currency: str(wallet.balance)},
    )
    margin_ratio = balance.margin_ratio
    result = []
    for row in rows:
        position = row["position"]
        size, entry, mmr = position.size, position.entry_price, row["mmr"]
        others_unrealized = unrealized - row["unrealized"]
        others_maintenance = maintenance - row["maintenance"]
        # Cross margin: the mark at which equity falls to the maintenance margin, the
        # other positions held where they are.
        cushion = wallet.balance + others_unrealized - others_maintenance
        if position.side == LONG:
            liquidation = (size * entry - cushion) / (size * (1 - mmr))
        else:
            liquidation = (cushion + size * entry) / (size * (1 + mmr))
        result.append(
            PositionInfo(
                symbol=position.symbol,
                side=position.side,
                size=size,
                entry_price=entry,
                mark_price=row["mark"],
                notional=row["notional"],
                unrealized_pnl=row["unrealized"],
                leverage=Decimal(position.leverage),
                liquidation_price=liquidation.quantize(Decimal("0.0001")) if liquidation > 0 else None,
                margin_ratio=margin_ratio,
                maintenance_margin=row["maintenance"],
                initial_margin=row["initial"],
                hedged=wallet.hedge_mode,
                timestamp=datetime.fromtimestamp(now, tz=UTC),
                opened_at=position.opened_at,
                quote=quotes[position.symbol].spec.quote if position.symbol in quotes else "USDT",
            )
        )
    return balance, result
