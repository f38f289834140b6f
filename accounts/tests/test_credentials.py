"""Credentials are encrypted at rest, rotate with the key list, and never leak."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from accounts.exchanges import Credentials, ExchangeAuthError
from accounts.models import ExchangeAccount
from accounts.services.credentials import (
    account_credentials,
    credentials_rotate,
    exchange_account_credentials_set,
)
from accounts.services.exchange_accounts import exchange_account_create

pytestmark = pytest.mark.django_db

SECRET = "super-secret-value-123456"
API_KEY = "my-api-key-abcdef"


def raw_column(account_id) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM accounts_exchangeaccount WHERE id = %s", [account_id])
        return cursor.fetchone()[0]


def test_the_raw_column_holds_no_secret(trader):
    account = exchange_account_create(
        user_id=trader.pk, exchange="binanceusdm", credentials=Credentials(api_key=API_KEY, secret=SECRET)
    )
    stored = raw_column(account.pk)
    assert stored and SECRET not in stored and API_KEY not in stored
    assert account_credentials(ExchangeAccount.objects.get(pk=account.pk)) == Credentials(
        api_key=API_KEY, secret=SECRET
    )


def test_partial_update_keeps_the_other_fields(trader):
    account = exchange_account_create(
        user_id=trader.pk, exchange="okx", credentials=Credentials(api_key=API_KEY, secret=SECRET, password="pass-1")
    )
    exchange_account_credentials_set(account=account, credentials=Credentials(password="pass-2"))
    assert account_credentials(account) == Credentials(api_key=API_KEY, secret=SECRET, password="pass-2")
    exchange_account_credentials_set(account=account, credentials=Credentials(), replace=True)
    assert raw_column(account.pk) == ""
    assert not account_credentials(account)


def test_rotation_reencrypts_under_the_first_key(trader, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    account = exchange_account_create(
        user_id=trader.pk, exchange="binanceusdm", credentials=Credentials(api_key=API_KEY, secret=SECRET)
    )
    before = raw_column(account.pk)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert credentials_rotate() == 1
    after = raw_column(account.pk)
    assert after != before
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: still readable
    assert account_credentials(ExchangeAccount.objects.get(pk=account.pk)).secret == SECRET


def test_a_removed_key_is_a_clear_auth_error(trader, settings):
    account = exchange_account_create(
        user_id=trader.pk, exchange="binanceusdm", credentials=Credentials(api_key=API_KEY, secret=SECRET)
    )
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ExchangeAuthError) as caught:
        account_credentials(ExchangeAccount.objects.get(pk=account.pk))
    assert SECRET not in str(caught.value.detail)


def test_repr_and_str_never_show_values():
    credentials = Credentials(api_key=API_KEY, secret=SECRET)
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert SECRET not in text and API_KEY not in text
    assert "api_key" in repr(credentials)


def test_no_secret_in_logs_when_syncing(binance_server, make_exchange_account, trader, caplog):
    from accounts.services.sync import account_sync

    account = make_exchange_account(trader, "binanceusdm")
    binance_server.fail_next(kind="bad_signature")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExchangeAuthError):
        account_sync(account=account)
    account.refresh_from_db()
    text = caplog.text + account.last_sync_error
    assert binance_server.secret not in text
    assert binance_server.api_key not in text
    assert "signature=" not in text or "signature=[redacted]" in text
