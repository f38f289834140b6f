"""The in-memory risk index for long-lived evaluators (the market-data feed, SPEC §11).

The feed process holds the whole desk in memory: open positions indexed by (exchange,
symbol) and by user, accounts, enabled limits per user, the configuration and breakers,
desk totals, and which alerts are open and which trips latched. A tick moves the marks
of the positions in that symbol, updates the desk totals incrementally and evaluates
the users whose marks left their price band (`risk.services.index_bands`: no level of
theirs can change inside it) with the same steps as every other path:
`evaluation.compute`, the pure decision `outcome.outcome_decide`, and
`evaluation.outcome_apply` when the decision writes something (an alert to raise or
resolve, a breaker to trip, a latch to release). A tick that changes nothing costs no
query. Drawdown peaks rise in memory
at once and are persisted at most once a second (and with every other write); the
marks it moved are persisted from its memory (`held.marks_persist`), in chunks, by
the caller's clock (`risk.services.index_writes`).

It reloads limits, configuration and breakers when `risk:index:version` moves (one
Redis GET per tick batch, or none while a listener announces the version), and a
user's positions and accounts when accounts announces a change for them (sync, paper
fills).

    index = RiskIndex().load()
    index_activate(index)                   # accounts' position events go to the index
    index.apply_marks(exchange="paper", prices={"BTCUSDT": Decimal("50000")})
"""

import dataclasses
import logging
import threading
import time
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.selectors.books import accounts_load, positions_load
from accounts.services.marks import position_mark_apply
from etrms.outage import REDIS_ERRORS, OutageLog
from risk.publish import announcements_deferred
from risk.services import assess, hooks, prices
from risk.services.breaker_inputs import price_ranges_load, streak_inputs_load
from risk.services.evaluation import compute, outcome_apply
from risk.services.index_bands import QuietPrices, band_after_peak, bands_of, due_of, past_peak
from risk.services.index_desk import desk_compute, desk_levels
from risk.services.index_writes import HeldWrites, peaks_merged
from risk.services.outcome import OpenState, outcome_decide
from risk.services.request_loads import open_states_read
from risk.services.snapshots import Book, DeskTotals, config_view_get, limits_load

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
FULL_SWEEP_SECONDS = 30.0

_active_index = None
_active_lock = threading.Lock()


def index_activate(index: "RiskIndex | None") -> None:
    """Route accounts' position events of this process to `index` (None: back to the
    per-user database evaluation)."""
    global _active_index
    with _active_lock:
        _active_index = index


def active_index() -> "RiskIndex | None":
    return _active_index


class RiskIndex:
    def __init__(self):
        self.lock = threading.RLock()
        self.books: dict = {}  # {user_id: Book}
        self.by_market: dict = {}  # {(exchange, symbol): [PositionView]}
        self.limits: dict = {}  # {user_id: [LimitView]}
        self.config = None
        self.desk = DeskTotals()
        self.states: dict = {}  # {user_id: OpenState}
        self.streaks: dict = {}  # {user_id: (closed_trades, cutoffs)} for consecutive_losses
        self.held = HeldWrites(self.lock)  # marks and drawdown peaks not yet persisted
        self.bands: dict = {}  # {position_id: index_bands.Band}: no band, evaluate on its next tick
        self.quiet = QuietPrices()  # per market, where no tick can change an evaluation
        self.states_unsure: set = set()  # users whose writes were interrupted (`_states_recover`)
        self.due: dict = {}  # {user_id: when time alone may change the user's decision}
        self.swept_at = float("-inf")  # monotonic seconds of the last sweep of everyone
        self.evaluations = 0
        self.writes = 0
        self.announced_version: int | None = None  # set by a listener of hooks.INDEX_CHANNEL
        self.version_outage = OutageLog(logger, "Risk index: reading the settings version")
        self.samples_outage = OutageLog(logger, "Risk index: recording price samples")

    # --- loading --------------------------------------------------------------------------
    def load(self) -> "RiskIndex":
        with self.lock:
            self.config = config_view_get()
            self.books = {}
            accounts = accounts_load()
            for account in accounts.values():
                self._book(account.user_id).accounts[account.id] = account
            for position in positions_load(accounts=accounts):
                self._book(position.user_id).positions.append(position)
            self._limits_reload()
            self._reindex()
            self._states_load(list(self.books))
        return self

    def _book(self, user_id) -> Book:
        book = self.books.get(user_id)
        if book is None:
            book = self.books[user_id] = Book(user_id=user_id)
        return book

    def _reindex(self) -> None:
        by_market: dict = {}  # built apart: the feed's event loop reads it meanwhile
        for book in self.books.values():
            for position in book.positions:
                by_market.setdefault((position.exchange, position.symbol), []).append(position)
        self.by_market = by_market
        self.desk = desk_compute(self.books.values())
        self.quiet.stale.update(self.by_market, self.quiet)

    def _states_load(self, user_ids: list, *, streaks: bool = True) -> None:
        """What is open and latched for `user_ids`, and their streak inputs (which read
        the latched streaks). `streaks=False` (after this index wrote alerts or trips):
        read the streak inputs again only for users whose latches changed; no closed
        trade came with the write."""
        if not user_ids:
            return
        states = open_states_read(user_ids=user_ids, config=self.config, now=timezone.now())
        for user_id in user_ids:
            before = self.states.get(user_id)
            self.states[user_id] = state = states[user_id]
            if (
                streaks
                or before is None
                or user_id not in self.streaks
                or before.latched.keys() != state.latched.keys()
            ):
                self.streaks[user_id] = streak_inputs_load(
                    book=self._book(user_id), config=self.config, latched_keys=[key for _, key in state.latched]
                )

    def states_reload(self, user_ids: list) -> None:
        """Re-read what is open and latched for `user_ids` (alerts or trips changed in
        another process: a manual resolve, an officer's re-arm); their next tick
        evaluates them."""
        with self.lock:
            ids = [user_id for user_id in user_ids if user_id in self.books]
            self._states_load(ids)
            for user_id in ids:
                self._unband(user_id)

    def _unband(self, user_id, *, deciding: bool = False) -> None:
        """Forget the user's bands: their next tick evaluates them. While an evaluation
        `deciding` them runs, their markets keep their quiet prices until it ends: a
        sweep evaluating every holder made each tick of the desk go first meanwhile."""
        positions = self.books[user_id].positions
        for position in positions:
            self.bands.pop(position.id, None)
        if deciding:
            self.quiet.follow(positions)
        else:
            self.quiet.drop(positions)
        self.due.pop(user_id, None)

    def sweep(self, *, now: datetime | None = None) -> dict:
        """What time alone changes (stale marks of a silent venue, time-based breakers,
        cooldowns running out): evaluate the users `sweep_due` names."""
        now = now or timezone.now()
        with self.lock:
            return self.evaluate(set(self.sweep_due(now=now)), now=now)

    def sweep_turn(self, user_ids: list) -> dict:
        """One turn of a sweep the feed spreads over its thread: `user_ids`, now."""
        with self.lock:
            return self.evaluate(set(user_ids), now=timezone.now())

    def sweep_due(self, *, now: datetime) -> list:
        """The users a sweep evaluates: whose due time has come or whose positions have
        no band yet, and every user with a book once per FULL_SWEEP_SECONDS (a safety
        net, not a source of decisions). The feed evaluates them a few at a time, so a
        crossing tick never waits for the whole desk."""
        with self.lock:
            self.refresh_if_changed(verify=True)
            everyone = time.monotonic() - self.swept_at >= FULL_SWEEP_SECONDS
            if everyone:
                self.swept_at = time.monotonic()
            return [
                user_id
                for user_id, book in self.books.items()
                if (book.positions or book.accounts)
                and (
                    everyone
                    or (user_id in self.due and self.due[user_id] <= now)
                    or any(position.id not in self.bands for position in book.positions)
                )
            ]

    def _limits_reload(self) -> None:
        """Enabled limits from the database, with the drawdown peaks this index holds and
        has not persisted yet (a peak never goes back)."""
        self.limits = {}
        for limit in limits_load():
            dirty = self.held.peaks.get(limit.id)
            if dirty:
                limit = dataclasses.replace(limit, equity_peaks=peaks_merged(limit.equity_peaks, dirty))
            self.limits.setdefault(limit.user_id, []).append(limit)

    def refresh_if_changed(self, *, verify: bool = False) -> bool:
        """Reload configuration, breakers and limits when another process changed them.
        The settings version is `announced_version` while a listener keeps it (the feed
        hears every bump on `hooks.INDEX_CHANNEL`: no round trip per tick batch); read
        from Redis when nobody announces it, and when `verify` (the periodic sweep)."""
        version = self.announced_version
        if version is None or verify:
            try:
                version = hooks.index_version()
                self.version_outage.ok()
            except REDIS_ERRORS as error:
                self.version_outage.failed(error)  # the loaded settings stay
                return False
            if self.announced_version is not None:
                self.announced_version = version  # an announcement missed is caught up here
        if self.config is not None and version == self.config.version:
            return False
        with self.lock:
            self.config = config_view_get()
            self._limits_reload()
            # Latches released and alerts resolved elsewhere (dry run switched off, an
            # officer's re-arm) move the version too: what is open is read again.
            self._states_load(list(self.books))
            self.bands, self.due = {}, {}  # new levels: every user's next tick evaluates it
            self.quiet.reset(self.by_market)
        return True

    # --- events ---------------------------------------------------------------------------
    def positions_changed(self, *, user_ids: set, exchange: str, symbols: set) -> None:
        """accounts announced new position or account rows for these users: reload them
        (3 queries for all of them) and evaluate."""
        with self.lock:
            self.refresh_if_changed()
            ids = list(user_ids)
            for user_id in ids:
                if user_id in self.books:
                    self._unband(user_id)
                    for position in self.books[user_id].positions:  # the rows just read win
                        self.held.marks.pop(position.id, None)
                self.books[user_id] = Book(user_id=user_id)
            accounts = accounts_load(user_id__in=ids)
            for account in accounts.values():
                self._book(account.user_id).accounts[account.id] = account
            for position in positions_load(accounts=accounts):
                self._book(position.user_id).positions.append(position)
            self._reindex()
            self._states_load(ids)
            self.evaluate(set(ids))

    def apply_marks(
        self, *, exchange: str, prices_by_symbol: dict, at: datetime | None = None, moments: dict | None = None
    ) -> set:
        """Ticks of the feed: move the marks of every open position on `exchange` in
        these symbols, then evaluate the users a mark moved past a level of (out of its
        band), whose due time came, who hold a market a volatility breaker could trip
        on, or everyone when a desk cap changed level. Returns the users evaluated.
        `moments` ({symbol: when}) stamps each market's marks with its own tick's time
        (else `at`): a mark is never moved by a tick older than the one it carries, and
        venues' clocks differ between symbols. `at` is the evaluation's time."""
        at = at or timezone.now()
        moments = moments or {}
        with self.lock:
            self.refresh_if_changed()
            desk_before = desk_levels(self.desk, self.config)
            users, moved = set(), set()
            samples = []
            for symbol, price in prices_by_symbol.items():
                price = Decimal(price)
                level = float(price)
                moment = moments.get(symbol, at)
                samples.append((exchange, symbol, price, moment.timestamp()))
                for position in self.by_market.get((exchange, symbol), ()):
                    old_signed, old_abs, old_upnl = position.signed_notional, position.notional, position.unrealized_pnl
                    if not position_mark_apply(position, price=price, at=moment):
                        continue
                    self.desk.symbol_net[symbol] = (
                        self.desk.symbol_net.get(symbol, ZERO) - old_signed + position.signed_notional
                    )
                    delta_abs = position.notional - old_abs
                    self.desk.exchange_exposure[exchange] = self.desk.exchange_exposure.get(exchange, ZERO) + delta_abs
                    self.desk.total_exposure += delta_abs
                    account = self.books[position.user_id].accounts.get(position.account_id)
                    if account is not None and account.has_balance:
                        delta_upnl = position.unrealized_pnl - old_upnl
                        self.desk.equity += delta_upnl
                        self.desk.daily_pnl += delta_upnl
                    moved.add(position.user_id)
                    self.held.marks[position.id] = position
                    band = self.bands.get(position.id)
                    if band is None or not band.contains(level):
                        users.add(position.user_id)
                    elif past_peak(band, position, level):
                        self.bands[position.id] = band_after_peak(band, position, breakers=self.config.breakers)
                        self.quiet.follow((position,))  # refreshed when this batch's evaluation ends
            users |= {user_id for user_id in moved if user_id in self.due and self.due[user_id] <= at}
            if desk_levels(self.desk, self.config) != desk_before:
                users |= {user_id for user_id, book in self.books.items() if book.positions or book.accounts}
            self.evaluate(users, now=at)  # a crossing's alert goes out before the samples' round trip
            try:
                prices.price_samples_record(samples, floors=self.config.volatility_floors())
                self.samples_outage.ok()
            except REDIS_ERRORS as error:
                self.samples_outage.failed(error)
            volatile = self._volatile_holders(exchange, prices_by_symbol, at)  # judged with this batch's samples
            self.evaluate(volatile, now=at)  # also refreshes the quiet prices of markets whose bands changed
            return users | volatile

    def _volatile_holders(self, exchange: str, symbols, at: datetime) -> set:
        """Holders of the ticked markets whose price range could trip a volatility
        breaker now (Redis keeps the candidates: one call, nothing when none are near)."""
        ticked = [position for symbol in symbols for position in self.by_market.get((exchange, symbol), ())]
        ranges = price_ranges_load(book=Book(user_id=None, positions=ticked), config=self.config, now=at)
        volatile = {market[:2] for market in ranges}
        return {position.user_id for position in ticked if (exchange, position.symbol) in volatile}

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, user_ids: set, *, now: datetime | None = None) -> dict:
        """Evaluate `user_ids` in memory with the same steps as `evaluation_run`; write
        only for users whose decision writes something. Returns {user_id:
        EvaluationResult} for those written."""
        now = now or timezone.now()
        self._states_recover()
        written, decided, applying = {}, [], []
        config = self.config
        books = [self.books[user_id] for user_id in user_ids if user_id in self.books]
        # The volatility ranges of every market these users hold, in one Redis call.
        everyone = Book(user_id=None, positions=[position for book in books for position in book.positions])
        price_ranges = price_ranges_load(book=everyone, config=config, now=now)
        try:
            with announcements_deferred():  # listeners after every user's alerts are out
                for book in books:
                    user_id = book.user_id
                    self._unband(user_id, deciding=True)  # until this evaluation has decided
                    self.evaluations += 1
                    state = self.states.get(user_id) or OpenState()
                    closed_trades, cutoffs = self.streaks.get(user_id, ({}, {}))
                    inputs = assess.BreakerInputs(
                        closed_trades=closed_trades, streak_cutoffs=cutoffs, price_ranges=price_ranges
                    )
                    limits = self.limits.get(user_id, [])
                    computed = compute(book=book, limits=limits, config=config, desk=self.desk, now=now, inputs=inputs)
                    decision = outcome_decide(computed=computed, state=state, config=config, now=now)
                    if decision.peaks:
                        self._peaks_adopt(user_id, decision.peaks)
                    if decision.writes_state:
                        self.writes += 1
                        applying.append(user_id)
                        written[user_id] = outcome_apply(
                            computed, decision, state, config=config, now=now, persist_peaks=False, report_latched=False
                        )
                    decided.append((computed, decision, state))
            # What is open is read again once for every user written, after all of them are
            # written and published: one user's reload never delays the next one's alert.
            self._states_load(list(written), streaks=False)
        except Exception:
            # Each alert commits on its own: some of these users' writes may be in the
            # database while what is open in memory is from before them.
            self.states_unsure.update(applying)
            raise
        for computed, decision, state in decided:
            user_id = computed.book.user_id
            self.bands.update(
                bands_of(
                    computed, limits=self.limits.get(user_id, []), config=config, state=self.states.get(user_id, state)
                )
            )
            # New bands: the quiet prices follow when this evaluation ends (until then the
            # earlier ones stand: marking them empty made every tick go first).
            self.quiet.follow(computed.book.positions)
            due = due_of(computed, decision, state=state, config=config, now=now)
            if due is not None:
                self.due[user_id] = due
        if self.held.peaks_due(written=bool(written)):
            self.held.peaks_flush()
        self.quiet.refresh(self.by_market, self.bands)
        return written

    def _states_recover(self) -> None:
        """Read again what is open for the users whose writes an exception interrupted
        (the echo of their alerts on `etrms:alerts` did it before; the feed skips the
        echo of its own now), before any of them is evaluated again."""
        if self.states_unsure:
            self._states_load([user_id for user_id in self.states_unsure if user_id in self.books])
            self.states_unsure.clear()

    def _peaks_adopt(self, user_id, updates: dict) -> None:
        """Keep every rise of a drawdown peak in memory at once (B6: the value is never
        throttled, only its persisting)."""
        limits = []
        for limit in self.limits.get(user_id, []):
            rises = updates.get(limit.id)
            if rises:
                self.held.peaks_rise(limit.id, rises)
                limit = dataclasses.replace(limit, equity_peaks=peaks_merged(limit.equity_peaks, rises))
            limits.append(limit)
        self.limits[user_id] = limits
