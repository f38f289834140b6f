"""The job handlers: registered as the jobs app expects, thin over the sync services."""

import types
import uuid
from decimal import Decimal

import pytest

from accounts.models import Position
from accounts.services.paper import paper_order_execute
from etrms.errors import Conflict, NotFound
from jobs.registry import handler_get

pytestmark = pytest.mark.django_db


def job_of(user):
    return types.SimpleNamespace(user_id=user.pk)


def test_handlers_are_registered_with_their_schemas():
    sync_one, sync_all = handler_get("sync_portfolio"), handler_get("sync_all_portfolios")
    assert (sync_one.default_priority, sync_one.officer_only) == ("high", False)
    assert (sync_all.default_priority, sync_all.officer_only) == ("high", True)
    assert set(sync_one.args_schema()) == {"exchange", "user_id"}
    assert sync_one.args_schema()["exchange"]["required"] is False
    assert sync_one.args(data={"exchange": "PAPER"}).is_valid()
    assert not sync_one.args(data={"exchange": "nowhere"}).is_valid()
    assert sync_one.args(data={}).is_valid()
    assert sync_one.args(data={"user_id": str(uuid.uuid4())}).is_valid()  # the seed's own example
    assert sync_all.args(data={"exchanges": ["paper", "binanceusdm"]}).is_valid()
    assert not sync_all.args(data={"exchanges": ["nowhere"]}).is_valid()


def test_sync_portfolio_syncs_the_callers_account(paper_account, trader):
    paper_order_execute(account_id=paper_account.pk, symbol="SOLUSDT", side="buy", amount=Decimal(10))
    result = handler_get("sync_portfolio").func(job_of(trader), exchange="paper")
    assert result["opened"] == ["SOLUSDT long"] and result["user_id"] == str(trader.pk)
    assert Position.objects.filter(account=paper_account, symbol="SOLUSDT", closed_at__isnull=True).exists()


def test_sync_portfolio_for_another_user_and_errors(paper_account, trader, officer):
    result = handler_get("sync_portfolio").func(job_of(officer), exchange="paper", user_id=trader.pk)
    assert result["account_id"] == paper_account.pk
    with pytest.raises(NotFound):
        handler_get("sync_portfolio").func(job_of(officer), exchange="paper")  # the officer has none
    with pytest.raises(NotFound):
        handler_get("sync_portfolio").func(job_of(trader), exchange="paper", user_id=uuid.uuid4())
    type(paper_account).objects.filter(pk=paper_account.pk).update(enabled=False)
    with pytest.raises(Conflict):
        handler_get("sync_portfolio").func(job_of(trader), exchange="paper")


def test_sync_all_portfolios(paper_account, make_exchange_account, officer):
    make_exchange_account(officer, "paper")
    result = handler_get("sync_all_portfolios").func(job_of(officer))
    assert result["accounts"] == 2 and result["failed"] == []
    result = handler_get("sync_all_portfolios").func(job_of(officer), exchanges=["binanceusdm"])
    assert result == {"accounts": 0, "synced": [], "failed": []}


def test_sync_portfolio_result_carries_phase_4_fields(paper_account, trader):
    paper_order_execute(account_id=paper_account.pk, symbol="SOLUSDT", side="buy", amount=Decimal(10))
    result = handler_get("sync_portfolio").func(job_of(trader), exchange="paper")
    assert result["synced"] is True and result["positions_updated"] == 1 and result["balances_updated"] == 1
    assert result["user_id"] == str(trader.pk) and result["synced_at"].endswith("Z")


def test_sync_portfolio_with_only_a_user_id_syncs_all_that_users_accounts(
    paper_account, trader, officer, make_exchange_account, binance_server
):
    binance = make_exchange_account(trader, "binanceusdm")
    binance_server.fill("BTCUSDT", "BUY", "0.1")
    paper_order_execute(account_id=paper_account.pk, symbol="SOLUSDT", side="buy", amount=Decimal(10))
    result = handler_get("sync_portfolio").func(job_of(officer), user_id=trader.pk)
    assert result["synced"] is True and result["user_id"] == str(trader.pk)
    assert (result["positions_updated"], result["balances_updated"]) == (2, 2)
    assert [item["exchange"] for item in result["accounts"]] == ["binanceusdm", "paper"]
    assert result["synced_at"].endswith("Z")
    assert Position.objects.filter(account=binance, symbol="BTCUSDT").exists()
    assert Position.objects.filter(account=paper_account, symbol="SOLUSDT").exists()


def test_the_seed_example_without_exchange_is_accepted_by_enqueue(trader_client, trader, paper_account):
    response = trader_client.post(
        "/api/v1/jobs/enqueue", {"name": "sync_portfolio", "args": {"user_id": str(trader.pk)}}, format="json"
    )
    assert response.status_code in (200, 201, 202), response.content
