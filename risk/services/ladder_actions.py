"""What a latched ladder step does (issue 15), run by risk.services.trip_actions'
`trip_action_run` like a breaker's action (lease, dry run, outcome, escalation, retries
on the critical queue). The step's scope is the limit's: the positions of its symbol
(position_size) or every open position of the user.

- `alert`: nothing to send; the step's alert was raised when it latched;
- `set_reducing` / `halt_trading`: the owner's user-level trading state, only stricter;
- `cancel_orders`: the open orders of each account and symbol held in scope;
- `flatten`: a reduce-only market close per position, client order id
  `<trip's id>[-<attempt>]-<position id>`; success means every close filled.
"""

from accounts.selectors import position_list
from etrms.formatting import decimal_plain
from risk.constants import ActionStatus, LadderAction
from risk.models import LadderTrip
from risk.services.trip_actions import STATE_ACTIONS as STATES
from risk.services.trip_actions import order_send, orders_outcome, state_action_run


def _targets(trip: LadderTrip) -> list:
    """The open positions in the step's scope, oldest first."""
    return sorted(position_list(user_id=trip.user_id, symbol=trip.symbol or None), key=lambda position: position.id)


def _scope(trip: LadderTrip) -> str:
    return f"{trip.symbol} positions" if trip.symbol else "positions"


def _order_id(trip: LadderTrip, seq: int, position) -> str:
    """The same for every retry of an order whose fate is unknown; a new attempt after
    the venue finished one short adds `-<seq>`."""
    return f"{trip.client_order_id}-{position.id}" if seq == 0 else f"{trip.client_order_id}-{seq}-{position.id}"


def describe(trip: LadderTrip, params: dict) -> tuple[str, dict]:
    """(what the step would do, details) without sending anything (dry run)."""
    if trip.action == LadderAction.ALERT:
        return "only alert (this step sends nothing)", {"would": trip.action}
    if trip.action in STATES:
        return f"set the owner's trading state to {STATES[trip.action]}", {"would": trip.action}
    positions = _targets(trip)
    if trip.action == LadderAction.CANCEL_ORDERS:
        markets = sorted({(p.account.exchange, p.symbol) for p in positions})
        where = ", ".join(f"{symbol} on {exchange}" for exchange, symbol in markets) or "no market (nothing held)"
        return f"cancel the open orders of {where}", {"would": trip.action}
    closes = [
        f"the {p.side} {decimal_plain(p.size)} {p.symbol} position on {p.account.exchange} "
        f"with a reduce-only market {'sell' if p.side == 'long' else 'buy'} of {decimal_plain(p.size)}"
        for p in positions
    ]
    words = "close " + "; ".join(closes) if closes else f"close no position (no open {_scope(trip)})"
    return words, {"would": trip.action, "positions": [p.id for p in positions]}


def execute(trip: LadderTrip, params: dict, seq: int) -> tuple[str, str, dict]:
    """Send the step's action. Returns (status, result words, details); raises the
    exchange layer's errors."""
    from accounts.services.trading import orders_cancel_all

    if trip.action == LadderAction.ALERT:
        return ActionStatus.SUCCEEDED, "Alert raised; this step sends nothing", {}
    if trip.action in STATES:
        scope = f" on {trip.symbol}" if trip.symbol else ""
        return state_action_run(
            user_id=trip.user_id,
            state=STATES[trip.action],
            reason=f"Ladder step {trip.at_pct.normalize():f}% of the {trip.limit_type} limit{scope} crossed",
            source=f"ladder:{trip.limit_id}",
        )
    positions = _targets(trip)
    if trip.action == LadderAction.CANCEL_ORDERS:
        markets = {(p.account_id, p.symbol): p.account for p in positions}
        cancelled = {}
        for (_, symbol), account in sorted(markets.items()):
            result = orders_cancel_all(account=account, symbol=symbol)
            cancelled[f"{account.exchange}:{symbol}"] = result.cancelled
        if not cancelled:
            return ActionStatus.SUCCEEDED, f"No order to cancel: no open {_scope(trip)}", {}
        words = "; ".join(
            f"{'all' if count is None else count} on {where}" for where, count in sorted(cancelled.items())
        )
        return ActionStatus.SUCCEEDED, f"Cancelled open orders: {words}", {"cancelled": cancelled}
    if not positions:
        return ActionStatus.SUCCEEDED, f"No order needed: no open {_scope(trip)}", {}
    legs = dict(trip.action_details.get("legs") or {})
    # An order the venue left working is cancelled before the remainder is sent again.
    working = {(p.account_id, p.symbol): p.account for p in positions if (legs.get(str(p.id)) or {}).get("working")}
    for (_, symbol), account in sorted(working.items()):
        orders_cancel_all(account=account, symbol=symbol)
    orders = []
    for position in positions:
        leg = dict(legs.get(str(position.id)) or {})
        orders.append(
            order_send(position, close=True, params={}, client_order_id=_order_id(trip, seq, position), leg=leg)
        )
        legs[str(position.id)] = leg
    status, words = orders_outcome(orders, verb="Positions closed")
    return status, words, {"orders": orders, "legs": legs}
