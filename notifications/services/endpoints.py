"""Writes on notification endpoints: create (the webhook's secret is returned once),
update, delete, and the test delivery. Values arrive validated by the API's input
serializers; the rules that need the database or the network live here: the SSRF
guard, unique names per user, `desk_wide` for risk officers only."""

import secrets

from django.db import IntegrityError, transaction

from accounts.services.credentials import fernet
from etrms.errors import Conflict, InvalidInput, PermissionDenied
from etrms.roles import is_risk_officer
from notifications.constants import DeliveryEvent, EndpointKind
from notifications.models import Delivery, NotificationEndpoint
from notifications.services.addresses import AddressRefused, webhook_url_check
from notifications.services.dispatch import deliveries_enqueue

SECRET_BYTES = 32
FIELDS = ("name", "url", "email", "event_types", "min_severity", "desk_wide", "enabled")


def _url_guard(url: str) -> None:
    try:
        webhook_url_check(url)
    except AddressRefused as exc:
        raise InvalidInput({"url": [str(exc)]}) from None


def _save(endpoint: NotificationEndpoint) -> None:
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:
        raise Conflict(f"You already have a notification endpoint named {endpoint.name!r}.") from None


def _check(*, user, endpoint: NotificationEndpoint, data: dict) -> None:
    if data.get("desk_wide") and not is_risk_officer(user):
        raise PermissionDenied("Only risk officers receive every user's events (desk_wide).")
    if endpoint.kind == EndpointKind.WEBHOOK and data.get("email"):
        raise InvalidInput({"email": ["A webhook endpoint takes a url, not an email."]})
    if endpoint.kind == EndpointKind.EMAIL and data.get("url"):
        raise InvalidInput({"url": ["An e-mail endpoint takes an email, not a url."]})
    if "url" in data:
        _url_guard(data["url"])


@transaction.atomic
def endpoint_create(*, user, kind: str, data: dict) -> tuple[NotificationEndpoint, str | None]:
    """A new endpoint of `user` and, for a webhook, its signing secret (shown once:
    only its encrypted form is kept)."""
    endpoint = NotificationEndpoint(user_id=user.pk, kind=kind)
    required = "url" if kind == EndpointKind.WEBHOOK else "email"
    if not data.get(required):
        raise InvalidInput({required: [f"A {kind} endpoint needs its {required}."]})
    _check(user=user, endpoint=endpoint, data=data)
    for key in FIELDS:
        if key in data:
            setattr(endpoint, key, data[key])
    secret = None
    if kind == EndpointKind.WEBHOOK:
        secret = secrets.token_urlsafe(SECRET_BYTES)
        endpoint.secret_encrypted = fernet().encrypt(secret.encode()).decode()
    _save(endpoint)
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, user, endpoint: NotificationEndpoint, data: dict) -> NotificationEndpoint:
    """Change the given fields (the kind and the secret never change)."""
    _check(user=user, endpoint=endpoint, data=data)
    for key in FIELDS:
        if key in data:
            setattr(endpoint, key, data[key])
    _save(endpoint)
    return endpoint


def endpoint_delete(*, endpoint: NotificationEndpoint) -> None:
    """Deliveries stay in the log (their endpoint becomes null); queued ones are skipped."""
    endpoint.delete()


def endpoint_test(*, endpoint: NotificationEndpoint) -> Delivery:
    """Queue a `test` delivery to the endpoint, enabled or not (a desk tests a receiver
    before switching it on)."""
    message = f"Test notification from ETRMS to {endpoint.name!r} ({endpoint.kind})."
    return deliveries_enqueue(endpoints=[endpoint], event=DeliveryEvent.TEST, alert=None, message=message)[0]


@transaction.atomic
def endpoint_secrets_rotate() -> int:
    """Re-encrypt every webhook secret with the first key. Returns rows rewritten."""
    rotated = 0
    endpoints = NotificationEndpoint.objects.select_for_update().exclude(secret_encrypted="")
    for endpoint in endpoints.only("id", "secret_encrypted"):
        token = fernet().rotate(endpoint.secret_encrypted.encode()).decode()
        NotificationEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted=token)
        rotated += 1
    return rotated
