"""What circuit breakers read beyond the book, loaded only for the breakers that need
it: closed-trade streaks (consecutive_losses) from the database, price ranges
(volatility) from the samples in Redis (risk.services.prices)."""

import logging
import threading
from datetime import datetime

from accounts.selectors.books import closed_trades_recent
from etrms.outage import REDIS_ERRORS, degraded
from risk.constants import DEFAULT_VOLATILITY_WINDOW_SECONDS, ConditionType
from risk.models import BreakerTrip
from risk.services import assess, prices
from risk.services.snapshots import Book, ConfigView

logger = logging.getLogger(__name__)


def streak_inputs_load(*, book: Book, config: ConfigView, latched_keys=()) -> tuple[dict, dict]:
    """(closed trades, officer re-arm cutoffs) for consecutive_losses breakers: the last
    `threshold` closed positions per (account, symbol) the user holds open or has a
    latched streak on (one windowed query), and when an officer last re-armed each
    streak. Every such pair is in the result, with no trades when it has none."""
    streak_breakers = [b for b in config.breakers if b.condition_type == ConditionType.CONSECUTIVE_LOSSES]
    if not streak_breakers:
        return {}, {}
    pairs = streak_pairs(book, latched_keys)
    if not pairs:
        return {}, {}
    depth = int(max(breaker.threshold for breaker in streak_breakers))
    closed_trades = closed_trades_recent(pairs=pairs, depth=depth)
    cutoffs: dict = {}
    for breaker_id, latch_key, released_at in BreakerTrip.objects.filter(
        breaker_id__in=[b.id for b in streak_breakers], user_id=book.user_id, release_reason="rearmed"
    ).values_list("breaker_id", "latch_key", "released_at"):
        streak_cutoff_add(cutoffs, breaker_id, latch_key, released_at)
    return closed_trades, cutoffs


def streak_pairs(book: Book, latched_keys) -> set:
    """{(account_id, symbol)} whose streaks the breakers read: the user's open positions
    and the streaks latched now."""
    pairs = {(position.account_id, position.symbol) for position in book.positions}
    for key in latched_keys:
        kind, _, rest = key.partition(":")
        account_id, _, symbol = rest.partition(":")
        if kind == "streak" and account_id.isdigit():
            pairs.add((int(account_id), symbol))
    return pairs


def streak_cutoff_add(cutoffs: dict, breaker_id, latch_key: str, released_at) -> None:
    """An officer's re-arm of a streak latch: its streak counts closes after the last one."""
    _, account_id, symbol = latch_key.split(":", 2)
    key = (breaker_id, int(account_id), symbol)
    cutoffs[key] = max(cutoffs.get(key, released_at), released_at)


def price_ranges_load(*, book: Book, config: ConfigView, now: datetime) -> dict:
    """Price ranges of the markets volatility breakers watch on the user's positions."""
    by_window = watched_markets(book=book, config=config)
    if not by_window:
        return {}
    try:
        return prices.market_ranges_get(by_window, floors=config.volatility_floors(), now=now.timestamp())
    except REDIS_ERRORS as error:  # volatility breakers cannot tell: they do not trip
        degraded(logger, "Volatility ranges unavailable", error)
        return {}


def watched_markets(*, book: Book, config: ConfigView) -> dict:
    """{window: {(exchange, symbol)}}: the markets of the book each volatility window watches."""
    breakers = [b for b in config.breakers if b.condition_type == ConditionType.VOLATILITY]
    if not breakers or not book.positions:
        return {}
    markets = {(position.exchange, position.symbol) for position in book.positions}
    by_window: dict = {}  # {window: {(exchange, symbol)}}
    for breaker in breakers:
        window = int(breaker.additional_params.get("window_seconds", DEFAULT_VOLATILITY_WINDOW_SECONDS))
        if breaker.symbols is None and breaker.exchanges is None:
            watched = markets
        else:
            watched = {(exchange, symbol) for exchange, symbol in markets if breaker.applies(exchange, symbol)}
        by_window[window] = by_window[window] | watched if window in by_window else watched
    return by_window


_recorded_marks: dict = {}
_recorded_lock = threading.Lock()


def marks_record(book: Book, *, floors: dict) -> None:
    """Feed the volatility samples with marks newer than this process recorded (one pass
    over the book; one Redis pipeline when something is new)."""
    samples = {}
    with _recorded_lock:
        for position in book.positions:
            key = (position.exchange, position.symbol)
            at = position.mark_updated_at
            last = _recorded_marks.get(key)
            if last is None or at > last:
                _recorded_marks[key] = at
                samples[key] = (position.exchange, position.symbol, position.mark_price, at.timestamp())
    if samples:
        try:
            prices.price_samples_record(list(samples.values()), floors=floors)
        except REDIS_ERRORS as error:
            degraded(logger, "Price samples not recorded", error)


def recorded_marks_clear() -> None:
    """Forget which marks this process recorded (tests start from a clean Redis)."""
    with _recorded_lock:
        _recorded_marks.clear()


def breaker_inputs_load(
    *, book: Book, config: ConfigView, now: datetime, latched_keys=(), streaks: assess.BreakerInputs | None = None
) -> assess.BreakerInputs:
    """Closed-trade streaks and price ranges, only for breakers that need them; the
    book's marks are recorded as volatility samples first. `streaks`: the streaks and
    re-arm cutoffs when the caller loaded them already (`request_loads`)."""
    floors = config.volatility_floors()
    if floors:
        marks_record(book, floors=floors)
    if streaks is not None:
        closed_trades, cutoffs = streaks.closed_trades, streaks.streak_cutoffs
    else:
        closed_trades, cutoffs = streak_inputs_load(book=book, config=config, latched_keys=latched_keys)
    return assess.BreakerInputs(
        closed_trades=closed_trades,
        streak_cutoffs=cutoffs,
        price_ranges=price_ranges_load(book=book, config=config, now=now),
    )
