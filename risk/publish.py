"""Alert publishing: the one place risk services push alerts out of the process.

Each new or changed alert is published after its transaction commits with one Redis
PUBLISH on `etrms:alerts` as `{"user_id", "alert": <payload>, "origin"}`: the fan-out path of
SPEC §11 (one SUBSCRIBE per daphne process, addressed to the user's sockets by
`realtime.ws.hub`; no channel-layer `group_send` on the tick -> alert path).

The payload is ETRMS's alert format plus `id`, `severity`, `alert_type` and `status`
(SPEC §7), so a client can acknowledge what it receives. The row is the source of
truth: a publish that fails is logged and a client catches up with `since_alert_id`.
"""

import contextlib
import json
import logging
import threading
import uuid

from django.conf import settings
from django.db import transaction

from etrms.formatting import epoch_seconds, iso_utc
from etrms.outage import REDIS_ERRORS, degraded
from etrms.redis_client import platform_redis
from risk.constants import AlertType
from risk.models import RiskAlert

logger = logging.getLogger(__name__)

REDIS_ALERTS_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "alerts"
# Names this process in what it publishes: a listener that wrote the alert itself (the
# feed's index re-reads what is open once its writes are out) skips its own.
PROCESS_ORIGIN = uuid.uuid4().hex
# Alert types whose `type` and `condition_name` are their own name.
SELF_NAMED_TYPES = (AlertType.DATA_STALE, AlertType.PRICE_ALERT, AlertType.TRADING_STATE, AlertType.KILL_SWITCH)
# Metadata keys that ETRMS's `context` carries as numbers for limit alerts.
_CONTEXT_NUMBERS = ("current_value", "threshold", "warning_value")


def _as_number(value):
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def alert_payload(alert: RiskAlert) -> dict:
    """ETRMS's alert format (SPEC §7): `type`, `condition_name`, `description`,
    `exchange`, `symbol`, `triggered_at` (epoch seconds), `context` (numbers),
    `action_result`, plus `id`, `severity`, `alert_type`, `status`."""
    meta = alert.metadata or {}
    if alert.alert_type == AlertType.CIRCUIT_BREAKER:
        kind, condition_name = AlertType.CIRCUIT_BREAKER, meta.get("breaker") or alert.alert_type
    elif alert.alert_type in SELF_NAMED_TYPES:
        kind, condition_name = alert.alert_type, alert.alert_type
    else:
        kind, condition_name = "risk_limit", alert.alert_type
    context = meta.get("context")
    if context is None:
        context = {key: _as_number(meta[key]) for key in _CONTEXT_NUMBERS if meta.get(key) is not None}
        for key in ("limit_id", "limit_type", "source", "level"):
            if meta.get(key) is not None:
                context[key] = meta[key]
    return {
        "id": str(alert.id),
        "user_id": str(alert.user_id),
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "status": alert.status,
        "type": kind,
        "condition_name": condition_name,
        "description": alert.message,
        "exchange": meta.get("exchange"),
        "symbol": meta.get("symbol"),
        "triggered_at": epoch_seconds(alert.triggered_at),
        "context": context,
        "action_result": meta.get("action_result"),
        "acknowledged_at": iso_utc(alert.acknowledged_at),
        "resolved_at": iso_utc(alert.resolved_at),
    }


def _send(user_id, payload: dict) -> None:
    try:
        platform_redis().publish(
            REDIS_ALERTS_CHANNEL, json.dumps({"user_id": str(user_id), "alert": payload, "origin": PROCESS_ORIGIN})
        )
    except REDIS_ERRORS as exc:
        degraded(logger, f"Alert {payload['id']}: not published", exc)
    except Exception:
        logger.exception("Alert %s: Redis publish failed", payload["id"])


# Told after commit of each alert raised or updated in place (the notifications app
# registers here in its ready(): risk imports no app above it).
_alert_listeners: list = []


def alert_listener_add(listener) -> None:
    if listener not in _alert_listeners:
        _alert_listeners.append(listener)


def alert_publish(alert: RiskAlert) -> None:
    """Publish `alert` as it is now, once the current transaction commits."""
    payload = alert_payload(alert)
    user_id = alert.user_id
    transaction.on_commit(lambda: _send(user_id, payload))


def alert_announce(alert: RiskAlert, *, event: str) -> None:
    """Hand `alert` as it is now (`event`: raised or updated) to the listeners once the
    transaction commits (or, inside `announcements_deferred`, when the block ends). A
    listener that fails is logged; it never fails the risk action."""
    if not _alert_listeners:
        return
    payload = alert_payload(alert)

    def after_commit():
        pending = getattr(_deferred, "pending", None)
        if pending is not None:
            pending.append((payload, event))
        else:
            _listeners_call(payload, event)

    transaction.on_commit(after_commit)


def _listeners_call(payload: dict, event: str) -> None:
    for listener in list(_alert_listeners):
        try:
            listener(payload=payload, event=event)
        except Exception:
            logger.exception("Alert %s: a listener failed on %s", payload["id"], event)


_deferred = threading.local()


@contextlib.contextmanager
def announcements_deferred():
    """Alerts announced inside the block reach the listeners (notifications: a query,
    perhaps deliveries to enqueue) when it ends: an evaluator that writes several users'
    alerts at once (the feed's index on one tick) publishes every one of them first."""
    if getattr(_deferred, "pending", None) is not None:  # nested: the outer block runs them
        yield
        return
    _deferred.pending = []
    try:
        yield
    finally:
        pending, _deferred.pending = _deferred.pending, None
        for payload, event in pending:
            _listeners_call(payload, event)
