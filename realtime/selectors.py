"""Reads of the realtime app: price alerts as their owners and risk officers see them."""

from django.db.models import QuerySet

from etrms.errors import NotFound
from etrms.formatting import decimal_str, iso_utc
from etrms.roles import visible_to
from realtime.models import PriceAlert

PRICE_ALERT_FIELDS = (
    "id",
    "user_id",
    "symbol",
    "exchange",
    "condition",
    "target_price",
    "status",
    "created_at",
    "triggered_at",
    "triggered_price",
)


def price_alert_list(*, viewer, user_id=None) -> QuerySet[PriceAlert]:
    """The viewer's alerts (a risk officer: everyone's, or `user_id`'s), newest first;
    the list's filters: `realtime.filters.PriceAlertFilter`."""
    queryset = visible_to(PriceAlert.objects.all(), viewer)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    return queryset.order_by("-created_at", "-id")


def price_alert_get(*, viewer, alert_id) -> PriceAlert:
    """One alert the viewer may see; another user's is a 404."""
    alert = price_alert_list(viewer=viewer).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("Price alert not found.")
    return alert


def price_alert_out(alert, *, include_user: bool = False) -> dict:
    """A row (model or `.values()` dict) as the API shows it."""

    def get(name):
        return alert[name] if isinstance(alert, dict) else getattr(alert, name)

    out = {
        "id": str(get("id")),
        "symbol": get("symbol"),
        "exchange": get("exchange"),
        "condition": get("condition"),
        "target_price": decimal_str(get("target_price")),
        "status": get("status"),
        "created_at": iso_utc(get("created_at")),
        "triggered_at": iso_utc(get("triggered_at")),
        "triggered_price": decimal_str(get("triggered_price")),
    }
    if include_user:
        out["user_id"] = str(get("user_id"))
    return out
