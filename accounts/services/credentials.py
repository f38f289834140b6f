"""Exchange credentials at rest: Fernet tokens under `FIELD_ENCRYPTION_KEYS`.

MultiFernet over the configured keys: the first key encrypts, every key decrypts, so a
new key is put first and `credentials_rotate()` (or `manage.py rotate_credentials`)
re-encrypts every row before the old key is dropped. The key lives only in the
environment (or var/ in development), never in the database.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from accounts.exchanges.base import Credentials
from accounts.exchanges.errors import ExchangeAuthError
from accounts.models import ExchangeAccount


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY holds a key that is not a Fernet key.") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def credentials_encrypt(credentials: Credentials) -> str:
    """The token stored in `ExchangeAccount.credentials_encrypted` ("" for none)."""
    data = credentials.as_dict()
    if not data:
        return ""
    return fernet().encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def credentials_decrypt(token: str) -> Credentials:
    if not token:
        return Credentials()
    try:
        data = json.loads(fernet().decrypt(token.encode()))
    except InvalidToken:
        # A key was removed before its rows were rotated: the account cannot sign.
        raise ExchangeAuthError(
            "The account's stored credentials cannot be decrypted with the configured keys."
        ) from None
    return Credentials(**{name: str(data.get(name, "")) for name in Credentials.FIELDS})


def account_credentials(account: ExchangeAccount) -> Credentials:
    return credentials_decrypt(account.credentials_encrypted)


@transaction.atomic
def exchange_account_credentials_set(
    *, account: ExchangeAccount, credentials: Credentials, replace: bool = False
) -> ExchangeAccount:
    """Store `credentials`. Fields left empty keep their stored value unless `replace`."""
    merged = credentials.as_dict()
    if not replace:
        merged = {**account_credentials(account).as_dict(), **merged}
    account.credentials_encrypted = credentials_encrypt(Credentials(**merged))
    account.save(update_fields=["credentials_encrypted", "updated_at"])
    return account


@transaction.atomic
def credentials_rotate() -> int:
    """Re-encrypt every stored credential with the first key. Returns rows rewritten."""
    rotated = 0
    accounts = ExchangeAccount.objects.select_for_update().exclude(credentials_encrypted="")
    for account in accounts.only("id", "credentials_encrypted"):
        token = fernet().rotate(account.credentials_encrypted.encode()).decode()
        ExchangeAccount.objects.filter(pk=account.pk).update(credentials_encrypted=token)
        rotated += 1
    return rotated
