"""Sending one delivery: a signed webhook POST or an e-mail, one attempt per job run.

Webhooks carry `X-ETRMS-Timestamp` (unix seconds of this attempt) and
`X-ETRMS-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the
endpoint's secret>`, and `X-ETRMS-Delivery` (the delivery id, the same on every retry,
so a receiver can drop duplicates). A 2xx answer is delivered; anything else, a
redirect included (never followed), or no answer is a failure: the job machinery
retries it with backoff and dead-letters it after the last attempt. An address the
SSRF guard refuses is final (`refused`): trying again cannot make it public.
"""

import hashlib
import hmac
import http.client
import json
import socket
import time

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from accounts.services.credentials import fernet
from notifications.constants import DeliveryEvent, DeliveryStatus, EndpointKind
from notifications.models import Delivery
from notifications.services.addresses import AddressRefused, Target, target_of, webhook_address

FINAL = (DeliveryStatus.DELIVERED, DeliveryStatus.REFUSED, DeliveryStatus.SKIPPED)
USER_AGENT = "ETRMS-Notifications/1"


class DeliveryFailed(RuntimeError):
    """This attempt failed; the job retries it (or dead-letters it after the last)."""


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _connection(target: Target, address: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to `target` that dials `address` (the one the guard checked) while
    keeping the host name for the Host header and, over TLS, for SNI and the
    certificate check."""
    cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    connection = cls(target.host, target.port, timeout=timeout)

    def dial(host_port, timeout=None, source_address=None):
        return socket.create_connection((address, host_port[1]), timeout, source_address)

    connection._create_connection = dial  # http.client's own seam for opening the socket
    return connection


def _webhook_send(delivery: Delivery, secret: str) -> int:
    target = target_of(delivery.target)
    address = webhook_address(target)
    body = body_bytes(delivery.payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-ETRMS-Delivery": str(delivery.id),
        "X-ETRMS-Timestamp": timestamp,
        "X-ETRMS-Signature": signature(secret=secret, timestamp=timestamp, body=body),
    }
    connection = _connection(target, address, settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return response.status
    finally:
        connection.close()


def _email_text(payload: dict) -> tuple[str, str]:
    alert = payload.get("alert")
    if alert is None:
        return "[ETRMS] Test notification", payload.get("message", "")
    prefix = "ESCALATED " if payload["event"] == "alert.escalated" else ""
    subject = f"[ETRMS] {prefix}{alert['severity'].upper()} {alert['condition_name']}"
    lines = [alert["description"], "", json.dumps(payload, indent=2, sort_keys=True)]
    return subject[:200], "\n".join(lines)


def _email_send(delivery: Delivery) -> None:
    subject, text = _email_text(delivery.payload)
    send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [delivery.target], fail_silently=False)


def _secret(endpoint) -> str:
    try:
        return fernet().decrypt(endpoint.secret_encrypted.encode()).decode()
    except InvalidToken:  # its key was dropped before a rotation re-encrypted it
        raise DeliveryFailed("The endpoint's secret cannot be decrypted with the configured keys.") from None


def _record(delivery: Delivery, *, status: str, code=None, error: str = "") -> None:
    delivery.status, delivery.last_status_code, delivery.last_error = status, code, error[:2000]
    if status == DeliveryStatus.DELIVERED:
        delivery.delivered_at = delivery.last_attempt_at
    delivery.save(
        update_fields=["status", "attempts", "last_status_code", "last_error", "last_attempt_at", "delivered_at"]
    )


def delivery_attempt(*, delivery_id, last_attempt: bool) -> dict:
    """One attempt at `delivery_id`. Raises DeliveryFailed when it failed (the job
    retries it); `last_attempt`: no retry follows, so a failure dead-letters it."""
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    if delivery.status in FINAL:  # a message delivered twice: the first run settled it
        return {"delivery_id": str(delivery.id), "status": delivery.status}
    endpoint = delivery.endpoint
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    if endpoint is None or (not endpoint.enabled and delivery.event != DeliveryEvent.TEST):
        _record(delivery, status=DeliveryStatus.SKIPPED, error="The endpoint was deleted or disabled.")
        return {"delivery_id": str(delivery.id), "status": delivery.status}
    code = None
    try:
        if delivery.kind == EndpointKind.WEBHOOK:
            code = _webhook_send(delivery, _secret(endpoint))
            if not 200 <= code < 300:
                raise DeliveryFailed(f"The webhook answered HTTP {code}.")
        else:
            _email_send(delivery)
    except AddressRefused as exc:
        _record(delivery, status=DeliveryStatus.REFUSED, error=str(exc))
        return {"delivery_id": str(delivery.id), "status": delivery.status, "error": str(exc)}
    except (DeliveryFailed, OSError, http.client.HTTPException) as exc:  # smtplib's errors are OSErrors
        error = str(exc) if isinstance(exc, DeliveryFailed) else f"{exc.__class__.__name__}: {exc}"
        status = DeliveryStatus.DEAD_LETTERED if last_attempt else DeliveryStatus.RETRYING
        _record(delivery, status=status, code=code, error=error)
        raise DeliveryFailed(error) from exc
    _record(delivery, status=DeliveryStatus.DELIVERED, code=code)
    return {"delivery_id": str(delivery.id), "status": delivery.status, "attempts": delivery.attempts}
