"""Writes on price alerts: create (capped per user), cancel, and firing once.

Every change to the set of active alerts bumps the Redis counter
`realtime:price_alerts:version` after commit (and publishes it on
`etrms:price_alerts`), so each process's index (`price_alert_index`) reloads.
"""

import logging
from datetime import datetime
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.exchanges import exchange_open, normalize_symbol
from etrms.errors import Conflict
from etrms.formatting import decimal_str
from etrms.redis_client import platform_redis
from realtime.models import PriceAlert, PriceAlertCondition, PriceAlertStatus
from realtime.services.market_data import exchange_resolve
from risk.constants import AlertSeverity, AlertType
from risk.services.alerts import AlertSpec, alert_raise

logger = logging.getLogger(__name__)

VERSION_KEY = "realtime:price_alerts:version"
CHANNEL = "etrms:price_alerts"


def price_alerts_version() -> int:
    return int(platform_redis().get(VERSION_KEY) or 0)


def _bump(reason: str) -> None:
    try:
        client = platform_redis()
        version = client.incr(VERSION_KEY)
        client.publish(CHANNEL, f"{version}:{reason}")
    except Exception:  # the row is the truth; indexes also reload on their next check
        logger.exception("Could not bump the price alert version (%s)", reason)


def _bump_on_commit(reason: str) -> None:
    transaction.on_commit(lambda: _bump(reason))


async def _listed_symbol(exchange_id: str, symbol: str) -> str:
    async with exchange_open(exchange_id) as exchange:
        return await exchange.check_symbol(symbol)  # from the loaded markets: 404 if unlisted


def max_active() -> int:
    return int(settings.PRICE_ALERT_MAX_ACTIVE)


def price_alert_create(
    *, user_id, symbol: str, condition: str, target_price: Decimal, exchange: str | None = None
) -> PriceAlert:
    """A new active alert. An exchange or symbol the venue does not list is a 404; a
    user already holding `PRICE_ALERT_MAX_ACTIVE` active alerts gets a 409."""
    if condition not in PriceAlertCondition.values:
        raise ValueError(f"unknown condition {condition!r}")
    exchange = exchange_resolve(exchange)
    symbol = async_to_sync(_listed_symbol)(exchange, normalize_symbol(symbol))
    with transaction.atomic():
        # One creator at a time per user, so two requests cannot pass the cap together.
        get_user_model().objects.select_for_update().filter(pk=user_id).exists()
        active = PriceAlert.objects.filter(user_id=user_id, status=PriceAlertStatus.ACTIVE).count()
        if active >= max_active():
            raise Conflict(
                f"You already have {active} active price alerts, the most allowed ({max_active()}); "
                "cancel one before creating another."
            )
        alert = PriceAlert.objects.create(
            user_id=user_id, symbol=symbol, exchange=exchange, condition=condition, target_price=target_price
        )
        _bump_on_commit("created")
    return alert


def price_alert_cancel(*, alert: PriceAlert) -> PriceAlert:
    """active -> cancelled. A triggered or cancelled alert is left as it is."""
    now = timezone.now()
    with transaction.atomic():
        updated = PriceAlert.objects.filter(pk=alert.pk, status=PriceAlertStatus.ACTIVE).update(
            status=PriceAlertStatus.CANCELLED, cancelled_at=now
        )
        if updated:
            _bump_on_commit("cancelled")
    alert.refresh_from_db()
    return alert


def price_alert_fire(*, alert_id, user_id, symbol: str, exchange: str, condition: str, target, price, at: datetime):
    """Mark the alert triggered and raise its `price_alert` RiskAlert, once: the UPDATE
    only matches an active row, so of several processes crossing it together exactly
    one fires it. Returns the RiskAlert, or None when someone else fired (or cancelled) it."""
    with transaction.atomic():
        updated = PriceAlert.objects.filter(pk=alert_id, status=PriceAlertStatus.ACTIVE).update(
            status=PriceAlertStatus.TRIGGERED, triggered_at=at, triggered_price=price
        )
        if not updated:
            return None
        relation = ">=" if condition == PriceAlertCondition.ABOVE else "<="
        spec = AlertSpec(
            key=f"price_alert:{alert_id}",
            alert_type=AlertType.PRICE_ALERT,
            severity=AlertSeverity.LOW,
            message=(
                f"{symbol} on {exchange} at {decimal_str(price)} {relation} "
                f"your target {decimal_str(target)} ({condition})."
            ),
            metadata={
                "price_alert_id": str(alert_id),
                "symbol": symbol,
                "exchange": exchange,
                "condition": condition,
                "target_price": decimal_str(target),
                "current_value": decimal_str(price),
                "threshold": decimal_str(target),
            },
        )
        risk_alert = alert_raise(user_id=user_id, spec=spec, now=at)
        _bump_on_commit("triggered")
    return risk_alert
