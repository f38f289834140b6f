"""ETRMS's account, position and monitoring endpoints: shapes, scope, 404s, query counts."""

import json
import uuid
from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from accounts.models import PaperWallet
from accounts.services import monitoring
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync, portfolios_sync_all

pytestmark = pytest.mark.django_db

ITEM_FIELDS = {
    "id",
    "exchange",
    "symbol",
    "side",
    "size",
    "entry_price",
    "mark_price",
    "notional",
    "unrealized_pnl",
    "realized_pnl",
    "leverage",
    "liquidation_price",
    "margin_ratio",
    "opened_at",
    "mark_updated_at",
}
ACCOUNT_FIELDS = {"balance", "equity", "available", "margin_used"}


def ok(response, message=None):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "success" and isinstance(body["message"], str) and body["message"]
    if message:
        assert body["message"] == message
    return body["data"]


def error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "error" and body["data"] is None
    return body


@pytest.fixture
def desk(trader, make_user, make_exchange_account, binance_server):
    """The trader: paper (BTC long, ETH short) and binanceusdm (SOL long); another
    trader: paper (BTC long)."""
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper = make_exchange_account(trader, "paper")
    paper_order_execute(account_id=paper.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.5"))
    paper_order_execute(account_id=paper.pk, symbol="ETHUSDT", side="sell", amount=Decimal(2))
    binance = make_exchange_account(trader, "binanceusdm")
    binance_server.set_price("SOLUSDT", 150)
    binance_server.fill("SOLUSDT", "BUY", "10")
    other = make_user("other-" + uuid.uuid4().hex[:6])
    others_paper = make_exchange_account(other, "paper")
    paper_order_execute(account_id=others_paper.pk, symbol="BTCUSDT", side="buy", amount=Decimal(1))
    paper_price_set(symbol="BTCUSDT", price=Decimal(61000))
    for account in (paper, binance, others_paper):
        account_sync(account=account)
    return {"trader": trader, "other": other, "paper": paper, "binance": binance, "others_paper": others_paper}


def binance_server_secrets_absent(text: str) -> bool:
    from accounts.testing.binance_server import API_KEY, API_SECRET

    return API_KEY not in text and API_SECRET not in text and "credentials_encrypted" not in text


@pytest.fixture
def interval_provider():
    """Swap the registered interval provider (risk's config) for the test's own."""
    previous = monitoring.monitoring_interval_provider_set(None)
    yield monitoring.monitoring_interval_provider_set
    monitoring.monitoring_interval_provider_set(previous)


# --- accounts -----------------------------------------------------------------------------
def test_account_summary_is_the_callers(desk, trader_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        data = ok(trader_client.get("/api/v1/accounts/"), "Account summary retrieved")
    assert set(data["accounts"]) == {"paper", "binanceusdm"}
    paper = data["accounts"]["paper"]
    assert set(paper) >= ACCOUNT_FIELDS and "by_user" not in paper
    assert all(isinstance(paper[name], float) for name in ACCOUNT_FIELDS)
    fees = (Decimal(30000) + Decimal(6000)) * Decimal("0.0004")
    assert paper["balance"] == float(Decimal(100000) - fees)
    assert paper["equity"] == pytest.approx(paper["balance"] + 500)
    assert paper["last_sync_failed"] is False and paper["last_synced_at"].endswith("Z")
    assert data["accounts"]["binanceusdm"]["balance"] == pytest.approx(10000 - 0.6)
    assert data["total_equity"] == pytest.approx(paper["equity"] + data["accounts"]["binanceusdm"]["equity"])
    text = json.dumps(data)
    assert binance_server_secrets_absent(text)


def test_officer_sees_every_account_and_filters_by_user(desk, officer_client):
    data = ok(officer_client.get("/api/v1/accounts/"))
    paper = data["accounts"]["paper"]
    assert set(paper["by_user"]) == {str(desk["trader"].pk), str(desk["other"].pk)}
    assert paper["balance"] == pytest.approx(sum(entry["balance"] for entry in paper["by_user"].values()))
    filtered = ok(officer_client.get(f"/api/v1/accounts/?user_id={desk['other'].pk}"))
    assert set(filtered["accounts"]) == {"paper"}
    assert set(filtered["accounts"]["paper"]["by_user"]) == {str(desk["other"].pk)}
    error(officer_client.get("/api/v1/accounts/?user_id=not-a-uuid"), 400)


def test_a_trader_cannot_look_at_another_users_accounts(desk, trader_client):
    error(trader_client.get(f"/api/v1/accounts/?user_id={desk['other'].pk}"), 404)
    ok(trader_client.get(f"/api/v1/accounts/?user_id={desk['trader'].pk}"))


def test_account_of_one_exchange(desk, trader_client, api_client_for):
    data = ok(trader_client.get("/api/v1/accounts/binanceusdm"))
    assert data["exchange"] == "binanceusdm" and set(data) >= ACCOUNT_FIELDS
    assert data["has_credentials"] is True
    error(trader_client.get("/api/v1/accounts/okx"), 404)  # a real venue, no account there
    body = error(trader_client.get("/api/v1/accounts/no-such-venue"), 404)
    assert "Unknown exchange" in body["message"]
    error(api_client_for(desk["other"]).get("/api/v1/accounts/binanceusdm"), 404)


def test_accounts_need_a_token(anon_client):
    error(anon_client.get("/api/v1/accounts/"), 401)
    error(anon_client.get("/api/v1/positions/"), 401)


# --- positions ----------------------------------------------------------------------------
def test_position_summary_shape(desk, trader_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        data = ok(trader_client.get("/api/v1/positions/"), "Position summary retrieved")
    assert set(data) == {"total_position_value", "total_unrealized_pnl", "exchanges", "positions_by_symbol"}
    assert set(data["exchanges"]) == {"paper", "binanceusdm"}
    paper = data["exchanges"]["paper"]
    assert {(item["symbol"], item["side"]) for item in paper["positions"]} == {
        ("BTCUSDT", "long"),
        ("ETHUSDT", "short"),
    }
    for item in paper["positions"]:
        assert set(item) == ITEM_FIELDS
        assert isinstance(item["size"], float) and item["exchange"] == "paper"
    btc = next(item for item in paper["positions"] if item["symbol"] == "BTCUSDT")
    assert (btc["size"], btc["entry_price"], btc["mark_price"]) == (0.5, 60000.0, 61000.0)
    assert (btc["notional"], btc["unrealized_pnl"]) == (30500.0, 500.0)
    assert paper["total_position_value"] == pytest.approx(30500 + 6000)
    assert paper["total_unrealized_pnl"] == pytest.approx(500)
    assert data["total_position_value"] == pytest.approx(30500 + 6000 + 1500)
    assert set(data["positions_by_symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    eth = data["positions_by_symbol"]["ETHUSDT"]
    assert eth["net_size"] == -2.0 and eth["total_position_value"] == 6000.0


def test_query_count_does_not_grow_with_positions(desk, trader_client, django_assert_max_num_queries):
    paper_order_execute(account_id=desk["paper"].pk, symbol="SOLUSDT", side="buy", amount=Decimal(5))
    account_sync(account=desk["paper"])
    with django_assert_max_num_queries(2):
        data = ok(trader_client.get("/api/v1/positions/"))
    assert len(data["exchanges"]["paper"]["positions"]) == 3


def test_officer_positions_carry_user_ids(desk, officer_client):
    data = ok(officer_client.get("/api/v1/positions/by-symbol"))
    assert set(data) == {"total_position_value", "total_unrealized_pnl", "positions_by_symbol"}
    owners = {item["user_id"] for item in data["positions_by_symbol"]["BTCUSDT"]["positions"]}
    assert owners == {str(desk["trader"].pk), str(desk["other"].pk)}
    mine = ok(officer_client.get(f"/api/v1/positions/?user_id={desk['other'].pk}"))
    assert set(mine["positions_by_symbol"]) == {"BTCUSDT"}


def test_positions_by_exchange(desk, trader_client):
    data = ok(trader_client.get("/api/v1/positions/by-exchange"))
    assert set(data) == {"total_position_value", "total_unrealized_pnl", "exchanges"}
    assert [item["symbol"] for item in data["exchanges"]["binanceusdm"]["positions"]] == ["SOLUSDT"]


def test_positions_of_one_exchange_and_symbol(desk, trader_client, api_client_for):
    data = ok(trader_client.get("/api/v1/positions/paper"))
    assert data["exchange"] == "paper" and len(data["positions"]) == 2
    one = ok(trader_client.get("/api/v1/positions/paper/eth-usdt"))
    assert (one["exchange"], one["symbol"]) == ("paper", "ETHUSDT")
    assert [item["side"] for item in one["positions"]] == ["short"]
    assert one["total_unrealized_pnl"] == 0.0
    error(trader_client.get("/api/v1/positions/paper/SOLUSDT"), 404)  # no position there
    error(trader_client.get("/api/v1/positions/paper/!!"), 404)
    error(trader_client.get("/api/v1/positions/okx"), 404)
    error(trader_client.get("/api/v1/positions/nowhere/BTCUSDT"), 404)
    error(api_client_for(desk["other"]).get("/api/v1/positions/binanceusdm/SOLUSDT"), 404)


def test_an_exchange_account_without_positions_lists_none(trader, make_exchange_account, trader_client):
    make_exchange_account(trader, "paper")
    data = ok(trader_client.get("/api/v1/positions/paper"))
    assert data == {"exchange": "paper", "total_position_value": 0, "total_unrealized_pnl": 0, "positions": []}
    assert ok(trader_client.get("/api/v1/positions/"))["exchanges"] == {
        "paper": {"total_position_value": 0, "total_unrealized_pnl": 0, "positions": []}
    }


def test_hedge_mode_lists_both_sides(trader, make_exchange_account, trader_client):
    account = make_exchange_account(trader, "paper")
    PaperWallet.objects.filter(account=account).update(hedge_mode=True)
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="sell", amount=Decimal("0.2"))
    account_sync(account=account)
    data = ok(trader_client.get("/api/v1/positions/paper/BTCUSDT"))
    assert sorted(item["side"] for item in data["positions"]) == ["long", "short"]
    assert ok(trader_client.get("/api/v1/positions/by-symbol"))["positions_by_symbol"]["BTCUSDT"]["net_size"] == -0.1


# --- monitoring ---------------------------------------------------------------------------
def task_spec(task):
    return json.loads(task.kwargs)


def test_monitoring_start_stop_status(paper_account, officer_client, trader_client, settings, interval_provider):
    settings.MONITORING_INTERVAL_SECONDS = 15
    status = ok(trader_client.get("/api/v1/accounts/monitor/status"))
    assert status["running"] is False and status["last_sync"] is None and status["interval"] == 15

    error(trader_client.post("/api/v1/accounts/monitor/start?exchanges=paper"), 403)
    data = ok(
        officer_client.post("/api/v1/accounts/monitor/start?exchanges=paper&symbols=BTCUSDT,eth-usdt"),
        "Monitoring started",
    )
    assert data["running"] is True
    assert (data["exchanges"], data["symbols"], data["interval"]) == (["paper"], ["BTCUSDT", "ETHUSDT"], 15)
    task = PeriodicTask.objects.get(name=monitoring.MONITORING_TASK_NAME)
    assert task.enabled and task.task == "jobs.run_scheduled"
    assert (task.interval.every, task.interval.period) == (15, "seconds")
    assert task_spec(task)["job_name"] == "sync_all_portfolios"
    assert task_spec(task)["args"] == {"exchanges": ["paper"]}

    status = ok(trader_client.get("/api/v1/accounts/monitor/status"), "Monitoring status retrieved")
    assert status["running"] is True and status["started_at"].endswith("Z")
    portfolios_sync_all(exchanges=["paper"])
    status = ok(trader_client.get("/api/v1/accounts/monitor/status"))
    assert status["last_sync"] is not None and status["last_error"] is None

    again = ok(officer_client.post("/api/v1/accounts/monitor/start?exchanges=paper"), "Monitoring updated")
    assert again["symbols"] == []
    assert PeriodicTask.objects.filter(name=monitoring.MONITORING_TASK_NAME).count() == 1

    error(trader_client.post("/api/v1/accounts/monitor/stop"), 403)
    stopped = ok(officer_client.post("/api/v1/accounts/monitor/stop"), "Monitoring stopped")
    assert stopped["running"] is False and stopped["stopped_at"]
    assert not PeriodicTask.objects.get(name=monitoring.MONITORING_TASK_NAME).enabled
    ok(officer_client.post("/api/v1/accounts/monitor/stop"), "Monitoring was not running")


def test_monitoring_defaults_and_validation(paper_account, officer_client):
    ok(officer_client.post("/api/v1/accounts/monitor/stop"), "Monitoring was not running")  # never started
    body = error(officer_client.post("/api/v1/accounts/monitor/start?exchanges=paper,nowhere"), 400)
    assert "nowhere" in body["message"] and "exchanges" in body["errors"]
    error(officer_client.post("/api/v1/accounts/monitor/start?symbols=BTC$USDT"), 400)
    assert not PeriodicTask.objects.filter(name=monitoring.MONITORING_TASK_NAME).exists()
    data = ok(officer_client.post("/api/v1/accounts/monitor/start"))
    assert data["exchanges"] == ["paper"]  # the venues with enabled accounts


def test_the_interval_comes_from_the_registered_provider(paper_account, officer_client, interval_provider):
    interval_provider(lambda: 45)
    assert ok(officer_client.post("/api/v1/accounts/monitor/start"))["interval"] == 45
    monitoring.monitoring_interval_update(interval_seconds=20)
    task = PeriodicTask.objects.get(name=monitoring.MONITORING_TASK_NAME)
    assert task.interval.every == 20 and task.enabled


def test_monitored_symbols_for_the_feed(paper_account, officer_client):
    from accounts.selectors import monitored_symbols

    paper_order_execute(account_id=paper_account.pk, symbol="SOLUSDT", side="buy", amount=Decimal(1))
    account_sync(account=paper_account)
    assert monitored_symbols(exchange="paper") == []  # not running
    ok(officer_client.post("/api/v1/accounts/monitor/start?exchanges=paper"))
    assert monitored_symbols(exchange="paper") == ["SOLUSDT"]
    ok(officer_client.post("/api/v1/accounts/monitor/start?exchanges=paper&symbols=BTCUSDT"))
    assert monitored_symbols(exchange="paper") == ["BTCUSDT"]
    assert monitored_symbols(exchange="binanceusdm") == []
