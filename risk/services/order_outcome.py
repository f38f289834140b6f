"""What a protective order did, recorded the same way by breaker trips, ladder steps and
kill-switch actions: a rejection raises (the job machinery retries the action), the
filled quantity adds up over the attempts, and an order the venue left working (nothing
or part filled) is flagged, so it is cancelled before the remainder is sent again and
the two can never both fill."""

from decimal import Decimal

from accounts.exchanges import NOT_FILLED, PARTIALLY_FILLED, REJECTED, OrderResult
from etrms.formatting import decimal_plain


def order_outcome_record(*, progress: dict, order: OrderResult) -> dict:
    """Raise RuntimeError if the exchange rejected `order`; otherwise add its fill to
    `progress["filled"]`, set `progress["working"]`, and return the order as the action's
    details store it (decimals as plain strings)."""
    if order.status == REJECTED:
        raise RuntimeError(
            f"the exchange rejected order {order.id} ({order.status}, filled {decimal_plain(order.filled)})"
        )
    progress["filled"] = decimal_plain(Decimal(progress.get("filled") or 0) + order.filled)
    progress["working"] = order.status in (NOT_FILLED, PARTIALLY_FILLED)
    return {
        "order_id": order.id,
        "client_order_id": order.client_order_id,
        "side": order.side,
        "amount": decimal_plain(order.amount),
        "filled": decimal_plain(order.filled),
        "average_price": decimal_plain(order.average_price) if order.average_price is not None else None,
        "status": order.status,
    }
