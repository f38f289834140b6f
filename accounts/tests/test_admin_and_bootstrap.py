"""The admin keeps credentials write-only and snapshots read-only; bootstrap sets up the
admin's paper account with demo positions, once."""

import io
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.bootstrap import DEMO_POSITIONS
from accounts.models import ExchangeAccount, Position
from accounts.services.credentials import account_credentials
from accounts.services.paper import paper_order_execute
from accounts.services.sync import account_sync

pytestmark = pytest.mark.django_db
SECRET = "admin-typed-secret-9f8e7d"
API_KEY = "admin-typed-key-1a2b3c"


@pytest.fixture
def officer_browser(client, officer):
    client.force_login(officer)
    return client


def test_admin_credentials_are_write_only(officer_browser, trader):
    response = officer_browser.post(
        "/admin/accounts/exchangeaccount/add/",
        {
            "user": trader.pk,
            "exchange": "binanceusdm",
            "label": "desk binance",
            "enabled": "on",
            "api_key": API_KEY,
            "secret": SECRET,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ExchangeAccount.objects.get(user=trader, exchange="binanceusdm")
    assert account_credentials(account).secret == SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM accounts_exchangeaccount WHERE id = %s", [account.pk])
        assert SECRET not in cursor.fetchone()[0]

    page = officer_browser.get(f"/admin/accounts/exchangeaccount/{account.pk}/change/").content.decode()
    assert SECRET not in page and API_KEY not in page and account.credentials_encrypted not in page
    assert "Write-only" in page
    listing = officer_browser.get("/admin/accounts/exchangeaccount/").content.decode()
    assert SECRET not in listing and API_KEY not in listing

    # Saving with the secret fields empty keeps them; a new value replaces only itself.
    response = officer_browser.post(
        f"/admin/accounts/exchangeaccount/{account.pk}/change/",
        {"user": trader.pk, "exchange": "binanceusdm", "label": "renamed", "enabled": "on", "api_key": "new-key"},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.label == "renamed"
    assert (account_credentials(account).api_key, account_credentials(account).secret) == ("new-key", SECRET)

    officer_browser.post(
        f"/admin/accounts/exchangeaccount/{account.pk}/change/",
        {"user": trader.pk, "exchange": "binanceusdm", "enabled": "on", "clear_credentials": "on"},
    )
    account.refresh_from_db()
    assert not account.has_credentials


def test_admin_refuses_unknown_exchanges_and_duplicates(officer_browser, trader, paper_account):
    response = officer_browser.post(
        "/admin/accounts/exchangeaccount/add/", {"user": trader.pk, "exchange": "nowhere", "enabled": "on"}
    )
    assert response.status_code == 200 and "Unknown exchange" in response.content.decode()
    response = officer_browser.post(
        "/admin/accounts/exchangeaccount/add/", {"user": trader.pk, "exchange": "paper", "enabled": "on"}
    )
    assert response.status_code == 200
    assert ExchangeAccount.objects.filter(user=trader, exchange="paper").count() == 1


def test_snapshots_are_read_only_with_filters(officer_browser, paper_account):
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    account_sync(account=paper_account)
    position = Position.objects.get(account=paper_account)
    listing = officer_browser.get("/admin/accounts/position/?status=open&account__exchange=paper")
    assert listing.status_code == 200 and listing.content.decode().count('class="field-symbol"') == 1
    closed = officer_browser.get("/admin/accounts/position/?status=closed").content.decode()
    assert closed.count('class="field-symbol"') == 0
    detail = officer_browser.get(f"/admin/accounts/position/{position.pk}/change/")
    assert detail.status_code == 200 and 'name="size"' not in detail.content.decode()  # view only
    assert officer_browser.get("/admin/accounts/position/add/").status_code == 403
    assert officer_browser.post(f"/admin/accounts/position/{position.pk}/delete/", {"post": "yes"}).status_code == 403
    for model in ("balance", "accountday", "closedtrade", "monitoringstate", "paperfill", "paperorder"):
        assert officer_browser.get(f"/admin/accounts/{model}/").status_code == 200


def test_officers_pin_paper_prices_in_the_admin(officer_browser):
    from accounts.services.paper import paper_price

    response = officer_browser.post(
        "/admin/accounts/papermarket/add/",
        {
            "symbol": "BTCUSDT",
            "base": "BTC",
            "quote": "USDT",
            "base_price": "60000",
            "volatility": "0.6",
            "tick_size": "0.1",
            "step_size": "0.001",
            "price_override": "55555.5",
        },
    )
    assert response.status_code == 302, response.content.decode()[:1000]
    assert paper_price("BTCUSDT") == Decimal("55555.5")


def test_traders_cannot_enter_the_admin(client, trader):
    client.force_login(trader)
    assert client.get("/admin/accounts/exchangeaccount/").status_code == 302


def test_bootstrap_creates_the_admin_paper_account_once(monkeypatch):
    username = "boot-" + uuid.uuid4().hex[:6]
    monkeypatch.setenv("ETRMS_ADMIN_USERNAME", username)
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert f"Created the paper account of '{username}'" in out.getvalue()
    account = ExchangeAccount.objects.get(user__username=username, exchange="paper")
    positions = Position.objects.filter(account=account, closed_at__isnull=True)
    assert {(p.symbol, p.side, p.size) for p in positions} == {
        (symbol, "long" if side == "buy" else "short", amount) for symbol, side, amount in DEMO_POSITIONS
    }
    assert account.balance.equity > 0

    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert f"Paper account of '{username}' exists." in out.getvalue()
    assert ExchangeAccount.objects.filter(user__username=username).count() == 1
    assert Position.objects.filter(account=account).count() == len(DEMO_POSITIONS)


def test_rotate_credentials_command(trader, settings):
    from cryptography.fernet import Fernet

    from accounts.exchanges import Credentials
    from accounts.services.exchange_accounts import exchange_account_create

    exchange_account_create(user_id=trader.pk, exchange="okx", credentials=Credentials(api_key="k", secret="s"))
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "1 exchange account" in out.getvalue()
