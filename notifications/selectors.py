"""Reads on notification endpoints and deliveries.

Who sees what (SPEC §3): a trader sees only their own; a risk officer sees their own by
default and any user's (the API's `?user_id=`, checked by `etrms.api.permissions.
user_filter`), and may read another user's endpoint, but changes, deletes and tests
only their own: nobody redirects another user's notifications.
"""

from etrms.errors import NotFound
from etrms.roles import visible_to
from notifications.models import Delivery, NotificationEndpoint


def endpoint_list(*, user_id):
    return NotificationEndpoint.objects.filter(user_id=user_id).order_by("-created_at")


def endpoint_get(*, viewer, endpoint_id, write: bool = False) -> NotificationEndpoint:
    """The endpoint, if the viewer owns it (or, to read it, is a risk officer); else 404."""
    endpoints = NotificationEndpoint.objects.all()
    queryset = endpoints.filter(user_id=viewer.pk) if write else visible_to(endpoints, viewer)
    endpoint = queryset.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such notification endpoint.")
    return endpoint


def delivery_list(*, user_id, status: str | None = None, endpoint_id=None, event: str | None = None):
    deliveries = Delivery.objects.filter(user_id=user_id)
    if status:
        deliveries = deliveries.filter(status=status)
    if endpoint_id:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if event:
        deliveries = deliveries.filter(event=event)
    return deliveries.order_by("-created_at")
