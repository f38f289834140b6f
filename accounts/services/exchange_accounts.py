"""Writes on exchange accounts, and the one way to reach an account's exchange."""

from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.exchanges import PAPER, Credentials, Exchange, exchange_open, is_known_exchange
from accounts.models import ExchangeAccount
from accounts.services.credentials import account_credentials, credentials_encrypt
from etrms.errors import Conflict, InvalidInput


def account_exchange(account: ExchangeAccount) -> Exchange:
    """The exchange interface for `account`, signed with its decrypted credentials.
    Use it with `async with`; the credentials live only inside the client."""
    credentials = None if account.exchange == PAPER else account_credentials(account)
    return exchange_open(account.exchange, credentials=credentials, testnet=account.testnet, account_id=account.pk)


def exchange_validate(exchange: str) -> str:
    exchange = (exchange or "").strip().lower()
    if not is_known_exchange(exchange):
        raise InvalidInput({"exchange": [f"Unknown exchange {exchange!r}: use a ccxt exchange id or 'paper'."]})
    return exchange


@transaction.atomic
def exchange_account_create(
    *,
    user_id,
    exchange: str,
    label: str = "",
    credentials: Credentials | None = None,
    testnet: bool = False,
    enabled: bool = True,
    paper_balance: Decimal | None = None,
) -> ExchangeAccount:
    """A new account; a second account of the user on the same exchange is a 409. A
    paper account gets its wallet at once (`paper_balance` USDT, default 100,000)."""
    exchange = exchange_validate(exchange)
    if ExchangeAccount.objects.filter(user_id=user_id, exchange=exchange).exists():
        raise Conflict(f"The user already has a {exchange} account.")
    try:
        with transaction.atomic():
            account = ExchangeAccount.objects.create(
                user_id=user_id,
                exchange=exchange,
                label=label,
                testnet=testnet,
                enabled=enabled,
                credentials_encrypted=credentials_encrypt(credentials) if credentials else "",
            )
    except IntegrityError:
        raise Conflict(f"The user already has a {exchange} account.") from None
    if exchange == PAPER:
        from accounts.services.paper import paper_wallet_ensure

        paper_wallet_ensure(account=account, **({"balance": paper_balance} if paper_balance is not None else {}))
    return account
