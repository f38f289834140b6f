"""Property: `breakers_assess` (each breaker's screen over the book, then its checker on
what the screen kept) finds exactly what the plain loop finds, a checker call per
position and breaker in scope, in the same order; and a latched streak is judged clear
exactly when the plain judge of every (account, symbol) read would say so. Pure: no
database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.selectors.books import AccountView, PositionView
from risk.services.assess import BreakerInputs, breakers_assess, latch_key_of, stale_reason
from risk.services.breaker_checks import CHECKS, streak_length
from risk.services.snapshots import Book, BreakerView, ConfigView
from risk.tests.factories import breakers_only_config

NOW = datetime(2026, 12, 1, 22, 0, 30, 250_000, tzinfo=UTC)
MAX_AGE = 10
EXCHANGES = ["paper", "binanceusdm"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
ACCOUNTS = {1: "paper", 2: "binanceusdm", 3: "paper"}


def amounts(low: str, high: str, grid: tuple) -> st.SearchStrategy:
    """Decimals in [low, high], often one of `grid` (values shared by positions and
    thresholds, so that the edges, equality included, come up)."""
    return st.sampled_from([Decimal(value) for value in grid]) | st.decimals(min_value=low, max_value=high, places=2)


money = amounts("-500", "500", ("-50", "-10", "0", "10", "50"))
price = amounts("0", "200", ("0", "90", "100", "110"))
# Ages around the thresholds below, to the microsecond: the time_based screen's edge.
ages = st.sampled_from([0, 59, 60, 61, 3600]).flatmap(
    lambda seconds: (st.integers(-2, 2) | st.integers(-2_000, 2_000)).map(
        lambda micros: timedelta(seconds=seconds, microseconds=micros)
    )
)


@st.composite
def positions(draw, index):
    account_id = draw(st.sampled_from(sorted(ACCOUNTS)))
    size = draw(st.decimals(min_value="0", max_value="5", places=2))
    entry = draw(price)
    return PositionView(
        id=index + 1,
        user_id="u",
        account_id=account_id,
        exchange=ACCOUNTS[account_id],
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from(["long", "short"])),
        hedged=True,
        size=size,
        entry_price=entry,
        mark_price=draw(price),
        mark_updated_at=NOW - timedelta(seconds=draw(st.sampled_from([0, 5, MAX_AGE, MAX_AGE + 1]))),
        notional=draw(amounts("0", "1000", ("0", "10", "50", "100"))),
        unrealized_pnl=draw(money),
        realized_pnl=draw(money),
        leverage=None,
        peak_pnl=draw(money),
        best_price=draw(price),
        opened_at=NOW - draw(ages),
        peak_entry_notional=draw(amounts("0", "1000", ("0", "100"))),
    )


scopes = st.none() | st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=2).map(frozenset)
exchange_scopes = st.none() | st.lists(st.sampled_from(EXCHANGES), min_size=1, max_size=1).map(frozenset)
PARAMS = {
    "max_position_size": st.just({}),
    "pnl": st.sampled_from([{}, {"direction": "loss"}, {"direction": "profit"}]),
    "max_drawdown": st.just({}),
    "trailing_stop": st.just({}),
    "time_based": st.sampled_from(
        [
            {},
            {"flat_windows": []},
            {"flat_windows": [{"start": "21:55", "end": "22:05", "tz": "UTC"}]},
            {"flat_windows": [{"start": "08:00", "end": "09:00", "tz": "Europe/Paris"}]},
        ]
    ),
    "consecutive_losses": st.just({}),
    "volatility": st.sampled_from([{}, {"window_seconds": 60}]),
}
THRESHOLDS = {
    "max_position_size": amounts("0", "1000", ("0", "10", "50", "100")),
    "pnl": amounts("0", "500", ("0", "10", "50")),
    "max_drawdown": amounts("0", "100", ("0", "10", "20")),
    "trailing_stop": amounts("0", "100", ("0", "10", "20")),
    "time_based": st.sampled_from(["0", "60", "60.000001", "59.999999", "3600", "1e12"]).map(Decimal),
    "consecutive_losses": st.integers(0, 4).map(Decimal),
    "volatility": amounts("0", "30", ("0", "10", "20")),
}


@st.composite
def breakers(draw, breaker_id):
    condition = draw(st.sampled_from(sorted(CHECKS)))
    return BreakerView(
        id=breaker_id,
        name=f"b{breaker_id}",
        description="",
        condition_type=condition,
        threshold=draw(THRESHOLDS[condition]),
        action="close_position",
        symbols=draw(scopes),
        exchanges=draw(exchange_scopes),
        additional_params=draw(PARAMS[condition]),
        cooldown_seconds=300,
    )


@st.composite
def cases(draw):
    book_positions = [draw(positions(index)) for index in range(draw(st.integers(0, 12)))]
    config_breakers = tuple(draw(breakers(breaker_id)) for breaker_id in range(1, draw(st.integers(1, 6)) + 1))
    failed = draw(st.sets(st.sampled_from(sorted(ACCOUNTS)), max_size=1))
    accounts = {
        account_id: AccountView(
            id=account_id, user_id="u", exchange=exchange, last_sync_failed=account_id in failed, has_balance=True
        )
        for account_id, exchange in ACCOUNTS.items()
    }
    pairs = [(account_id, symbol) for account_id in ACCOUNTS for symbol in SYMBOLS]
    trades = st.lists(
        st.tuples(st.integers(1, 50).map(lambda minutes: NOW - timedelta(minutes=minutes)), money), max_size=4
    ).map(lambda rows: sorted(rows, reverse=True))
    closed_trades = draw(st.dictionaries(st.sampled_from(pairs), trades))
    cutoffs = {
        (breaker.id, *pair): NOW - timedelta(minutes=draw(st.integers(1, 50)))
        for breaker in config_breakers
        for pair in closed_trades
        if draw(st.booleans())
    }
    ranges = {
        (exchange, symbol, window): (low, low + draw(price), draw(st.sampled_from([30.0, 250.0, 299.0, 300.0])))
        for exchange in EXCHANGES
        for symbol in SYMBOLS
        for window in (60, 300)
        if draw(st.booleans())
        for low in [draw(price)]
    }
    config = breakers_only_config(config_breakers, max_price_age_seconds=MAX_AGE)
    book = Book(user_id="u", positions=book_positions, accounts=accounts)
    return book, config, BreakerInputs(closed_trades=closed_trades, streak_cutoffs=cutoffs, price_ranges=ranges)


def plain_assess(book: Book, config: ConfigView, inputs: BreakerInputs):
    """Every checker on every fresh position in its breaker's scope, position by
    position; stale positions in some breaker's scope reported; every streak read judged."""
    everywhere = [b for b in config.breakers if b.symbols is None and b.exchanges is None]
    scoped = [b for b in config.breakers if b.symbols is not None or b.exchanges is not None]
    failed = {account.id for account in book.accounts.values() if account.last_sync_failed}
    hits, fresh, stale = [], set(), {}
    for position in book.positions:
        in_scope = everywhere + [b for b in scoped if b.applies(position.exchange, position.symbol)]
        is_failed = position.account_id in failed
        if is_failed or position.mark_updated_at < NOW - timedelta(seconds=MAX_AGE):
            if in_scope:
                stale[position.id] = stale_reason(position, account_failed=is_failed, now=NOW, max_age_seconds=MAX_AGE)
            continue
        fresh.add(position.id)
        for breaker in in_scope:
            met = CHECKS[breaker.condition_type][0](breaker, position, NOW, inputs)
            if met is not None:
                hits.append((breaker.id, latch_key_of(breaker, position), position.id, met[1]))
    clear = set()
    for breaker in config.breakers:
        if breaker.condition_type != "consecutive_losses":
            continue
        for (account_id, symbol), trades in inputs.closed_trades.items():
            account = book.accounts.get(account_id)
            if account is None or account_id in failed or not breaker.applies(account.exchange, symbol):
                continue
            if streak_length(trades, inputs.streak_cutoffs.get((breaker.id, account_id, symbol))) < breaker.threshold:
                clear.add((breaker.id, f"streak:{account_id}:{symbol}"))
    return hits, fresh, stale, clear


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_screened_assessment_finds_what_the_plain_loop_finds(case):
    book, config, inputs = case
    result = breakers_assess(book=book, config=config, now=NOW, inputs=inputs)
    hits, fresh, stale, clear = plain_assess(book, config, inputs)
    assert [(h.breaker.id, h.latch_key, h.position.id, h.summary) for h in result.hits] == hits
    assert result.fresh_positions == fresh
    assert [(key, reason) for key, (_, reason) in result.stale.items()] == list(stale.items())
    streak_pairs = {
        (breaker.id, f"streak:{account_id}:{symbol}")
        for breaker in config.breakers
        for account_id in [*ACCOUNTS, 9]
        for symbol in SYMBOLS
    }
    streak_pairs |= {(1, "streak:01:BTCUSDT"), (1, "streak:x:BTCUSDT"), (1, "streak:1")}
    assert {pair for pair in streak_pairs if result.cleared(pair)} == clear & streak_pairs
