"""What the ETRMS streams carry (SPEC §7), built in batches for every scope a process
serves: a handful of queries per round whatever the number of users.

A scope is a user id (str) or None (the desk, an officer's view with `user_id` on each
item, as REST shows it). The positions and accounts payloads are the REST builders'
(`accounts.selectors`); risk metrics come from the risk engine's own computation
(`risk.services.assess.metrics_compute`): `total_pnl` is the day's PnL, `max_drawdown`
the current drawdown %.
"""

from decimal import Decimal

from django.db.models import Q

from accounts import selectors
from accounts.selectors.books import accounts_load, positions_load
from etrms.formatting import json_numbers
from realtime.ws.protocol import ACCOUNTS, ALERTS, POSITIONS, RISK_METRICS, StreamView  # noqa: F401 (re-exported)
from risk.models import RiskAlert
from risk.publish import alert_payload
from risk.services.assess import metrics_compute
from risk.services.snapshots import Book
from risk.services.trading_state import trading_states_effective

ZERO = Decimal(0)
USER_STREAMS = (POSITIONS, ACCOUNTS, RISK_METRICS)
REPLAY_MAX = 1000


def _user_filter(scopes: set) -> dict:
    return {} if None in scopes else {"user_id__in": [scope for scope in scopes if scope is not None]}


def positions_payloads(views: set) -> dict:
    """{view: ETRMS positions payload} (two queries): the scope's positions on the
    view's symbols (all of them when it names none)."""
    scopes = {view.scope for view in views}
    users = None if None in scopes else [scope for scope in scopes if scope is not None]
    positions = list(selectors.position_list(user_ids=users))
    venues = selectors.account_venues(user_ids=users)
    out = {}
    for view in views:
        scope = view.scope
        if scope is None:
            mine, exchanges = positions, sorted(set().union(*venues.values()))
        else:
            mine = [position for position in positions if str(position.account.user_id) == scope]
            exchanges = sorted(venues.get(scope, ()))
        mine = [position for position in mine if view.covers(position.symbol)]
        out[view] = selectors.positions_payload(positions=mine, exchanges=exchanges, include_user=scope is None)
    return out


def accounts_payloads(scopes: set) -> dict:
    """{scope: ETRMS accounts payload} (one query)."""
    users = None if None in scopes else [scope for scope in scopes if scope is not None]
    accounts = list(selectors.account_list() if users is None else selectors.account_list().filter(user_id__in=users))
    out = {}
    for scope in scopes:
        mine = accounts if scope is None else [account for account in accounts if str(account.user_id) == scope]
        out[scope] = selectors.accounts_payload(accounts=mine, include_user=scope is None)
    return out


def _metrics(book: Book) -> dict:
    metrics = metrics_compute(book)
    return {
        "total_exposure": metrics.total_exposure,
        "max_drawdown": metrics.drawdown,
        "total_pnl": metrics.daily_pnl,
        "equity": metrics.equity,
        "leverage": metrics.leverage,
        "margin_ratio": metrics.margin_ratio,
    }


def _risk_metrics(books: list[Book]) -> dict:
    """Totals over `books` (exposure and PnL summed, drawdown the worst), per exchange
    and per symbol."""
    totals = [_metrics(book) for book in books]
    by_exchange: dict[str, Book] = {}
    for book in books:
        for account in book.accounts.values():
            by_exchange.setdefault(account.exchange, Book(user_id=None)).accounts[account.id] = account
        for position in book.positions:
            by_exchange.setdefault(position.exchange, Book(user_id=None)).positions.append(position)
    symbols: dict[str, dict] = {}
    for book in books:
        for position in book.positions:
            entry = symbols.setdefault(
                position.symbol, {"exposure": ZERO, "net_exposure": ZERO, "unrealized_pnl": ZERO, "positions": 0}
            )
            entry["exposure"] += abs(position.notional)
            entry["net_exposure"] += position.signed_notional
            entry["unrealized_pnl"] += position.unrealized_pnl
            entry["positions"] += 1
    exchange_metrics = {}
    for exchange, book in sorted(by_exchange.items()):
        numbers = _metrics(book)
        exchange_metrics[exchange] = {
            "exposure": numbers["total_exposure"],
            "drawdown": numbers["max_drawdown"],
            "pnl": numbers["total_pnl"],
            "equity": numbers["equity"],
        }
    leverages = [item["leverage"] for item in totals]
    equity = sum((item["equity"] for item in totals), ZERO)
    exposure = sum((item["total_exposure"] for item in totals), ZERO)
    return json_numbers(
        {
            "risk_metrics": {
                "total_exposure": exposure,
                "max_drawdown": max((item["max_drawdown"] for item in totals), default=ZERO),
                "total_pnl": sum((item["total_pnl"] for item in totals), ZERO),
                "equity": equity,
                "leverage": None if None in leverages else (exposure / equity if equity > 0 else ZERO),
                "exchange_metrics": exchange_metrics,
                "symbol_metrics": dict(sorted(symbols.items())),
            }
        }
    )


def risk_metrics_payloads(scopes: set) -> dict:
    """{scope: ETRMS risk-metrics payload} (four queries); the desk adds `by_user`.
    `trading_state` is the scope's effective state (issue 15): a user's is the strictest
    of the desk and their own level, the desk scope's the desk level."""
    accounts = accounts_load(**_user_filter(scopes))
    positions = positions_load(accounts=accounts)
    books: dict[str, Book] = {}
    for account in accounts.values():
        books.setdefault(str(account.user_id), Book(user_id=account.user_id)).accounts[account.id] = account
    for position in positions:
        books[str(position.user_id)].positions.append(position)
    user_ids = set(books) | {scope for scope in scopes if scope is not None}
    desk_state, user_states = trading_states_effective(user_ids=sorted(user_ids))
    out = {}
    for scope in scopes:
        if scope is None:
            payload = _risk_metrics(list(books.values()))
            payload["risk_metrics"]["trading_state"] = desk_state.state
            by_user = {}
            for user_id, book in sorted(books.items()):
                by_user[user_id] = _risk_metrics([book])["risk_metrics"]
                by_user[user_id]["trading_state"] = user_states[user_id].state
            payload["risk_metrics"]["by_user"] = by_user
        else:
            payload = _risk_metrics([books[scope]] if scope in books else [])
            payload["risk_metrics"]["trading_state"] = user_states[scope].state
        out[scope] = payload
    return out


SCOPE_BUILDERS = {ACCOUNTS: accounts_payloads, RISK_METRICS: risk_metrics_payloads}  # no symbols


def stream_payloads(wanted: dict) -> dict:
    """{(channel, view): payload} for `wanted` = {channel: views}."""
    out = {}
    for channel, views in wanted.items():
        if channel == POSITIONS:
            by_view = positions_payloads(views)
        else:
            by_scope = SCOPE_BUILDERS[channel]({view.scope for view in views})
            by_view = {view: by_scope[view.scope] for view in views}
        out.update({(channel, view): payload for view, payload in by_view.items()})
    return out


def alerts_since(*, view: StreamView, since_alert_id) -> list[dict] | None:
    """Alerts of `view` written after `since_alert_id` (by `triggered_at`, then id),
    oldest first, at most REPLAY_MAX; None if that alert is unknown or not in the
    view's scope."""
    scope = view.scope
    alerts = RiskAlert.objects.all() if scope is None else RiskAlert.objects.filter(user_id=scope)
    anchor = alerts.filter(pk=since_alert_id).values_list("triggered_at", "id").first()
    if anchor is None:
        return None
    at, anchor_id = anchor
    later = alerts.filter(triggered_at__gt=at) | alerts.filter(triggered_at=at, id__gt=anchor_id)
    if view.symbols:  # as `StreamView.covers`: its symbols, or about no symbol
        later = later.filter(
            Q(metadata__symbol__in=sorted(view.symbols))
            | Q(metadata__isnull=True)
            | Q(metadata__symbol__isnull=True)
            | Q(metadata__symbol=None)
        )
    return [alert_payload(alert) for alert in later.order_by("triggered_at", "id")[:REPLAY_MAX]]
