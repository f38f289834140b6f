"""The kill switch (issue 15 item 3, SPEC §12): a risk officer halts a user, an exchange
or the desk, cancels every open order and closes every position in scope with
reduce-only orders, honouring dry run; answers per order and per position; a second
call never closes twice; a failed or partial close is escalated, retried on the
critical queue with the same client order id, never silent. On paper and against the
local Binance USD-M server through ccxt."""

from decimal import Decimal

import pytest

from accounts.exchanges.ccxt_orders import venue_client_order_id
from accounts.models import PaperOrder, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from jobs.models import Job
from risk.models import KillAction, KillSwitch, RiskAlert
from risk.services.config import global_config_update
from risk.services.kill_actions import kill_action_retry
from risk.services.kill_switch import kill_switch_engage
from risk.services.trading_state import trading_state_effective

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps", "no_breakers")]

URL = "/api/v1/risk/kill-switch"
D = Decimal


def live():
    global_config_update(actor=None, dry_run=False)


def open_size(account, symbol="BTCUSDT") -> Decimal:
    row = Position.objects.filter(account=account, symbol=symbol, closed_at__isnull=True).first()
    return row.size if row else D(0)


@pytest.fixture
def paper_book(trader, make_exchange_account):
    """Long 0.5 BTCUSDT and short 2 ETHUSDT on paper, with a buy limit resting on BTCUSDT."""
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_price_set(symbol="ETHUSDT", price=D(3000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.5"))
    paper_order_execute(account_id=account.pk, symbol="ETHUSDT", side="sell", amount=D(2))
    resting = {"type": "limit", "price": D(50000)}
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"), **resting)
    account_sync(account=account)
    return account


def test_the_kill_switch_needs_an_officer_confirm_and_a_reason(trader, trader_client, officer_client):
    body = {"scope": "user", "user_id": str(trader.pk), "reason": "runaway bot"}
    assert trader_client.post(URL, {**body, "confirm": True}, format="json").status_code == 403
    response = officer_client.post(URL, body, format="json")
    assert response.status_code == 400 and "confirm" in response.json()["errors"]
    assert officer_client.post(URL, {**body, "confirm": False}, format="json").status_code == 400
    assert officer_client.post(URL, {**body, "confirm": True, "reason": " "}, format="json").status_code == 400
    assert officer_client.post(URL, {**body, "confirm": True, "scope": "world"}, format="json").status_code == 400
    no_user = {"scope": "user", "confirm": True, "reason": "x"}
    assert officer_client.post(URL, no_user, format="json").status_code == 400
    assert officer_client.post(URL, {**body, "confirm": True, "extra": 1}, format="json").status_code == 400
    assert not KillSwitch.objects.exists()
    assert trading_state_effective(user_id=trader.pk).state == "active"


def test_dry_run_on_paper_halts_and_says_what_it_would_do_sending_nothing(
    trader, officer_client, paper_book, published_alerts
):
    body = {"scope": "user", "user_id": str(trader.pk), "confirm": True, "reason": "runaway bot"}
    response = officer_client.post(URL, body, format="json")
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["dry_run"] is True and report["status"] == "dry_run" and report["trading_state"] == "halted"
    positions = {p["symbol"]: p for p in report["positions"]}
    assert (
        positions["BTCUSDT"]["status"] == "dry_run"
        and "would close the long 0.5 BTCUSDT" in (positions["BTCUSDT"]["result"])
    )
    assert "reduce-only market buy of 2" in positions["ETHUSDT"]["result"]
    cancels = {c["symbol"]: c for c in report["order_cancels"]}
    assert [o["status"] for o in cancels["BTCUSDT"]["orders"]] == ["would_cancel"]
    assert cancels["ETHUSDT"]["orders"] == []
    # nothing sent: both positions and the resting order are still there
    assert open_size(paper_book) == D("0.5") and open_size(paper_book, "ETHUSDT") == D(2)
    assert PaperOrder.objects.filter(account=paper_book, status="open").count() == 1
    # the halt applies even on a dry run: it sends no order
    state = trading_state_effective(user_id=trader.pk)
    assert state.state == "halted" and state.level == "user"
    alerts = [m["alert"] for m in published_alerts(trader) if m["alert"]["alert_type"] == "kill_switch"]
    assert alerts and alerts[-1]["severity"] == "critical" and alerts[-1]["type"] == "kill_switch"
    assert "dry run" in alerts[-1]["description"]


def test_live_on_paper_cancels_every_order_and_closes_every_position_of_that_user_only(
    trader, officer, paper_book, make_user, make_exchange_account
):
    other = make_user()
    other_account = make_exchange_account(other, "paper")
    paper_order_execute(account_id=other_account.pk, symbol="BTCUSDT", side="buy", amount=D("0.2"))
    account_sync(account=other_account)
    live()

    kill = kill_switch_engage(actor=officer, scope="user", user_id=trader.pk, confirm=True, reason="runaway bot")
    assert kill.status == "succeeded" and kill.dry_run is False
    assert open_size(paper_book) == 0 and open_size(paper_book, "ETHUSDT") == 0
    assert not PaperOrder.objects.filter(account=paper_book, status="open").exists()
    closes = KillAction.objects.filter(kill=kill, kind="close_position")
    assert {(a.symbol, a.status) for a in closes} == {("BTCUSDT", "succeeded"), ("ETHUSDT", "succeeded")}
    for action in closes:
        order = PaperOrder.objects.get(account=paper_book, client_order_id=action.client_order_id)
        assert order.reduce_only and order.status == "closed" and order.filled == order.amount
    assert open_size(other_account) == D("0.2")  # another user is out of scope
    assert trading_state_effective(user_id=other.pk).state == "active"
    alert = RiskAlert.objects.get(user=trader, alert_type="kill_switch")
    assert "every order cancelled and position closed" in alert.message and not alert.metadata.get("escalated")


def test_an_exchange_kill_switch_halts_that_exchange_and_a_second_call_closes_nothing_twice(
    trader, officer, officer_client, paper_book
):
    live()
    body = {"scope": "exchange", "exchange": "paper", "confirm": True, "reason": "venue incident"}
    first = officer_client.post(URL, body, format="json").json()
    assert first["status"] == "succeeded" and len(first["positions"]) == 2
    assert trading_state_effective(user_id=trader.pk, exchange="paper").state == "halted"
    second = officer_client.post(URL, body, format="json").json()
    assert second["status"] == "succeeded" and second["positions"] == []  # nothing left open
    reduce_only = PaperOrder.objects.filter(account=paper_book, reduce_only=True)
    assert reduce_only.count() == 2  # one close per position, ever


@pytest.fixture
def binance_long(trader, make_exchange_account, binance_server):
    """Long 0.5 BTCUSDT from 60,000 on the local Binance server, a sell limit resting."""
    account = make_exchange_account(trader, "binanceusdm")
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5")
    binance_server.add_open_order("BTCUSDT", "SELL", "0.1", price=70000)
    account_sync(account=account)
    live()
    return account


def order_posts(binance_server) -> list:
    return [r.params for r in binance_server.requests_to("/fapi/v1/order") if r.method == "POST"]


def test_against_binance_orders_are_cancelled_and_the_close_is_a_signed_reduce_only_sell(
    trader, officer, binance_long, binance_server
):
    kill = kill_switch_engage(actor=officer, scope="user", user_id=trader.pk, confirm=True, reason="bot loop")
    assert kill.status == "succeeded"
    assert binance_server.requests_to("/fapi/v1/allOpenOrders")
    cancel = KillAction.objects.get(kill=kill, kind="cancel_orders")
    assert [o["status"] for o in cancel.details["orders"]] == ["cancelled"] and cancel.details["orders"][0]["side"] == (
        "sell"
    )
    (params,) = order_posts(binance_server)
    assert params["side"] == "SELL" and params["type"] == "MARKET" and params["reduceOnly"] == "true"
    assert D(params["quantity"]) == D("0.5") and "signature" in params
    close = KillAction.objects.get(kill=kill, kind="close_position")
    assert params["newClientOrderId"] == venue_client_order_id("binanceusdm", close.client_order_id)
    assert open_size(binance_long) == 0


def test_a_partial_fill_is_escalated_retried_on_the_critical_queue_under_the_next_id(
    trader, officer, binance_long, binance_server
):
    binance_server.script_next_order("PARTIALLY_FILLED", filled="0.2")
    kill = kill_switch_engage(actor=officer, scope="user", user_id=trader.pk, confirm=True, reason="bot loop")
    assert kill.status == "partial"
    close = KillAction.objects.get(kill=kill, kind="close_position")
    assert close.status == "partial" and "not fully filled" in close.result
    job = Job.objects.get(name="kill_switch_retry")
    assert job.priority == "critical" and job.args == {"action_id": str(close.id)}
    alert = RiskAlert.objects.get(user=trader, alert_type="kill_switch")
    assert alert.severity == "critical" and alert.metadata["escalated"] and "FAILED, retrying" in alert.message

    assert kill_action_retry(action_id=close.id)["status"] == "succeeded"  # what the queued job runs
    assert open_size(binance_long) == 0
    sent = [p["newClientOrderId"] for p in order_posts(binance_server)]
    ours = [venue_client_order_id("binanceusdm", f"{close.client_order_id}{s}") for s in ("", "-1")]
    assert sent == ours  # the first order, then the remainder under the next id
    kill.refresh_from_db()
    assert kill.status == "succeeded"
    alert.refresh_from_db()
    assert "after 2 attempts" in alert.message


def test_a_failed_close_is_retried_with_the_same_client_order_id_by_a_second_call_not_a_new_close(
    trader, officer, binance_long, binance_server
):
    binance_server.fail_next(status=503, path="/fapi/v1/order", times=10)
    first = kill_switch_engage(actor=officer, scope="user", user_id=trader.pk, confirm=True, reason="bot loop")
    close = KillAction.objects.get(kind="close_position")
    assert first.status == "partial" and close.status == "failed" and close.error
    binance_server.failures.clear()

    second = kill_switch_engage(actor=officer, scope="desk", confirm=True, reason="desk halt")
    assert KillAction.objects.filter(kind="close_position").count() == 1  # the first call's row, re-run
    close.refresh_from_db()
    assert close.status == "succeeded" and close.kill_id == first.id and second.status == "succeeded"
    posted = {p["newClientOrderId"] for p in order_posts(binance_server) if "newClientOrderId" in p}
    assert posted == {venue_client_order_id("binanceusdm", close.client_order_id)}
    assert open_size(binance_long) == 0


def test_a_close_another_call_is_running_is_reported_pending_and_not_sent_again(
    trader, officer, officer_client, binance_long, binance_server
):
    from datetime import timedelta

    from django.utils import timezone

    position = Position.objects.get(account=binance_long, closed_at__isnull=True)
    running = KillSwitch.objects.create(scope="user", user=trader, reason="first", dry_run=False)
    KillAction.objects.create(
        kill=running,
        kind="close_position",
        user=trader,
        account=binance_long,
        exchange="binanceusdm",
        symbol="BTCUSDT",
        position_ref=str(position.pk),
        side="long",
        size=position.size,
        dry_run=False,
        client_order_id="etrms-ks-first",
        lease_until=timezone.now() + timedelta(seconds=60),  # the first call is sending it now
    )
    body = {"scope": "user", "user_id": str(trader.pk), "confirm": True, "reason": "again"}
    report = officer_client.post(URL, body, format="json").json()
    (entry,) = report["positions"]
    assert entry["status"] == "pending" and entry["kill_switch_id"] == str(running.id)
    assert report["status"] == "partial" and order_posts(binance_server) == []


def test_the_admin_engages_only_after_its_confirmation_page(client, officer, trader, paper_book):
    client.force_login(officer)
    url = "/admin/risk/killswitch/engage/"
    assert client.get(url).status_code == 200
    assert client.get("/admin/risk/killswitch/add/").url == url
    form = {"scope": "user", "user": str(trader.pk), "exchange": "", "reason": "runaway bot"}
    page = client.post(url, form)
    assert page.status_code == 200 and b"Are you sure?" in page.content
    assert b"closes 2 open position(s) on 1 account(s)" in page.content and b"Dry run is on" in page.content
    assert not KillSwitch.objects.exists()  # nothing happens before the confirmation

    done = client.post(url, {**form, "confirmed": "yes"})
    kill = KillSwitch.objects.get()
    assert done.status_code == 302 and done.url.endswith(f"/admin/risk/killswitch/{kill.pk}/change/")
    assert kill.status == "dry_run" and kill.requested_by_id == officer.pk
    assert trading_state_effective(user_id=trader.pk).state == "halted"
    assert client.get(done.url).status_code == 200


def test_a_trader_cannot_reach_the_admin_kill_switch(client, trader):
    client.force_login(trader)
    assert client.post("/admin/risk/killswitch/engage/", {"scope": "desk", "reason": "x"}).status_code == 302
    assert not KillSwitch.objects.exists()
