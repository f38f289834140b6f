"""Transfers never move risk (SPEC §4, issue 9 B2, B3, B8): daily PnL comes from fills,
a deposit or withdrawal moves equity peaks by the amount moved, and a position's
drawdown is measured against its peak entry notional, so size changes alone never
trip `max_drawdown`. On the paper exchange, synced as in production."""

from decimal import Decimal

import pytest

from accounts.models import Balance
from accounts.services.balances import balance_peak_reset
from accounts.services.paper import paper_order_execute, paper_price_set, paper_transfer
from accounts.services.sync import account_sync
from risk.api.outputs import evaluation_out
from risk.models import BreakerTrip, RiskAlert
from risk.services.config import global_config_update
from risk.services.evaluation import evaluation_run
from risk.tests.factories import CircuitBreakerFactory, RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_breakers", "no_caps", "no_fees")]

D = Decimal


@pytest.fixture
def no_fees(settings):
    settings.PAPER_TAKER_FEE = "0"


def trade(account, side: str, amount, price) -> None:
    paper_price_set(symbol="BTCUSDT", price=D(price))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side=side, amount=D(amount))
    account_sync(account=account)


def mark(account, price) -> None:
    paper_price_set(symbol="BTCUSDT", price=D(price))
    account_sync(account=account)


@pytest.fixture
def paper(paper_account):
    account_sync(account=paper_account)  # the first sync: nothing before it is attributed
    paper_transfer(account=paper_account, amount=D(900000))  # a 1,000,000 wallet for these books
    account_sync(account=paper_account)
    return paper_account


def test_a_60000_realised_loss_then_a_100000_deposit_keeps_daily_pnl_at_minus_60000(trader, paper):
    """B2: the deposit used to turn daily PnL to +40,000 and clear the daily_loss limit
    and the desk cap."""
    RiskLimitFactory(user=trader, limit_type="daily_loss", symbol=None, threshold_value=D(50000), warning_value=None)
    global_config_update(actor=None, daily_loss_limit=Decimal("55000"))
    trade(paper, "buy", 10, 50000)
    trade(paper, "sell", 10, 44000)  # realised -60,000
    paper_transfer(account=paper, amount=D(100000))
    account_sync(account=paper)

    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert result["metrics"]["daily_pnl"] == "-60000.00"
    assert result["metrics"]["daily_loss"] == "60000.00"
    exceeded = {(v["limit_type"], v["source"]) for v in result["violations"]}
    assert exceeded == {("daily_loss", "limit"), ("daily_loss", "config")}


def test_a_withdrawal_is_never_drawdown_for_the_limit_or_the_desk_cap(trader, paper):
    """B8: equity 1,000,000 at its peak; a 300,000 withdrawal leaves drawdown at 0 for
    the user's drawdown limit and the desk's max_drawdown_pct cap; a real loss after it
    is measured from the lowered peak."""
    RiskLimitFactory(user=trader, limit_type="drawdown", symbol=None, threshold_value=D(10), warning_value=None)
    global_config_update(actor=None, max_drawdown_pct=Decimal("20"))
    evaluation_run(user_id=trader.pk)  # the limit's peak: 1,000,000
    paper_transfer(account=paper, amount=D(-300000))
    account_sync(account=paper)
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert result["metrics"]["drawdown"] == "0.00" and result["violations"] == []

    trade(paper, "buy", 10, 50000)
    mark(paper, 42300)  # -77,000 on 700,000: 11 % below the lowered peak
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert D(result["metrics"]["drawdown"]) == D(11)
    assert {(v["limit_type"], v["source"]) for v in result["violations"]} == {("drawdown", "limit")}


def test_a_deposit_raises_the_peak_so_a_later_loss_counts_from_there(trader, paper):
    RiskLimitFactory(user=trader, limit_type="drawdown", symbol=None, threshold_value=D(5), warning_value=None)
    evaluation_run(user_id=trader.pk)
    paper_transfer(account=paper, amount=D(1000000))  # 2,000,000 now
    account_sync(account=paper)
    trade(paper, "buy", 10, 50000)
    mark(paper, 40000)  # -100,000 on 2,000,000: 5 %
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert D(result["metrics"]["drawdown"]) == D(5)
    assert RiskAlert.objects.filter(user=trader, alert_type="drawdown_exceeded").exists()


def test_an_officer_resets_the_desk_drawdown_peak(trader, officer, paper):
    """B8: an officer's audited reset of the account's peak clears a desk cap breach."""
    global_config_update(actor=None, max_drawdown_pct=Decimal("20"))
    trade(paper, "buy", 10, 50000)
    mark(paper, 20000)  # -300,000 on 1,000,000
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    assert {v["source"] for v in result["violations"]} == {"config"}
    balance_peak_reset(actor=officer, account=paper)
    assert Balance.objects.get(account=paper).peak_reset_by == officer
    assert evaluation_out(evaluation_run(user_id=trader.pk))["violations"] == []


@pytest.mark.parametrize(
    ("case", "threshold", "trips"), [("at", "6", True), ("just below", "5.9999", True), ("just above", "6.0001", False)]
)
def test_long_10_at_50000_peak_55000_then_52000_selling_8_does_not_trip_max_drawdown(
    trader, paper, case, threshold, trips
):
    """B3: PnL +50k at 55,000, +20k at 52,000; selling 8 at 52,000 keeps it at +20k. The
    drawdown is 30k of the peak entry notional 500k, 6 %, not 30 % of what is left."""
    CircuitBreakerFactory(name="dd", condition_type="max_drawdown", threshold=D(threshold), action="close_position")
    trade(paper, "buy", 10, 50000)
    mark(paper, 55000)
    mark(paper, 52000)
    trade(paper, "sell", 8, 52000)
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.exists() is trips
    if trips:
        assert D(str(BreakerTrip.objects.get().context["current_drawdown"])) == D(6)


def test_the_default_15pct_max_drawdown_breaker_does_not_close_the_rest_after_a_reduction(trader, paper):
    """B3, the review's scenario with the default breaker (max-drawdown-15pct)."""
    CircuitBreakerFactory(name="max-drawdown-15pct", condition_type="max_drawdown", threshold=D(15))
    trade(paper, "buy", 10, 50000)
    mark(paper, 55000)
    mark(paper, 52000)
    trade(paper, "sell", 8, 52000)
    evaluation_run(user_id=trader.pk)
    assert not BreakerTrip.objects.exists()
